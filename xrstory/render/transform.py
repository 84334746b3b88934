"""Small 4x4 transform helpers (numpy, float32, column vectors: ``world = M @ local``).

Conventions as in ``view.py``: right-handed, +Y up, -Z forward, metres, angles in degrees
where an author writes them (scene files) and radians inside.
"""

from __future__ import annotations

import math

import numpy as np


def translation(t) -> np.ndarray:
    m = np.eye(4, dtype=np.float32)
    m[:3, 3] = t
    return m


def scaling(s) -> np.ndarray:
    return np.diag([float(s[0]), float(s[1]), float(s[2]), 1.0]).astype(np.float32)


def rotation_euler_deg(deg) -> np.ndarray:
    """(4, 4) rotation from Euler angles in degrees, applied X then Y then Z (R = Rz @ Ry @ Rx)."""
    rx, ry, rz = (math.radians(float(a)) for a in deg)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = np.array([
        [cy * cz, cz * sx * sy - cx * sz, cx * cz * sy + sx * sz],
        [cy * sz, cx * cz + sx * sy * sz, cx * sy * sz - cz * sx],
        [-sy, cy * sx, cx * cy],
    ], np.float32)
    return m


def rotation_y(yaw_rad: float) -> np.ndarray:
    """(4, 4) rotation about +Y; yaw 0 keeps +Z, yaw +90 deg turns +Z into +X."""
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    m = np.eye(4, dtype=np.float32)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    return m


def trs(position, rotation_deg, scale, pivot=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Prop transform: scale, then rotate about ``pivot`` (metres, prop space), then place:
    T(position + pivot) @ R @ T(-pivot) @ S, composed in closed form (props animate every frame)."""
    m = rotation_euler_deg(rotation_deg)
    r = m[:3, :3]
    pv = np.asarray(pivot, np.float32)
    m[:3, 3] = np.asarray(position, np.float32) + pv - r @ pv
    m[:3, :3] = r * np.asarray(scale, np.float32)  # columns scaled: R @ diag(s)
    return m


def yaw_towards(origin, target) -> float:
    """Yaw (radians) that turns a figure's +Z front at ``origin`` towards ``target`` (XZ plane)."""
    dx, dz = float(target[0]) - float(origin[0]), float(target[2]) - float(origin[2])
    return math.atan2(dx, dz)


def wrap_angle(a: float) -> float:
    """``a`` in (-pi, pi]."""
    return (a + math.pi) % (2 * math.pi) - math.pi
