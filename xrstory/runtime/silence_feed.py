"""The player's silence, from the frame loop to the director's pacing clock.

Each frame the session tells ``SilenceFeed.update`` how long the frame was and what was going
on. Silence counts only while the player could be talking and is not: nothing of theirs is
being heard, no turn is in flight (a slow CPU takes 10-40 s a turn: the player is waiting for
us, not stalling) and no character is speaking (a character's line starts the silence over).
Every ``period_s`` of frame time the sum goes to ``BrainWorker.pace``, which runs
``director.on_time`` on the brain thread (the one thread that owns the director); a nudge comes
back to the frame loop as a ``NudgeDue`` event.

Used by ``runtime.session.Session``; tested in ``tests/test_runtime_nudge.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SilenceFeedConfig:
    period_s: float = 1.0  # frame-time seconds between hand-overs to the director

    def __post_init__(self):
        if not self.period_s > 0:
            raise ValueError(f"SilenceFeedConfig.period_s must be > 0 seconds, got {self.period_s}")


class SilenceFeed:
    """Frame-loop side of the silence clock. ``brain`` is the ``BrainWorker`` (anything with
    ``pace(quiet_s, spoke, next_turn)``)."""

    def __init__(self, brain, config: SilenceFeedConfig | None = None):
        self.config = config or SilenceFeedConfig()
        self.brain = brain
        self._since_flush = 0.0  # frame-time seconds since the last hand-over
        self._quiet_s = 0.0  # seconds of silence since the last hand-over (or the last character line)
        self._spoke = False  # a character spoke since the last hand-over

    def update(self, dt: float, *, waiting: bool, speaking: bool, next_turn: int) -> None:
        """One frame of ``dt`` seconds. ``waiting``: the player is being heard or a turn is in
        flight (neither silence nor a reset); ``speaking``: a character talks (silence resets)."""
        if dt < 0:
            raise ValueError(f"SilenceFeed.update: dt must be >= 0 seconds, got {dt}")
        self._since_flush += dt
        if speaking and not waiting:
            self._spoke, self._quiet_s = True, 0.0
        elif not waiting:
            self._quiet_s += dt
        if self._since_flush >= self.config.period_s:
            self.flush(next_turn)

    def flush(self, next_turn: int) -> None:
        """Hand what was counted since the last hand-over to the director (on the brain thread)."""
        if self._quiet_s > 0 or self._spoke:
            self.brain.pace(self._quiet_s, self._spoke, next_turn)
        self._since_flush, self._quiet_s, self._spoke = 0.0, 0.0, False
