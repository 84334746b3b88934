"""End-of-turn benchmark: how long after the player really stops does the Ear decide the turn
is over (``endpoint_ms``), how long until the final transcript (``asr_ms``), how often does it cut
a player off who pauses mid-sentence (``false_cutoffs``) and how often does it split a turn of two
sentences at the pause between them (``turns_split``), for a few endpoint settings.

Real parts: the demo scene's player voice (the neural hibari voice since issue 17; env
``XRSTORY_EAR_VOICE=espeak`` for espeak-ng's en-us 165/35, the voice before) speaks the player's
lines: the scripted sentences; lines spoken in two halves with 400-600 ms of silence between; and
two-sentence turns spoken in one go (the voice's own pause between the sentences). Each line is
cut to its sound first, so the silences are the ones written here, whatever pads a voice adds.
Silero VAD and Whisper tiny.en listen, fed in 32 ms chunks paced to the wall clock (the ASR worker
races real audio time, as with a microphone). The exact end of each line's audio is marked
(``Ear.mark_speech_end``), so the clock starts where the player stopped. Each setting is listed
as (min_silence_ms, early_silence_ms, tail_after_ms, window_s, word_timestamps); "before" is the
pipeline before issue 17 (450 ms, no early close, decode after the decision, 30 s window, word
times).

A second pass per setting, ``worst_case``, feeds unpaced and lets every transcription finish
before the next chunk: the tail transcript is then always back in time, as on a fast machine, so
every misjudged pause becomes a cut-off; it also runs the 61 s monologue (the 16 sentences twice
with 0.15 s pauses) and counts its early closes.

Run quietly (about 2 minutes per setting):  python -m xrstory.bench.ear_endpoint  (prints JSON)
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from xrstory.bench.voice_stages import SENTENCES as LISTEN_SENTENCES

SCENE = Path(__file__).resolve().parents[2] / "scenes" / "lighthouse"
PROMPT = "Maren, Tobias, the Marigold, Captain Ada Finch, Gull Rock lighthouse, paraffin, cellar, stove, flare, tea."
SENTENCES = [
    "Maren, can you light the stove?", "Where is the paraffin kept?", "Please open the cellar door.",
    "Tobias, could you fetch the oil from the cellar?", "Call the Marigold on the radio.",
    "Guide the ship home past the rocks.", "How long have you kept this lighthouse?", "Ring the fog bell.",
]
# (first half, second half, silence between in seconds): the player pauses mid-sentence
PAUSED = [
    ("Could you", "light the lamp for me?", 0.5),
    ("Where is the", "paraffin kept?", 0.6),
    ("Tobias, can you", "ring the fog bell?", 0.4),
    ("Please open the", "cellar door.", 0.55),
    ("The storm is getting worse, and", "the ship is close to the rocks.", 0.5),
    ("Maren, I think", "we should fetch the oil.", 0.45),
]

# two sentences in one turn, spoken in one breath: the voice's own pause between them (Silero hears
# 384-416 ms with hibari and with espeak-ng); the first looks finished, so an early close can split it
TWO_SENTENCES = [
    "Maren, Tobias is freezing. Please light the iron stove.",
    "Maren, we have the oil now. Please light up the lamp.",
    "The storm is getting worse. Fire a flare so they can see us.",
    "Tobias is freezing. Is there any hot tea?",
]

# LISTEN_SENTENCES: the 16 of tests/test_voice_listen.py (the monologue is them twice)
SETTINGS = {  # name: (min_silence_ms, early_silence_ms, tail_after_ms, window_s, word_timestamps)
    "before": (450, None, None, None, True),
    "450/224": (450, 224, 96.0, 15.0, False),
    "600/224": (600, 224, 96.0, 15.0, False),
    "700/224": (700, 224, 96.0, 15.0, False),
    "700/288": (700, 288, 96.0, 15.0, False),
    "700/320": (700, 320, 96.0, 15.0, False),
    "700/384": (700, 384, 96.0, 15.0, False),
    "700/448": (700, 448, 96.0, 15.0, False),
    "700/480": (700, 480, 96.0, 15.0, False),  # above the 384-416 ms Silero hears between sentences
    "600/480": (600, 480, 96.0, 15.0, False),
    "700/576": (700, 576, 96.0, 15.0, False),  # the default: above the 0.55 s pause misheard as finished
    "700/608": (700, 608, 96.0, 15.0, False),
}


def spoken(tts, voice, text: str) -> np.ndarray:
    """``text`` in the player's voice, 16 kHz float32, from its first to its last sound (above
    -50 dBFS): the pauses written here are the silences heard, whatever pads the voice adds."""
    from xrstory.voice.audio import resample
    from xrstory.voice.events import EAR_RATE

    s = tts.synthesize(text, voice)
    audio = resample(s.audio, s.rate, EAR_RATE).astype(np.float32)
    sound = np.flatnonzero(np.abs(audio) > 10 ** (-50 / 20))
    return audio[sound[0]:sound[-1] + 1] if sound.size else audio


def paused_line(tts, voice, first: str, second: str, gap_s: float) -> np.ndarray:
    """One utterance spoken in two halves with ``gap_s`` of silence between (16 kHz)."""
    gap = np.zeros(int(gap_s * 16000), np.float32)
    return np.concatenate([spoken(tts, voice, first), gap, spoken(tts, voice, second)])


def script(tts, voice) -> tuple[np.ndarray, list[tuple[int, int, str, bool]]]:
    """All lines one after another with 1 s between: (audio, [(start, end, text, kind)]), kind
    "plain", "paused" (a mid-sentence pause) or "two" (two sentences, the voice's pause between)."""
    from xrstory.voice.duplex import last_sound
    from xrstory.voice.events import EAR_RATE

    parts, spans, pos = [], [], 0
    lines = [(s, spoken(tts, voice, s), "plain") for s in SENTENCES]
    lines += [(f"{a} ... {b}", paused_line(tts, voice, a, b, g), "paused") for a, b, g in PAUSED]
    lines += [(s, spoken(tts, voice, s), "two") for s in TWO_SENTENCES]
    for text, audio, paused in lines:
        gap = np.zeros(EAR_RATE, np.float32)
        parts += [gap, audio]
        pos += len(gap)
        spans.append((pos, pos + (last_sound(audio) or len(audio)), text, paused))
        pos += len(audio)
    parts.append(np.zeros(2 * EAR_RATE, np.float32))
    return np.concatenate(parts), spans


def measure(asr, vad_model, audio: np.ndarray, spans, setting, worst_case: bool = False) -> dict:
    from xrstory.voice.clock import CHUNK
    from xrstory.voice.ear import Ear, EarConfig, drain
    from xrstory.voice.events import EAR_RATE, Heard, SpeechEnded
    from xrstory.voice.vad import VADConfig

    min_silence, early, tail_after, window, words = setting
    asr.config = replace(asr.config, window_s=window, word_timestamps=words)
    vad = VADConfig(min_silence_ms=min_silence, early_silence_ms=early)
    events = []
    with Ear(asr, vad_model, vad, EarConfig(partial_every_s=1.0, tail_after_ms=tail_after)) as ear:
        ends = {end for _, end, _, _ in spans}
        t0 = time.monotonic()
        for k, i in enumerate(range(0, len(audio) - CHUNK + 1, CHUNK)):
            ahead = t0 + (k + 1) * CHUNK / EAR_RATE - time.monotonic()
            if worst_case:
                ear.wait_idle(120)
            elif ahead > 0:
                time.sleep(ahead)  # the chunk is complete when fed, as from a microphone
            for e in ends:
                if i < e <= i + CHUNK:
                    ear.mark_speech_end(e)
            ear.feed(audio[i:i + CHUNK], i)
            events += drain(ear.events)
        ear.flush(len(audio))
        ear.wait_idle(120)
        events += drain(ear.events)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    heard = [e for e in events if isinstance(e, Heard)]
    endpoint, asr_ms, early_n, cutoffs, splits, texts = [], [], 0, 0, 0, []
    for start, end, _text, kind in spans:
        mine = [h for h in heard if start - EAR_RATE // 2 <= h.start_frame < end]
        closes = [e for e in ended if start - EAR_RATE // 2 <= e.start_frame < end]
        if kind == "paused" and len(mine) > 1:
            cutoffs += 1
        if kind == "two" and len(mine) > 1:
            splits += 1
        for e in closes[-1:]:
            endpoint.append(1000 * (e.t - e.t_speech_end))
        for h in mine[-1:]:
            asr_ms.append(1000 * (h.t_transcribed - h.t_end_of_speech))
        early_n += sum(h.early for h in mine)
        texts.append(" | ".join(h.text for h in mine))

    def med(v):
        return round(statistics.median(v), 1) if v else None

    def p95(v):
        return round(float(np.percentile(v, 95)), 1) if v else None

    if worst_case:  # wall times mean nothing unpaced: audio-time endpoint and the cut-offs only
        return {"endpoint_audio_ms_p50": med([1000 * (e.decision_frame - e.speech_end_frame) / EAR_RATE
                                              for e in ended if not e.forced_split]),
                "early_closes": early_n, "false_cutoffs": cutoffs, "turns_split": splits, "heard": texts}
    return {"endpoint_ms_p50": med(endpoint), "endpoint_ms_p95": p95(endpoint), "asr_ms_p50": med(asr_ms),
            "asr_ms_p95": p95(asr_ms),
            "endpoint_plus_asr_ms_p50": med([a + b for a, b in zip(endpoint, asr_ms, strict=False)]),
            "early_closes": early_n, "false_cutoffs": cutoffs, "paused_lines": len(PAUSED),
            "turns_split": splits, "two_sentence_lines": len(TWO_SENTENCES), "lines": len(spans),
            "heard": texts}


def run_benchmark(settings: dict | None = None) -> dict:
    """Every setting of ``settings`` (default: SETTINGS; env ``XRSTORY_EAR_SETTINGS``: names,
    comma-separated) measured paced, then worst case, then on the monologue."""
    names = os.environ.get("XRSTORY_EAR_SETTINGS")
    if settings is None and names:
        unknown = [n for n in names.split(",") if n not in SETTINGS]
        if unknown:
            raise SystemExit(f"XRSTORY_EAR_SETTINGS: unknown setting(s) {unknown}; known: {list(SETTINGS)}")
        settings = {n: SETTINGS[n] for n in names.split(",")}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from xrstory.story import load_scene
    from xrstory.voice.asr import ASRConfig, load_asr
    from xrstory.voice.tts import AutoTTS, VoiceSettings
    from xrstory.voice.vad import load_silero

    asr = load_asr(config=ASRConfig(initial_prompt=PROMPT))
    vad_model = load_silero()
    if os.environ.get("XRSTORY_EAR_VOICE") == "espeak":
        voice = VoiceSettings("en-us", 165, 35)
    else:
        voice = VoiceSettings.of(load_scene(SCENE).scene.player_voice)
    with AutoTTS() as tts:
        audio, spans = script(tts, voice)
        monologue = np.concatenate([np.concatenate([np.zeros(2400, np.float32), spoken(tts, voice, s)])
                                    for s in LISTEN_SENTENCES * 2] + [np.zeros(16000, np.float32)])
    asr.transcribe(audio[:3 * 16000])  # warm-up
    out = {"voice": [voice.voice, voice.rate, voice.pitch], "load_average": os.getloadavg()}
    for name, setting in (settings or SETTINGS).items():
        out[name] = {"setting": list(setting), **measure(asr, vad_model, audio, spans, setting)}
        out[name]["worst_case"] = measure(asr, vad_model, audio, spans, setting, worst_case=True)
        mono = measure(asr, vad_model, monologue, [(0, len(monologue) - 16000, "monologue", "monologue")], setting,
                       worst_case=True)
        out[name]["monologue_61s_early_closes"] = mono["early_closes"]
    out["load_average_after"] = os.getloadavg()
    return out


if __name__ == "__main__":
    print(json.dumps(run_benchmark(), indent=2))
