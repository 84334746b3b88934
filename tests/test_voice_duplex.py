"""Barge-in and the echo guard, headless: the mixer's output leaks into the microphone through a
modelled room (AcousticPath); real Silero VAD and Whisper listen; the characters speak with
espeak-ng and with the neural voice (the demo scene's since issue 17), through ``AutoTTS``."""

import numpy as np
import pytest
from helpers import ear_models_fixture

from xrstory.voice.duplex import Duplex
from xrstory.voice.ear import Ear, EarConfig, drain
from xrstory.voice.echo import AcousticPath, EchoCanceller, echo_overlap, erle_db
from xrstory.voice.events import EAR_RATE, Heard, SpeakingDone, SpeakingInterrupted, SpeechStarted
from xrstory.voice.mixer import Mixer
from xrstory.voice.mouth import Mouth
from xrstory.voice.sources import ScriptedLine, ScriptedSpeech
from xrstory.voice.tts import AutoTTS, VoiceSettings

MAREN = VoiceSettings("en-gb", 150, 30)
# (Maren, Tobias, the player): espeak-ng's voices, and the lighthouse scene's neural ones
VOICES = {"espeak": (MAREN, VoiceSettings("en-us", 185, 60), VoiceSettings("en-us", 165, 35)),
          "neural": (VoiceSettings("hibari", 150, 38), VoiceSettings("hibari", 185, 8),
                     VoiceSettings("hibari", 165, 50))}
LINE = ("Aye, friend. The lamp went dark when the last can of paraffin ran dry. The spare oil is down "
        "in the cellar, behind the oak door. We must hurry before the Marigold breaks on the rocks.")


models = ear_models_fixture("Maren, Tobias, the Marigold.")


@pytest.fixture(scope="module")
def tts():
    with AutoTTS() as t:
        yield t


def _session(models, tts, player=None, maren=MAREN):
    ear = Ear(*models, echo_canceller=EchoCanceller(), config=EarConfig(partial_every_s=None))
    mouth = Mouth(tts, Mixer())
    mouth.say("maren", LINE, maren, (-1.3, 0.0, -3.0))
    mouth.wait_idle()
    hv = Duplex(ear, mouth, leak=AcousticPath())
    if player is not None:
        hv.queue_mic(player.audio)
    hv.keep_logs = True
    return ear, mouth, hv


