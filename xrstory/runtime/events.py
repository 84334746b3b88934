"""Typed events that flow from the workers to the frame loop (and into the transcript).

Every event carries ``t``: ``time.monotonic()`` seconds when it happened, so each turn's
latency per stage is measured, not guessed. Events are plain dataclasses: a queue of them is
the only thing workers and the frame loop share.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


def now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    t: float = field(default_factory=now, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict:
        d = {"event": self.kind}
        for k, v in asdict(self).items():
            if isinstance(v, tuple):
                v = list(v)
            if isinstance(v, bytes | bytearray):
                continue
            d[k] = v
        return d


@dataclass(frozen=True)
class PlayerSpeechStarted(Event):
    turn: int


@dataclass(frozen=True)
class PlayerSpeechEnded(Event):
    turn: int


@dataclass(frozen=True)
class Heard(Event):
    turn: int
    text: str
    language: str = "en"
    confidence: float = 1.0
    addressed: str = ""  # the character the director decided is addressed


@dataclass(frozen=True)
class ReplyStarted(Event):
    turn: int
    character: str


@dataclass(frozen=True)
class SentenceReady(Event):
    turn: int
    character: str
    text: str
    index: int


@dataclass(frozen=True)
class ReplyDone(Event):
    turn: int
    character: str
    say: str
    emotion: str
    triggers: tuple[str, ...]
    fallback: bool = False
    fallback_reason: str = ""
    moderated: bool = False


@dataclass(frozen=True)
class SpeakingStarted(Event):
    turn: int
    character: str


@dataclass(frozen=True)
class SpeakingStopped(Event):
    turn: int
    character: str
    interrupted: bool = False
    words_spoken: int = 0


@dataclass(frozen=True)
class TriggerFired(Event):
    turn: int
    trigger: str
    by: str
    beat_after: str = ""


@dataclass(frozen=True)
class TriggerRefused(Event):
    turn: int
    trigger: str
    by: str
    reason: str


@dataclass(frozen=True)
class StoryEnded(Event):
    text: str


@dataclass(frozen=True)
class WorkerFailed(Event):
    worker: str
    error: str


@dataclass(frozen=True)
class PlayerPressed(Event):
    turn: int
    target: str


@dataclass(frozen=True)
class NudgeStarted(Event):
    """The director decided the player is stalling and ``character`` steers them toward the beat's
    goal (the model writes the words). ``turn`` is a nudge turn of its own (silence, or a
    character other than the one addressed), or the player's turn whose prompt got the hint."""

    turn: int
    character: str
    reason: str  # the director's reason, e.g. "silence: 30 s without the player speaking"
