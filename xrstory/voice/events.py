"""Typed events the voice layer puts on its queues (the runtime reads them each frame).

Every event carries two clocks:
- ``t``: ``time.monotonic()`` when it was produced (wall latency per stage is measured from it);
- ``frame``: audio time in samples of the 16 kHz listening clock (``AudioClock``), so headless
  playthroughs are deterministic and can run faster than real time. ``audio_s`` converts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EAR_RATE = 16_000  # Hz; VAD and Whisper run at this rate, and event frames count these samples


@dataclass(frozen=True)
class VoiceEvent:
    t: float  # time.monotonic(), seconds
    frame: int  # audio time, samples at EAR_RATE

    @property
    def audio_s(self) -> float:
        return self.frame / EAR_RATE


# ---- listening (Ear) -------------------------------------------------------------------------

@dataclass(frozen=True)
class SpeechStarted(VoiceEvent):
    """The VAD heard the player start speaking (frame = estimated onset)."""


@dataclass(frozen=True)
class PartialTranscript(VoiceEvent):
    text: str = ""
    utterance: int = 0  # which utterance this belongs to (counts SpeechStarted)


@dataclass(frozen=True)
class SpeechEnded(VoiceEvent):
    """The VAD closed a speech segment (``t``, ``frame``: its decision). ``audio``: (n,) float32 at
    16 kHz, what goes to ASR. ``t_speech_end`` / ``speech_end_frame``: when the player really
    stopped: the exact end of scripted audio (``Ear.mark_speech_end``) or, from a microphone, the
    end of the segment's last voiced chunk; ``t`` of a frame is the monotonic time its chunk was fed
    minus the audio still after it in that chunk (``Ear.time_of``)."""

    start_frame: int = 0
    utterance: int = 0
    forced_split: bool = False  # True when cut because it grew past max_segment_s
    t_speech_end: float = 0.0
    speech_end_frame: int = 0
    decision_frame: int = 0  # end of the chunk after which the VAD decided (``frame`` is the audio's end)
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False, compare=False)


@dataclass(frozen=True)
class Heard(VoiceEvent):
    """A final transcript. ``continues``: the player is still speaking (a forced split)."""

    text: str = ""
    language: str = "en"
    confidence: float = 0.0  # 0..1, exp(mean token log-probability)
    t_end_of_speech: float = 0.0  # monotonic time the VAD closed the segment (its decision)
    t_transcribed: float = 0.0  # monotonic time the transcript was ready
    start_frame: int = 0
    utterance: int = 0
    continues: bool = False
    words: tuple[tuple[str, float, float], ...] = ()  # (word, start_s, end_s) within the segment
    t_speech_end: float = 0.0  # monotonic time the player really stopped (SpeechEnded.t_speech_end)
    early: bool = False  # the turn was closed early: the transcript of the speech so far looked finished


@dataclass(frozen=True)
class EndLikely(VoiceEvent):
    """The player has paused and the transcript of the speech so far looks finished: the turn will
    most likely close on ``text`` once the early silence has passed (then a ``Heard`` with the same
    text follows). The runtime may start thinking on it; nothing may be said or fired until that
    ``Heard``. ``EndRevoked`` follows instead when the player speaks on."""

    text: str = ""
    utterance: int = 0
    confidence: float = 0.0


@dataclass(frozen=True)
class EndRevoked(VoiceEvent):
    """The player went on speaking after an ``EndLikely``: its text is not the turn's."""

    utterance: int = 0


@dataclass(frozen=True)
class Rejected(VoiceEvent):
    """A segment that was dropped instead of heard, and why (silence guard, echo, too short...)."""

    reason: str = ""
    text: str = ""
    utterance: int = 0


# ---- speaking (Mixer, at the audio time the samples play) ------------------------------------

@dataclass(frozen=True)
class LineEvent(VoiceEvent):
    """Something about one line a character speaks. ``turn``: the tag the line was made with
    (``Mouth.begin_line(..., turn=)``; the runtime's turn number), so no caller maps ids back."""

    character: str = ""
    line: int = 0  # id of the line (one per Mouth.begin_line / say call)
    turn: int = 0


@dataclass(frozen=True)
class SpeakingStarted(LineEvent):
    text: str = ""  # the line's text so far (streamed lines grow)


@dataclass(frozen=True)
class SpeakingLevel(LineEvent):
    """Envelope of a character's voice for lip/glow: rms 0..1 and the current viseme, if known."""

    level: float = 0.0
    viseme: str = ""


@dataclass(frozen=True)
class SpeakingDone(LineEvent):
    text: str = ""  # the whole line, as played


@dataclass(frozen=True)
class SpeakingInterrupted(LineEvent):
    """The player barged in. ``words_spoken``: the part of the line the player actually heard."""

    words_spoken: str = ""
    words_unspoken: str = ""


@dataclass(frozen=True)
class CuePlayed(VoiceEvent):
    name: str = ""
