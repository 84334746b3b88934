"""The honest clock and the early end of turn, with real audio: espeak-ng speaks the player's
line into the duplex loop or the ear, Silero VAD and Whisper tiny.en listen (loaded once).

- the end of speech a turn's clock starts from is the scripted audio's last sound, before the
  VAD's decision by about ``min_silence_ms`` (audio time exactly; wall time when fed paced);
- a finished line closes after ``early_silence_ms`` once the transcript of the speech so far is
  back, and that transcript is the final one (nothing is decoded after the decision);
- a line with a mid-sentence pause is not cut off at the pause.
"""

import os
import time

import numpy as np
import pytest
from helpers import ear_models_fixture, espeak_fixture

from xrstory.voice.audio import resample
from xrstory.voice.clock import CHUNK
from xrstory.voice.duplex import Duplex, last_sound
from xrstory.voice.ear import Ear, EarConfig, drain
from xrstory.voice.endpoint import looks_finished
from xrstory.voice.events import EAR_RATE, EndLikely, EndRevoked, Heard, SpeechEnded
from xrstory.voice.mixer import Mixer
from xrstory.voice.mouth import Mouth
from xrstory.voice.tts import VoiceSettings
from xrstory.voice.vad import VADConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PLAYER = VoiceSettings("en-us", 165, 35)
PROMPT = "Maren, Tobias, the Marigold, Gull Rock lighthouse, paraffin, cellar, stove, lamp, fog bell."


models = ear_models_fixture(PROMPT)
tts = espeak_fixture()


def speech(tts, text: str) -> np.ndarray:
    s = tts.synthesize(text, PLAYER)
    return resample(s.audio, s.rate, EAR_RATE).astype(np.float32)


