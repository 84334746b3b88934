"""Gaze dwell from the frame loop to the director, without the loop ever touching the director.

Each frame the session hands the frame's head pose to ``GazeFeed.update``: one ray test
against the scene's gaze targets (``director.gaze.GazeTracker``, a few small numpy arrays for
a dozen targets). Every ``period_s`` seconds of frame time, and before each turn (so the
director's hints for that turn already know what the player looked at), ``flush`` takes the
accumulated dwell and tells the brain worker (``GazeDwell``, a director inbox message), the one
thread that owns the director. The dict handed over is the tracker's own, swapped out by ``take``:
after the hand-over only the brain thread holds it.

Used by ``runtime.session.Session``; tested in ``tests/test_runtime_gaze.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xrstory.director.gaze import GazeTracker, scene_targets
from xrstory.runtime.brain_jobs import GazeDwell
from xrstory.story.scene import Scene


@dataclass(frozen=True)
class GazeFeedConfig:
    period_s: float = 3.0  # frame-time seconds between hand-overs to the director
    min_angle_deg: float = 8.0  # a target closer than this to the line of sight is looked at

    def __post_init__(self):
        if not self.period_s > 0:
            raise ValueError(f"GazeFeedConfig.period_s must be > 0 seconds, got {self.period_s}")
        if not 0 < self.min_angle_deg < 90:
            raise ValueError(f"GazeFeedConfig.min_angle_deg must be in (0, 90) degrees, got {self.min_angle_deg}")


class GazeFeed:
    """Frame-loop side: ``update`` per frame, ``flush`` before a turn. ``brain`` is the
    ``BrainWorker`` (anything with ``tell(note)`` that hands ``note`` to the director's thread)."""

    def __init__(self, scene: Scene, brain, config: GazeFeedConfig | None = None):
        self.config = config or GazeFeedConfig()
        self.tracker = GazeTracker(scene_targets(scene), min_angle_deg=self.config.min_angle_deg)
        self.brain = brain
        self.looking_at: str | None = None  # target id of the last frame ("prop.lamp"), or None
        self._since_flush = 0.0  # frame-time seconds since the last hand-over

    def update(self, position, orientation_xyzw, dt: float) -> str | None:
        """One frame: position (3,) metres, orientation (4,) xyzw, dt seconds of frame time."""
        self.looking_at = self.tracker.update(position, orientation_xyzw, dt)
        self._since_flush += dt
        if self._since_flush >= self.config.period_s:
            self.flush()
        return self.looking_at

    def flush(self) -> dict[str, float]:
        """Hand the dwell since the last flush to the director (on the brain thread); returns it."""
        self._since_flush = 0.0
        dwell = self.tracker.take()
        if dwell:
            self.brain.tell(GazeDwell(dwell))
        return dwell
