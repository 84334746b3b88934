"""What the player is looking at, from head pose: dwell seconds per prop and character.

The head's forward axis is -Z rotated by its orientation (OpenXR: xyzw quaternion, metres).
A target is looked at when the angle between forward and the direction to it is within
``max(min_angle_deg, the target's angular radius)``; the nearest such angle wins. The
runtime calls ``update`` once per frame with the frame's ``dt`` and hands ``take()`` to
``Director.on_gaze`` now and then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xrstory.story import Scene


@dataclass(frozen=True)
class GazeTarget:
    id: str  # "prop.<id>" or "character.<id>"
    center: tuple[float, float, float]  # metres, scene space
    radius: float  # metres


def scene_targets(scene: Scene) -> list[GazeTarget]:
    """Props the author described or made interactive, and each character's head."""
    out = []
    for p in scene.props:
        if p.interactive or p.description:
            out.append(GazeTarget(f"prop.{p.id}", p.position, 0.5 * float(max(p.scale))))
    for c in scene.characters:
        head = (c.position[0], c.position[1] + 0.9 * c.appearance.height, c.position[2])
        out.append(GazeTarget(f"character.{c.id}", head, 0.35))
    return out


def forward_from_quaternion(q_xyzw: Sequence[float]) -> np.ndarray:
    """(4,) xyzw -> (3,) unit forward vector (-Z rotated by q)."""
    x, y, z, w = (float(v) for v in q_xyzw)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if n < 1e-9:
        raise ValueError(f"head orientation {tuple(q_xyzw)} is not a rotation (zero quaternion)")
    x, y, z, w = x / n, y / n, z / n, w / n
    # third column of the rotation matrix, negated
    return -np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])


class GazeTracker:
    def __init__(self, targets: Sequence[GazeTarget], min_angle_deg: float = 8.0):
        self.targets = list(targets)
        self._centers = np.array([t.center for t in self.targets], dtype=np.float64).reshape(-1, 3)
        self._radii = np.array([t.radius for t in self.targets], dtype=np.float64)
        self.min_angle = math.radians(min_angle_deg)
        self.dwell: dict[str, float] = {}  # target id -> seconds since the last take()

    def looked_at(self, position: Sequence[float], orientation_xyzw: Sequence[float]) -> str | None:
        if not self.targets:
            return None
        fwd = forward_from_quaternion(orientation_xyzw)
        to = self._centers - np.asarray(position, dtype=np.float64)  # (n, 3)
        dist = np.maximum(np.linalg.norm(to, axis=1), 1e-6)
        angle = np.arccos(np.clip(to @ fwd / dist, -1.0, 1.0))  # (n,) radians
        allowed = np.maximum(self.min_angle, np.arctan(self._radii / dist))
        inside = np.flatnonzero(angle <= allowed)
        if inside.size == 0:
            return None
        return self.targets[int(inside[np.argmin(angle[inside])])].id

    def update(self, position: Sequence[float], orientation_xyzw: Sequence[float], dt: float) -> str | None:
        target = self.looked_at(position, orientation_xyzw)
        if target is not None:
            self.dwell[target] = self.dwell.get(target, 0.0) + dt
        return target

    def take(self) -> dict[str, float]:
        """Dwell seconds per target since the last call, then reset."""
        out, self.dwell = self.dwell, {}
        return out
