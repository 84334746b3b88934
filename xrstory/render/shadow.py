"""The shadow map of the one shadow-casting light: a depth texture drawn from the light (shared
by both eyes) and sampled with a comparison sampler (bilinear PCF per tap).

A directional light gets an orthographic frustum around the scene's middle; a point light (a
lamp) a wide perspective frustum from its position towards a target point (the middle of the
characters unless the scene names one), starting past ``POINT_NEAR`` so the lamp's own glass
does not shadow everything.

One map holds every caster (props, primitive figures, glTF characters), so a lit pixel reads
one map: on llvmpipe each comparison tap costs four texel fetches per pixel of both eyes, and
reading two maps (static + characters) cost a third of the frame. The map is redrawn only when
a caster or the light moved (``stale``); glTF characters move every frame (idle clips).
"""

from __future__ import annotations

import numpy as np

SIZE = 1024  # texels per side
POINT_NEAR, POINT_FOV_DEG = 0.5, 120.0  # metres; full angle of the point light's frustum


def shadow_size_for(target_px: int) -> int:
    """Shadow map texels per side for eyes ``target_px`` wide: the full map for headset eyes,
    smaller ones for thumbnails and tests (llvmpipe pays per texel whatever the eye size)."""
    return SIZE if target_px >= 640 else 512 if target_px >= 256 else 256


def _look(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    f = target - eye
    f = f / (np.linalg.norm(f) or 1.0)
    up = np.array([0.0, 1.0, 0.0], np.float32) if abs(f[1]) < 0.99 else np.array([0.0, 0.0, 1.0], np.float32)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    m = np.eye(4, dtype=np.float32)
    m[0, :3], m[1, :3], m[2, :3] = r, u, -f
    m[:3, 3] = -(m[:3, :3] @ eye)
    return m


def light_matrix(kind: str, where: np.ndarray, centre: np.ndarray, radius: float, far: float = 20.0) -> np.ndarray:
    """(4, 4) world -> light clip space. ``where``: the direction a directional light travels,
    or a point light's position; ``centre``/``radius`` (metres): what the map must cover."""
    where = np.asarray(where, np.float32)
    centre = np.asarray(centre, np.float32)
    if kind == "directional":
        eye = centre - where * far * 0.5
        view = _look(eye, centre)
        r, n, f = radius, 0.1, far
        proj = np.array([[1 / r, 0, 0, 0], [0, 1 / r, 0, 0], [0, 0, -2 / (f - n), -(f + n) / (f - n)],
                         [0, 0, 0, 1]], np.float32)
        return proj @ view
    view = _look(where, centre)
    t = 1.0 / np.tan(np.radians(POINT_FOV_DEG) / 2)
    n, f = POINT_NEAR, far
    proj = np.array([[t, 0, 0, 0], [0, t, 0, 0], [0, 0, -(f + n) / (f - n), -2 * f * n / (f - n)], [0, 0, -1, 0]],
                    np.float32)
    return proj @ view


class ShadowMap:
    """The depth map from the shadow light and whether it must be redrawn this frame."""

    def __init__(self, ctx, size: int = SIZE):
        import moderngl

        self.ctx, self.size = ctx, size
        self.depth = ctx.depth_texture((size, size))
        self.depth.compare_func = "<="
        self.depth.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.depth.repeat_x = self.depth.repeat_y = False
        self.fbo = ctx.framebuffer(depth_attachment=self.depth)
        self.matrix = np.eye(4, dtype=np.float32)
        self.stale = True  # a caster or the light moved since the map was drawn

    def begin(self) -> None:
        """Clear the map and draw into it."""
        import moderngl

        ctx = self.ctx
        self.fbo.use()  # (its viewport is the whole map; its depth mask is on since it was made)
        ctx.scissor = None
        self.fbo.clear(depth=1.0)
        ctx.enable_only(moderngl.DEPTH_TEST)
        ctx.depth_func = "<"
        ctx.polygon_offset = 1.5, 2.0  # slope-scaled bias against shadow acne

    def end(self, unit: int) -> None:
        self.ctx.polygon_offset = 0.0, 0.0
        self.stale = False
        self.depth.use(unit)

    def release(self) -> None:
        self.fbo.release()
        self.depth.release()
