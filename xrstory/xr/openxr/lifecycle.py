"""The OpenXR session lifecycle as a small state machine: session state in, actions out.

No OpenXR calls here (the display performs the actions), so the rules are testable without a
runtime:

    IDLE -> nothing            READY -> BEGIN              SYNCHRONIZED/VISIBLE/FOCUSED -> nothing
    STOPPING -> END            LOSS_PENDING -> SAVE, DESTROY, RECREATE (bounded in time)
    EXITING -> SAVE, EXIT      instance loss -> SAVE, EXIT

Rendering is allowed in VISIBLE and FOCUSED; frames run (wait/begin/end) from BEGIN until END.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class SessionState(StrEnum):
    UNKNOWN = "UNKNOWN"
    IDLE = "IDLE"
    READY = "READY"
    SYNCHRONIZED = "SYNCHRONIZED"
    VISIBLE = "VISIBLE"
    FOCUSED = "FOCUSED"
    STOPPING = "STOPPING"
    LOSS_PENDING = "LOSS_PENDING"
    EXITING = "EXITING"
    LOST = "LOST"  # ours: the session or instance is gone without LOSS_PENDING (runtime killed)


class Action(StrEnum):
    BEGIN = "begin"  # xrBeginSession
    END = "end"  # xrEndSession
    SAVE = "save"  # the app's on_save callback
    DESTROY = "destroy"  # destroy the session (and what hangs on it)
    RECREATE = "recreate"  # try to get a system and a new session within the time bound
    EXIT = "exit"  # leave the frame loop


@dataclass
class Transition:
    t: float  # time.monotonic() seconds
    old: SessionState
    new: SessionState


@dataclass
class Lifecycle:
    state: SessionState = SessionState.UNKNOWN
    running: bool = False  # between BEGIN and END: the frame functions may be called
    transitions: list[Transition] = field(default_factory=list)
    saved: bool = False

    def on_state(self, new: SessionState | str) -> list[Action]:
        """Record a session state change and say what to do about it."""
        new = SessionState(new)
        self.transitions.append(Transition(time.monotonic(), self.state, new))
        self.state = new
        if new == SessionState.READY and not self.running:
            self.running = True
            return [Action.BEGIN]
        if new == SessionState.STOPPING and self.running:
            self.running = False
            return [Action.END]
        if new == SessionState.LOSS_PENDING:
            self.running = False
            return [*self._save(), Action.DESTROY, Action.RECREATE]
        if new == SessionState.EXITING:
            self.running = False
            return [*self._save(), Action.EXIT]
        return []

    def on_lost(self, recoverable: bool) -> list[Action]:
        """The runtime went away mid-call (session or instance lost without LOSS_PENDING)."""
        self.transitions.append(Transition(time.monotonic(), self.state, SessionState.LOST))
        self.state = SessionState.LOST
        self.running = False
        return [*self._save(), Action.DESTROY, Action.RECREATE if recoverable else Action.EXIT]

    def on_recreated(self) -> None:
        self.saved = False  # a new session: the next loss or exit saves again
        self.state = SessionState.UNKNOWN

    def _save(self) -> list[Action]:
        if self.saved:
            return []
        self.saved = True
        return [Action.SAVE]

    @property
    def should_render(self) -> bool:
        return self.running and self.state in (SessionState.VISIBLE, SessionState.FOCUSED)

    def names(self) -> list[str]:
        """The sequence of states seen, e.g. ["IDLE", "READY", ..., "EXITING"]."""
        return [tr.new.value for tr in self.transitions]