def test_the_clock_starts_at_the_true_end_of_speech_before_the_vad_decides(models, tts):
    """Fed through the duplex loop at real-time pace (a microphone's rate), with the early close
    off: the VAD decides min_silence_ms of audio after the scripted line's last sound, and the
    wall clock says the same within scheduling noise."""
    asr, vad = models
    config = VADConfig(min_silence_ms=450, early_silence_ms=None)
    silence = config.min_silence_ms
    line = np.concatenate([np.zeros(EAR_RATE // 4, np.float32), speech(tts, "Ring the fog bell."),
                           np.zeros(EAR_RATE, np.float32)])
    true_end = last_sound(line)
    events = []
    with Ear(asr, vad, config, EarConfig(partial_every_s=None)) as ear, Mouth(tts, Mixer()) as mouth, \
            Duplex(ear, mouth) as duplex:
        duplex.queue_mic(line, speech_end=True)
        t0 = time.monotonic()
        for k in range(len(line) // CHUNK + 2):
            ahead = t0 + (k + 1) * CHUNK / EAR_RATE - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            events += duplex.step()
        assert ear.wait_idle(60)
        events += drain(ear.events)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(ended) == 1 and len(heard) == 1 and "bell" in heard[0].text.lower(), events
    e, h = ended[0], heard[0]
    assert e.speech_end_frame == true_end  # the mark, not the VAD's idea of it
    audio_ms = 1000 * (e.decision_frame - e.speech_end_frame) / EAR_RATE
    wall_ms = 1000 * (e.t - e.t_speech_end)
    print(f"end of speech -> decision: {audio_ms:.0f} ms audio, {wall_ms:.0f} ms wall (min_silence {silence})")
    assert silence - 32 <= audio_ms <= silence + 128  # Silero's probability lags the audio by a chunk or two
    assert silence - 100 <= wall_ms <= silence + 400  # paced: wall time follows audio time (noisy CPU)
    assert h.t_speech_end == e.t_speech_end < h.t_end_of_speech == e.t <= h.t_transcribed


def feed_waiting_for_the_ear(ear: Ear, audio: np.ndarray) -> list:
    """Feed chunk by chunk, letting every transcription finish before the next chunk: the
    endpoint logic then sees each transcript as early as it can (a fast machine's case)."""
    for i in range(0, len(audio) - CHUNK + 1, CHUNK):
        ear.feed(audio[i:i + CHUNK], i)
        assert ear.wait_idle(60)
    ear.flush(len(audio))
    assert ear.wait_idle(60)
    return drain(ear.events)  # what feed returned is on the queue too, in order


def test_a_finished_line_closes_early_and_its_transcript_is_ready_at_the_decision(models, tts):
    asr, vad = models
    line = np.concatenate([np.zeros(EAR_RATE // 4, np.float32), speech(tts, "Please open the cellar door."),
                           np.zeros(EAR_RATE, np.float32)])
    with Ear(asr, vad, VADConfig(min_silence_ms=700, early_silence_ms=224), EarConfig(partial_every_s=None)) as ear:
        events = feed_waiting_for_the_ear(ear, line)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(ended) == 1 and len(heard) == 1, events
    e, h = ended[0], heard[0]
    assert h.early and "cellar door" in h.text.lower(), h
    ms = 1000 * (e.decision_frame - e.speech_end_frame) / EAR_RATE
    assert 224 - 32 <= ms <= 224 + 128, ms  # not the 700 ms timeout
    assert h.t_transcribed == e.t  # the tail transcript is the final one: no decode after the decision
    assert events.index(e) < events.index(h)


def test_a_mid_sentence_pause_does_not_end_the_turn(models, tts):
    asr, vad = models
    gap = np.zeros(int(0.5 * EAR_RATE), np.float32)
    line = np.concatenate([np.zeros(EAR_RATE // 4, np.float32), speech(tts, "Could you"), gap,
                           speech(tts, "light the lamp for me?"), np.zeros(EAR_RATE, np.float32)])
    with Ear(asr, vad, VADConfig(min_silence_ms=700, early_silence_ms=224), EarConfig(partial_every_s=None)) as ear:
        events = feed_waiting_for_the_ear(ear, line)
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(heard) == 1 and "lamp" in heard[0].text.lower(), [h.text for h in heard]
    likely = [e.text for e in events if isinstance(e, EndLikely)]
    assert likely == [heard[0].text], "'Could you' does not look finished: nothing to think ahead on"


def test_a_pause_after_a_finished_clause_is_announced_then_revoked_when_the_player_speaks_on(models, tts):
    """Thinking ahead: the ear announces the transcript it would close on (EndLikely) before the
    early silence has passed; the player speaking on revokes it (EndRevoked), and the turn
    closes on the whole line, announced again first with the same text as its Heard."""
    asr, vad = models
    line = np.concatenate([np.zeros(EAR_RATE // 4, np.float32), speech(tts, "Tobias is freezing."),
                           np.zeros(int(0.45 * EAR_RATE), np.float32), speech(tts, "Please light the stove."),
                           np.zeros(EAR_RATE, np.float32)])
    with Ear(asr, vad, VADConfig(min_silence_ms=700, early_silence_ms=576), EarConfig(partial_every_s=None)) as ear:
        events = feed_waiting_for_the_ear(ear, line)
    kinds = [type(e).__name__ for e in events if isinstance(e, EndLikely | EndRevoked | SpeechEnded | Heard)]
    assert kinds == ["EndLikely", "EndRevoked", "EndLikely", "SpeechEnded", "Heard"], events
    first, last = [e for e in events if isinstance(e, EndLikely)]
    heard = next(e for e in events if isinstance(e, Heard))
    assert "freezing" in first.text.lower() and "stove" not in first.text.lower(), first
    assert last.text == heard.text and "stove" in heard.text.lower() and heard.early
    ended = next(e for e in events if isinstance(e, SpeechEnded))
    assert last.frame < ended.decision_frame, "announced before the turn closed"


@pytest.mark.parametrize("text, finished", [
    ("Ring the fog bell.", True), ("Maren, can you light the stove?", True), ("Stop the ship!", True),
    ("Stop!", False),  # one word waits for the long silence ("Maren." may go on)
    ("Could you?", False), ("Could you...", False), ("Where is the", False), ("Where is the.", False),
    ("Please open the cellar door", False), ("The storm is getting worse, and", False), ("Yes.", False),
    ("Light the lamp, and.", False), ('He said "go."', True), ("Maren, I think.", False), ("I think we should go.", True),
])
def test_what_reads_as_a_finished_turn(text, finished):
    assert looks_finished(text) is finished
    assert not looks_finished(text, confidence=0.46)  # "Could you" misheard as "God you." came with 0.46


def test_pressing_the_talk_button_after_an_announced_end_revokes_it(models, tts):
    """Hands-free speech in progress is dropped when the player takes the talk button: a line
    announced as likely over must be revoked, or a turn thought ahead on would wait for nothing."""
    asr, vad = models
    line = np.concatenate([np.zeros(EAR_RATE // 4, np.float32), speech(tts, "Ring the fog bell."),
                           np.zeros(EAR_RATE // 3, np.float32)])  # shorter than the early silence
    with Ear(asr, vad, VADConfig(min_silence_ms=700, early_silence_ms=576), EarConfig(partial_every_s=None)) as ear:
        for i in range(0, len(line) - CHUNK + 1, CHUNK):
            ear.feed(line[i:i + CHUNK], i)
            assert ear.wait_idle(60)
        before = drain(ear.events)
        pressed = ear.push_to_talk(True, len(line))
    assert [type(e).__name__ for e in before if isinstance(e, EndLikely | SpeechEnded | Heard)] == ["EndLikely"]
    assert [type(e).__name__ for e in pressed] == ["EndRevoked", "SpeechStarted"]
