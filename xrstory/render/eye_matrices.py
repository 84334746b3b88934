"""Per-eye matrices for drawing, cached per field of view: the renderer asks for them every
frame and both eyes' ``Fov`` repeat (a headset's do not change), so the projections and their
inverses are computed once.
"""

from __future__ import annotations

import functools

import numpy as np

NEAR, FAR = 0.05, 100.0  # metres


@functools.lru_cache(maxsize=16)
def projection(fov) -> np.ndarray:
    return fov.projection(NEAR, FAR)


@functools.lru_cache(maxsize=16)
def inverse_projection(fov) -> np.ndarray:
    return np.linalg.inv(fov.projection(NEAR, FAR).astype(np.float64)).astype(np.float32)


def rigid_view_matrix(pose) -> np.ndarray:
    """World -> eye for a rigid pose: (R^T, -R^T p), without a general 4x4 inverse."""
    r = pose.rotation_matrix()
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = r.T
    m[:3, 3] = -(r.T @ np.asarray(pose.position, np.float32))
    return m

