"""The session's event vocabulary: what the brain thread tells the frame loop, and what the
session writes to its transcript. Each name exists once in the whole package (the voice layer's
events, ``voice.events``, and the mind's, ``mind.reply``, have names of their own), and events are
dispatched with ``match`` on the class, never on a name in a string.

Every event carries ``t``: ``time.monotonic()`` seconds when it happened, so each turn's latency
per stage is measured, not guessed. ``to_dict`` is the transcript line (``"event"``: the class name).

Flow (see docs/ARCHITECTURE.md):
  frame loop -> transcript: PlayerSpeechStarted/Ended, SpeechRejected, ThinkingAhead/Dropped,
      PlayerHeard, PlayerPressed,
      LineStarted, LineStopped, TriggerFired/Refused, StoryEnded
  brain thread -> frame loop (out queue): FirstToken, SentenceReady, ReplyDone, NudgeStarted,
      MindTimings, MemoriesUpdated, DirectorStateUpdated, NudgeDue, WorkerFailed
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


def now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class Event:
    t: float = field(default_factory=now, kw_only=True)

    def to_dict(self) -> dict:
        d = {"event": self.__class__.__qualname__}
        for k, v in asdict(self).items():
            if isinstance(v, tuple):
                v = list(v)
            if isinstance(v, bytes | bytearray):
                continue
            d[k] = v
        return d


@dataclass(frozen=True)
class TurnEvent(Event):
    turn: int  # the turn it belongs to (the one it would open, for the player's speech)


@dataclass(frozen=True)
class ByCharacter(TurnEvent):
    """Of one character's reply or line in that turn."""

    character: str


# ---- the player (frame loop) -------------------------------------------------------------

@dataclass(frozen=True)
class PlayerSpeechStarted(TurnEvent):
    """The VAD (or the talk button) opened an utterance; ``turn`` is the one it would open."""

    onset_frame: int = 0  # audio time of the onset, 16 kHz samples


@dataclass(frozen=True)
class PlayerSpeechEnded(TurnEvent):
    """The utterance closed (VAD silence or the talk button up); Whisper has it now."""

    seconds: float = 0.0  # how long the utterance was


@dataclass(frozen=True)
class SpeechRejected(TurnEvent):
    """An utterance dropped instead of heard (too short, echo of a character, no words...)."""

    reason: str
    text: str = ""


@dataclass(frozen=True)
class PlayerHeard(TurnEvent):
    """A player line opened turn ``turn``, addressed to ``addressed`` (spoken or typed)."""

    text: str
    language: str = "en"
    confidence: float = 1.0
    addressed: str = ""


@dataclass(frozen=True)
class ThinkingAhead(ByCharacter):
    """The player paused on a line that looks finished (``voice.events.EndLikely``): the mind
    starts on ``text`` for ``character`` before the turn is closed; its output is held (nothing
    said, nothing fired) until the line is heard as final. ``turn``: the one it would open."""

    text: str = ""


@dataclass(frozen=True)
class ThinkingDropped(ByCharacter):
    """A line thought ahead on was not the turn's after all (the player spoke on, the final
    transcript differs, the story moved): its held output is thrown away."""

    reason: str = ""


@dataclass(frozen=True)
class PlayerPressed(TurnEvent):
    """The player pointed at ``target`` and pressed select."""

    target: str


# ---- the character's reply (brain thread) ---------------------------------------------------

@dataclass(frozen=True)
class FirstToken(ByCharacter):
    """The model chose the reply's first token."""


@dataclass(frozen=True)
class SentenceReady(ByCharacter):
    """A sentence to speak and subtitle: the model's, or a fallback line (``index`` -1)."""

    text: str
    index: int  # 0, 1, ... in the reply; -1 for a fallback line the model did not write


@dataclass(frozen=True)
class ReplyDone(ByCharacter):
    """The committed reply. ``triggers``: what the model named; the frame loop applies them,
    unless ``withheld`` says why not (see ``runtime.brain.triggers_to_fire``)."""

    say: str
    emotion: str
    triggers: tuple[str, ...]
    fallback: bool = False
    fallback_reason: str = ""
    moderated: bool = False
    interrupted: bool = False  # barge-in cut the turn (or cancelled it before it began)
    withheld: str = ""  # why none of ``triggers`` may fire ("" = they all go to Story.apply)


@dataclass(frozen=True)
class NudgeStarted(ByCharacter):
    """The director decided the player is stalling and ``character`` steers them toward the beat's
    goal (the model writes the words). ``turn`` is a nudge turn of its own (silence, or a
    character other than the one addressed), or the player's turn whose prompt got the hint."""

    reason: str  # the director's reason, e.g. "silence: 30 s without the player speaking"


@dataclass(frozen=True)
class MindTimings(ByCharacter):
    """Milliseconds of the turn's model stages and token counts (``mind.reply.TurnTimings``)."""

    timings: dict


# ---- the character speaking (frame loop, from the mixer) ------------------------------------

@dataclass(frozen=True)
class LineStarted(ByCharacter):
    """The first sample of the turn's line reached the speakers (audio time ``frame``)."""

    frame: int = 0  # 16 kHz samples since the session started


@dataclass(frozen=True)
class LineStopped(ByCharacter):
    """The line played out, or the player cut it off after ``words_spoken`` words."""

    interrupted: bool = False
    words_spoken: int = 0
    frame: int = 0  # audio time it went silent, 16 kHz samples


# ---- the story (frame loop) ---------------------------------------------------------------

@dataclass(frozen=True)
class TriggerFired(TurnEvent):
    trigger: str
    by: str
    beat_after: str = ""


@dataclass(frozen=True)
class TriggerRefused(TurnEvent):
    trigger: str
    by: str
    reason: str


@dataclass(frozen=True)
class StoryEnded(Event):
    text: str  # the ending the author wrote


# ---- the brain thread's bookkeeping -------------------------------------------------------

@dataclass(frozen=True)
class WorkerFailed(Event):
    """A job raised on a worker thread (or a cue was missing); the session goes on."""

    worker: str
    error: str


@dataclass(frozen=True)
class MemoriesUpdated(Event):
    memories: dict  # MemoryStore.to_state(), a copy made on the brain thread


@dataclass(frozen=True)
class DirectorStateUpdated(Event):
    """A copy of the director's state, made on the brain thread; the frame loop puts it into
    ``story.state.director`` (only the frame loop holds it after the hand-over)."""

    state: dict


@dataclass(frozen=True)
class NudgeDue(Event):
    """The director wants ``character`` to speak up (silence, or off topic while the player
    talked to someone else). The frame loop opens a nudge turn for it once nothing else is going
    on, unless a turn was opened meanwhile: ``next_turn`` is the number the next turn had when
    the director decided, so a newer turn (the player spoke up after all) makes it stale."""

    character: str
    reason: str
    next_turn: int


FromBrain = (FirstToken | SentenceReady | ReplyDone | NudgeStarted | MindTimings | MemoriesUpdated
             | DirectorStateUpdated | NudgeDue | WorkerFailed)
