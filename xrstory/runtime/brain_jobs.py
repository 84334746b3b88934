"""What the brain thread is asked to do, in order (``runtime.brain.BrainWorker``): a turn
(``TurnRequest``), a note for the director (``DirectorNote``), or priming the prompt caches again
(``Reprime``). The frame loop makes them; only the brain thread acts on them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from xrstory.story.state import StoryState, TriggerResult


@dataclass
class TurnRequest:
    turn: int
    character: str
    text: str  # what the player said (as heard)
    state: StoryState  # a snapshot: the worker never touches the live story
    history: list = field(default_factory=list)  # story.state.Utterance items
    nudge: str | None = None  # director's reason when this turn is a nudge, not a player line
    cancel: threading.Event = field(default_factory=threading.Event)  # this turn's own barge-in flag
    # None: the player's line is final. An Event: the line was thought ahead on (its turn is not
    # open yet); what the turn produces is held until it is set, and dropped if ``cancel`` comes first
    commit: threading.Event | None = None


# ---- the director's inbox -----------------------------------------------------------------

@dataclass(frozen=True)
class TriggerApplied:
    result: TriggerResult


@dataclass(frozen=True)
class GazeDwell:
    dwell: dict[str, float]  # target id -> seconds looked at since the last hand-over


@dataclass(frozen=True)
class CharacterSpoke:
    character: str
    text: str


@dataclass(frozen=True)
class CharacterInterrupted:
    character: str


@dataclass(frozen=True)
class QuietTime:
    """``quiet_s`` seconds of frame time with nobody talking (after a character's line when
    ``spoke``); ``next_turn``: the frame loop's next turn number, stamped on a resulting nudge."""

    quiet_s: float
    spoke: bool
    next_turn: int


@dataclass(frozen=True)
class Settle:
    """Sets ``done`` once every job queued before it has run (shutdown, tests)."""

    done: threading.Event


DirectorNote = TriggerApplied | GazeDwell | CharacterSpoke | CharacterInterrupted | QuietTime | Settle


@dataclass(frozen=True)
class Reprime:
    """The state changed between turns (the player used a prop): compute the characters' prompt
    caches again up to the player's line (``CharacterMind.prime``; only what changed is prefilled),
    so the next turn does not prefill the changed props and triggers while the player waits."""

    state: StoryState
    history: list
