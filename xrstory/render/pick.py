"""Ray picking against oriented bounding boxes (pure numpy): what is the player pointing at?

A ``Box`` is a local axis-aligned box (metres, object space) under a 4x4 object-to-world
matrix, so props keep their rotation and scale. The ray is intersected in each box's local
space (slab test); the nearest hit in front of the origin wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    id: str
    matrix: np.ndarray  # (4, 4) object to world
    bounds_min: np.ndarray  # (3,) object space
    bounds_max: np.ndarray  # (3,)


def ray_box_distance(box: Box, origin, direction) -> float | None:
    """Distance along the (normalised) world ray to the box, or None if it misses."""
    d = np.asarray(direction, np.float64)
    d = d / (np.linalg.norm(d) or 1.0)
    inv = np.linalg.inv(box.matrix.astype(np.float64))
    o_local = inv[:3, :3] @ np.asarray(origin, np.float64) + inv[:3, 3]
    d_local = inv[:3, :3] @ d  # not normalised: t stays in world metres
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (box.bounds_min - o_local) / d_local
        t2 = (box.bounds_max - o_local) / d_local
    # a ray parallel to a slab: inside the slab -> no constraint, outside -> miss
    parallel = np.abs(d_local) < 1e-12
    if np.any(parallel & ((o_local < box.bounds_min) | (o_local > box.bounds_max))):
        return None
    lo = np.where(parallel, -np.inf, np.minimum(t1, t2))
    hi = np.where(parallel, np.inf, np.maximum(t1, t2))
    near, far = float(np.max(lo)), float(np.min(hi))
    if far < max(near, 0.0):
        return None
    return max(near, 0.0)


def pick_nearest(boxes: list[Box], origin, direction) -> str | None:
    best, best_t = None, np.inf
    for box in boxes:
        t = ray_box_distance(box, origin, direction)
        if t is not None and t < best_t:
            best, best_t = box.id, t
    return best
