"""The ``Lights`` uniform block of ``shaders/lighting.glsl`` (std140), packed with numpy.

One buffer holds ambient, fog, exposure, every light and the shadow light's matrix; each
program that includes lighting.glsl reads it from binding ``BINDING``, so a change of the
lights is one buffer write instead of dozens of uniform calls per program.
"""

from __future__ import annotations

import numpy as np

MAX_DIR, MAX_POINT, MAX_SPOT = 4, 16, 4
BINDING = 0
# offsets in float32 units (every member is a vec4, ivec4 or mat4: std140 packs them tightly)
_AMBIENT, _FOG, _COUNTS, _SHADOW, _SHADOW_PARAMS, _SHADOW_MATRIX = 0, 4, 8, 12, 16, 20
_DIR = 36
_POINT = _DIR + 8 * MAX_DIR
_SPOT = _POINT + 8 * MAX_POINT
SIZE_FLOATS = _SPOT + 12 * MAX_SPOT


def pack(lights, mood, exposure: float, srgb_encode: bool, shadow: tuple[int, int] = (0, 0),
         shadow_matrix: np.ndarray | None = None, shadow_texel: float = 0.0) -> bytes:
    """``lights``: a ``scene_model.LightSet``; ``mood``: a ``MoodLook``; ``shadow``: (kind
    0 none / 1 directional / 2 point, index of that light)."""
    f = np.zeros(SIZE_FLOATS, np.float32)
    i = f.view(np.int32)
    dirs, pts, spots = lights.directional[:MAX_DIR], lights.point[:MAX_POINT], lights.spot[:MAX_SPOT]
    f[_AMBIENT:_AMBIENT + 3], f[_AMBIENT + 3] = mood.ambient, exposure
    f[_FOG:_FOG + 3], f[_FOG + 3] = mood.fog_color, mood.fog_density
    i[_COUNTS:_COUNTS + 4] = (len(dirs), len(pts), len(spots), int(srgb_encode))
    i[_SHADOW:_SHADOW + 2] = shadow
    f[_SHADOW_PARAMS] = shadow_texel
    if shadow_matrix is not None:
        f[_SHADOW_MATRIX:_SHADOW_MATRIX + 16] = np.asarray(shadow_matrix, np.float32).T.ravel()  # column-major
    for k, (d, c) in enumerate(dirs):
        f[_DIR + 4 * k:_DIR + 4 * k + 3] = d
        f[_DIR + 4 * (MAX_DIR + k):_DIR + 4 * (MAX_DIR + k) + 3] = c
    for k, (p, r, c) in enumerate(pts):
        f[_POINT + 4 * k:_POINT + 4 * k + 4] = (*p, r)
        f[_POINT + 4 * (MAX_POINT + k):_POINT + 4 * (MAX_POINT + k) + 3] = c
    for k, (p, r, d, cos_cone, c) in enumerate(spots):
        f[_SPOT + 4 * k:_SPOT + 4 * k + 4] = (*p, r)
        f[_SPOT + 4 * (MAX_SPOT + k):_SPOT + 4 * (MAX_SPOT + k) + 4] = (*d, cos_cone)
        f[_SPOT + 4 * (2 * MAX_SPOT + k):_SPOT + 4 * (2 * MAX_SPOT + k) + 3] = c
    return f.tobytes()