@pytest.mark.parametrize("voices", VOICES)
def test_characters_own_voice_is_never_heard_as_the_player(models, tts, voices):
    ear, mouth, hv = _session(models, tts, maren=VOICES[voices][0])
    with ear, mouth, hv:
        events = hv.run_until_quiet(max_seconds=20)
        ear.wait_idle(60)
        events += drain(ear.events)  # transcripts finished after the last step
    assert any(isinstance(e, SpeakingDone) for e in events)  # the line played to its end
    assert not [e for e in events if isinstance(e, SpeechStarted | Heard)], events
    mic = np.concatenate(hv.mic_log)
    chunk_rms = np.sqrt(np.mean(mic[: len(mic) // 512 * 512].reshape(-1, 512) ** 2, axis=1))
    assert np.percentile(chunk_rms, 75) > 0.01  # the echo really was in the microphone, most of the time
    aec = EchoCanceller()  # the canceller alone, measured on the same signals
    res = np.concatenate([aec.process(m, r) for m, r in zip(hv.mic_log, hv.ref_log, strict=True)])
    half = len(mic) // 2
    print(f"{voices}: ERLE {erle_db(mic[:half], res[:half]):.1f} / {erle_db(mic[half:], res[half:]):.1f} dB")
    assert erle_db(mic[half:], res[half:]) > 20  # converged cancellation depth (neural 31, espeak 58 dB)


@pytest.mark.parametrize("voices", VOICES)
def test_player_speech_stops_the_character_within_200ms(models, tts, voices):
    maren, _, voice = VOICES[voices]
    player = ScriptedSpeech(tts, voice, [ScriptedLine("Maren, stop. Tobias is freezing.", pause_before_s=3.0)],
                            tail_s=6)
    onset = player.spans[0][0]  # frame the player starts speaking
    ear, mouth, hv = _session(models, tts, player=player, maren=maren)
    with ear, mouth, hv:
        events = hv.run(9.0)
        ear.wait_idle(60)
        events += drain(ear.events)
    stopped = [e for e in events if isinstance(e, SpeakingInterrupted)]
    assert len(stopped) == 1 and not any(isinstance(e, SpeakingDone) for e in events)
    delay_s = (stopped[0].frame - onset) / EAR_RATE  # audio time: player onset -> line silent
    print(f"barge-in stopped the line {delay_s * 1000:.0f} ms after the player began")
    assert 0 < delay_s <= 0.200
    assert stopped[0].words_spoken.startswith("Aye, friend.") and "rocks" in stopped[0].words_unspoken
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(heard) == 1 and "stop" in heard[0].text.lower() and "freezing" in heard[0].text.lower()


def test_transcript_echo_comparison():
    assert echo_overlap("the spare oil is down in the cellar", [LINE]) == 1.0
    assert echo_overlap("Tobias is freezing", [LINE]) < 0.5


@pytest.mark.parametrize("voices", VOICES)
def test_long_lines_cues_and_the_storm_bed_never_start_player_speech(models, tts, voices):
    """What a typed-only session plays (two characters' long lines, trigger cues over them, the
    ambient storm), leaking into the microphone through the modelled room at the session's gain:
    the ear must never open a speech segment, so nothing can barge in."""
    from xrstory.voice.echo import AcousticPathConfig

    ear = Ear(*models, echo_canceller=EchoCanceller(), config=EarConfig(partial_every_s=None))
    mouth = Mouth(tts, Mixer(ambient_gain=0.04))
    mouth.say("maren", LINE, VOICES[voices][0], (-1.3, 1.5, -3.0))
    mouth.say("tobias", LINE, VOICES[voices][1], (1.4, 1.4, -2.7))
    mouth.wait_idle()
    voice = Duplex(ear, mouth, leak=AcousticPath(AcousticPathConfig(gain=0.3)))
    events = []
    with ear, mouth, voice:
        for i in range(int(26 / 0.032)):
            if i in (40, 200, 420, 600):  # cues over the voices, as triggers fire mid-line
                mouth.mixer.play_cue(("bell", "thud", "whoosh", "static")[(40, 200, 420, 600).index(i)])
            events += voice.step()
        ear.wait_idle(60)
        events += drain(ear.events)
    assert sum(isinstance(e, SpeakingDone) for e in events) == 2, "both lines played to their end"
    assert not [e for e in events if isinstance(e, SpeechStarted | Heard)], events


@pytest.mark.parametrize("voices", VOICES)
def test_a_horn_cue_over_a_line_neither_derails_the_canceller_nor_barges_in(models, tts, voices):
    """The end of the demo's arc: guide_ship_home's horn (a loud, tonal cue, ~17 dB over the
    voice) plays over Maren's line. The canceller diverged on it (residual +175 dB) and the VAD
    heard that as the player, cutting her off after 8-13 words in every spoken arc."""
    from xrstory.voice.echo import AcousticPathConfig

    ear = Ear(*models, echo_canceller=EchoCanceller(), config=EarConfig(partial_every_s=None))
    mouth = Mouth(tts, Mixer(ambient_gain=0.04))
    mouth.say("maren", "Aye, friend, the lad's through. Turn to the port, and she's through. The Marigold is home.",
              VOICES[voices][0], (-1.3, 1.5, -3.0))
    mouth.wait_idle()
    voice = Duplex(ear, mouth, leak=AcousticPath(AcousticPathConfig(gain=0.3)))
    voice.keep_logs = True
    events = []
    with ear, mouth, voice:
        for i in range(int(8 / 0.032)):
            if i == 12:
                mouth.mixer.play_cue("horn")
            events += voice.step()
        ear.wait_idle(60)
        events += drain(ear.events)
    assert any(isinstance(e, SpeakingDone) for e in events), "the line played to its end"
    assert not [e for e in events if isinstance(e, SpeechStarted | Heard)], events
    aec = EchoCanceller()
    res = [aec.process(m, r) for m, r in zip(voice.mic_log, voice.ref_log, strict=True)]
    mic = np.concatenate(voice.mic_log)
    assert np.abs(np.concatenate(res)).max() <= np.abs(mic).max(), "the residual never exceeds the echo"
