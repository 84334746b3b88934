"""Subtitles in 3D: a speech panel above the speaking character, turned to face the player's
head (yaw only, so text stays upright), drawn with the SDF font on top of the scene.

One ``SubtitleLayer`` per renderer; it owns the atlas texture and one vertex buffer per
character, rebuilt only when that character's text changes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from xrstory.render.font import FontAtlas, build_atlas
from xrstory.render.text_layout import TextLayout, layout


@dataclass
class _Caption:
    text: str
    layout: TextLayout
    vbo: object
    vao: object


def billboard_axes(anchor, head) -> tuple[np.ndarray, np.ndarray]:
    """(right, up) unit vectors of a plane at ``anchor`` facing ``head`` about the Y axis."""
    nx, nz = float(head[0]) - float(anchor[0]), float(head[2]) - float(anchor[2])
    norm = math.hypot(nx, nz)
    nx, nz = (nx / norm, nz / norm) if norm > 1e-6 else (0.0, 1.0)
    # right = up x normal, with up = +Y: (nz, 0, -nx)
    return np.array([nz, 0.0, -nx], np.float32), np.array([0.0, 1.0, 0.0], np.float32)


class SubtitleLayer:
    def __init__(self, ctx, program, atlas: FontAtlas | None = None, size_m: float = 0.1):
        self.ctx, self.program = ctx, program
        self.atlas = atlas or build_atlas()
        h, w = self.atlas.image.shape
        self.texture = ctx.texture((w, h), 1, np.ascontiguousarray(self.atlas.image).tobytes())
        self.texture.filter = (ctx.LINEAR, ctx.LINEAR)
        self.texture.repeat_x = self.texture.repeat_y = False
        self.size_m = size_m
        self.captions: dict[str, _Caption] = {}
        self._u = {name: program[name] for name in (
            "u_view_proj", "u_anchor", "u_right", "u_up", "u_text_color", "u_panel_color", "u_panel_rect",
            "u_panel_radius", "u_srgb_encode")}
        self._u["u_text_color"].value = (1.0, 0.97, 0.9, 1.0)
        self._u["u_panel_color"].value = (0.02, 0.025, 0.04, 0.72)
        self._u["u_panel_radius"].value = 0.03
        program["u_atlas"].value = 0

    def set_texts(self, texts: dict[str, str]) -> None:
        """Character id -> text now shown; an id left out (or empty text) hides its caption."""
        for cid in list(self.captions):
            if not texts.get(cid):
                cap = self.captions.pop(cid)
                cap.vao.release()
                cap.vbo.release()
        for cid, text in texts.items():
            if not text:
                continue
            cap = self.captions.get(cid)
            if cap is not None and cap.text == text:
                continue
            lay = layout(self.atlas, text, size_m=self.size_m)
            data = lay.vertices.tobytes()
            if cap is not None and cap.vbo.size >= len(data):
                cap.vbo.write(data)
                cap.text, cap.layout = text, lay
                continue
            if cap is not None:
                cap.vao.release()
                cap.vbo.release()
            vbo = self.ctx.buffer(data)
            vao = self.ctx.vertex_array(self.program, [(vbo, "2f 2f 1f", "in_position", "in_uv", "in_kind")])
            self.captions[cid] = _Caption(text, lay, vbo, vao)

    def draw(self, view_proj: np.ndarray, anchors: dict[str, np.ndarray], head, srgb: bool,
             clock=time.perf_counter) -> tuple[int, float]:
        """Draw every caption; returns the draw calls and the seconds inside them (GL time)."""
        calls, gl_s = 0, 0.0
        if not self.captions:
            return calls, gl_s
        self.texture.use(0)
        self._u["u_view_proj"].write(view_proj.T.tobytes())
        self._u["u_srgb_encode"].value = int(srgb)
        for cid, cap in self.captions.items():
            anchor = anchors.get(cid)
            if anchor is None:
                continue
            right, up = billboard_axes(anchor, head)
            self._u["u_anchor"].value = tuple(float(v) for v in anchor)
            self._u["u_right"].value = tuple(float(v) for v in right)
            self._u["u_up"].value = tuple(float(v) for v in up)
            self._u["u_panel_rect"].value = cap.layout.panel
            g = clock()
            cap.vao.render(vertices=len(cap.layout.vertices))
            gl_s += clock() - g
            calls += 1
        return calls, gl_s

    def release(self) -> None:
        self.set_texts({})
        self.texture.release()
