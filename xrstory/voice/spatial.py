"""Head-relative placement of a mono source: distance attenuation, interaural level difference
(ILD) and interaural time difference (ITD). Positions use OpenXR conventions (metres, +X right,
+Y up, -Z forward); orientations are quaternions (x, y, z, w).

A broadband model, deliberately small: Woodworth's spherical-head ITD, a head-shadow ILD of up to
``max_ild_db`` at 90 degrees, and inverse-distance gain beyond ``ref_distance``. Enough for "the
voice comes from where Maren stands"; no HRTF elevation cues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]  # x, y, z, w

SPEED_OF_SOUND = 343.0  # m/s
HEAD_RADIUS = 0.0875  # m


@dataclass(frozen=True)
class Listener:
    position: Vec3 = (0.0, 1.6, 0.0)  # the scene's default standing head height
    orientation: Quat = (0.0, 0.0, 0.0, 1.0)  # looking down -Z


@dataclass(frozen=True)
class SpatialParams:
    ref_distance: float = 1.0  # m; no attenuation closer than this
    rolloff: float = 1.0  # 1 = inverse distance
    max_ild_db: float = 10.0  # far-ear attenuation at 90 degrees azimuth
    min_gain: float = 0.05


@dataclass(frozen=True)
class EarGains:
    left: float  # linear gain
    right: float
    left_delay_s: float  # extra delay of the left ear (>= 0)
    right_delay_s: float
    azimuth_rad: float  # + to the listener's right
    distance: float  # m


def _rotate_inverse(q: Quat, v: np.ndarray) -> np.ndarray:
    """Rotate v by the inverse (conjugate) of unit quaternion q: world -> head frame."""
    x, y, z, w = q
    u = np.array([-x, -y, -z])
    return v + 2.0 * np.cross(u, np.cross(u, v) + w * v)


def ear_gains(source: Vec3, listener: Listener, params: SpatialParams | None = None) -> EarGains:
    p = params or SpatialParams()
    rel = _rotate_inverse(listener.orientation, np.asarray(source, float) - np.asarray(listener.position, float))
    dist = float(np.linalg.norm(rel))
    azimuth = math.atan2(rel[0], -rel[2]) if dist > 1e-6 else 0.0  # 0 ahead, +pi/2 right
    # Woodworth ITD on the lateral angle (front/back symmetric)
    lateral = math.asin(max(-1.0, min(1.0, rel[0] / dist))) if dist > 1e-6 else 0.0
    itd = HEAD_RADIUS / SPEED_OF_SOUND * (abs(lateral) + math.sin(abs(lateral)))  # seconds, <= ~0.66 ms
    shadow = 10 ** (-p.max_ild_db * abs(math.sin(lateral)) / 20)
    dist_gain = max(p.min_gain, (p.ref_distance / max(dist, p.ref_distance)) ** p.rolloff)
    near, far = dist_gain, dist_gain * shadow
    if lateral >= 0:  # source on the right: right ear nearer and earlier
        return EarGains(far, near, itd, 0.0, azimuth, dist)
    return EarGains(near, far, 0.0, itd, azimuth, dist)


class Spatializer:
    """Streams a mono source into stereo with per-chunk gains and integer-sample ear delays.
    Keeps a short history so delays stay continuous across chunks."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._hist = np.zeros(64, np.float32)  # > max ITD (0.66 ms = 32 samples at 48 kHz)
        self._prev: tuple[float, float] | None = None

    def process(self, mono: np.ndarray, gains: EarGains) -> np.ndarray:
        """(n,) float32 -> (n, 2) float32; gains ramp linearly from the previous chunk's (no clicks)."""
        n = len(mono)
        buf = np.concatenate([self._hist, mono.astype(np.float32)])
        self._hist = buf[-len(self._hist):]
        h = len(self._hist)
        out = np.empty((n, 2), np.float32)
        for ch, (g, delay) in enumerate(((gains.left, gains.left_delay_s), (gains.right, gains.right_delay_s))):
            d = min(int(round(delay * self.rate)), h)
            g0 = self._prev[ch] if self._prev else g
            ramp = np.linspace(g0, g, n, dtype=np.float32)
            out[:, ch] = buf[h - d:h - d + n] * ramp
        self._prev = (gains.left, gains.right)
        return out
