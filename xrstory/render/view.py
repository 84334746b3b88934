"""Views: where an eye is and what it sees, in OpenXR's conventions.

Right-handed, +Y up, -Z forward, metres. Orientation is a unit quaternion (x, y, z, w).
The field of view is asymmetric, as ``XrFovf`` gives it: angle_left and angle_down are
negative, in radians. Headless and OpenXR backends produce the same ``View`` objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Fov:
    angle_left: float = -math.radians(45)
    angle_right: float = math.radians(45)
    angle_up: float = math.radians(45)
    angle_down: float = -math.radians(45)

    def projection(self, near: float = 0.05, far: float = 100.0) -> np.ndarray:
        """OpenGL clip-space projection for this frustum, (4, 4) float32, column vectors."""
        left, right = math.tan(self.angle_left) * near, math.tan(self.angle_right) * near
        down, up = math.tan(self.angle_down) * near, math.tan(self.angle_up) * near
        m = np.zeros((4, 4), np.float32)
        m[0, 0] = 2 * near / (right - left)
        m[1, 1] = 2 * near / (up - down)
        m[0, 2] = (right + left) / (right - left)
        m[1, 2] = (up + down) / (up - down)
        m[2, 2] = -(far + near) / (far - near)
        m[2, 3] = -2 * far * near / (far - near)
        m[3, 2] = -1.0
        return m


@dataclass(frozen=True)
class Pose:
    position: tuple[float, float, float] = (0.0, 1.6, 0.0)  # metres
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # quaternion x, y, z, w

    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) float32 rotation of this pose."""
        x, y, z, w = self.orientation
        n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
        x, y, z, w = x / n, y / n, z / n, w / n
        return np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ], np.float32)

    def matrix(self) -> np.ndarray:
        """(4, 4) float32 pose-to-world transform."""
        m = np.eye(4, dtype=np.float32)
        m[:3, :3] = self.rotation_matrix()
        m[:3, 3] = self.position
        return m

    def forward(self) -> np.ndarray:
        return self.rotation_matrix() @ np.array([0, 0, -1], np.float32)

    @staticmethod
    def look_at(position, target, up=(0.0, 1.0, 0.0)) -> Pose:
        """A pose at ``position`` whose -Z axis points at ``target``."""
        p, t = np.asarray(position, np.float64), np.asarray(target, np.float64)
        f = t - p
        f /= np.linalg.norm(f) or 1.0
        r = np.cross(f, np.asarray(up, np.float64))
        if np.linalg.norm(r) < 1e-6:
            r = np.array([1.0, 0, 0])
        r /= np.linalg.norm(r)
        u = np.cross(r, f)
        rot = np.stack([r, u, -f], axis=1)  # columns: x, y, z axes in world
        return Pose(tuple(float(v) for v in p), _quat_from_matrix(rot))


def _quat_from_matrix(m: np.ndarray) -> tuple[float, float, float, float]:
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        w, x, y, z = 0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    return (float(x), float(y), float(z), float(w))


@dataclass(frozen=True)
class View:
    """One eye: its pose in world space and its field of view."""

    pose: Pose = field(default_factory=Pose)
    fov: Fov = field(default_factory=Fov)

    def view_matrix(self) -> np.ndarray:
        """(4, 4) float32 world-to-eye transform."""
        return np.linalg.inv(self.pose.matrix()).astype(np.float32)


def stereo_views(head: Pose, ipd: float = 0.063, fov: Fov | None = None) -> list[View]:
    """Left and right eye views for a head pose, eyes ``ipd`` metres apart along head +X."""
    fov = fov or Fov()
    right_axis = head.rotation_matrix()[:, 0]
    out = []
    for sign in (-1.0, 1.0):
        pos = np.asarray(head.position, np.float32) + sign * ipd / 2 * right_axis
        out.append(View(Pose(tuple(float(v) for v in pos), head.orientation), fov))
    return out
