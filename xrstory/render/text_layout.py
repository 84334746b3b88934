"""Lay out a subtitle into quads in its billboard's plane (metres): word wrap, kerning, centred
lines, a backing panel. Pure numpy; ``subtitles.py`` draws the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrstory.render.font import FontAtlas


@dataclass
class TextLayout:
    vertices: np.ndarray  # (n, 5) float32: x, y (metres, text plane), u, v, kind (0 glyph, 1 panel)
    panel: tuple[float, float, float, float]  # min x, min y, max x, max y, metres
    lines: list[str]


def wrap(atlas: FontAtlas, text: str, max_width_em: float) -> list[str]:
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}" if line else word
            if line and measure(atlas, trial) > max_width_em:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def measure(atlas: FontAtlas, line: str) -> float:
    """Advance width of one line, em."""
    w, prev = 0.0, None
    for ch in line:
        w += atlas.glyph(ch).advance + atlas.kerning.get((prev, ch), 0.0)
        prev = ch
    return w


def layout(atlas: FontAtlas, text: str, size_m: float = 0.08, max_width_m: float = 1.2,
           padding_m: float = 0.04, max_lines: int = 4) -> TextLayout:
    """Quads for ``text`` with its bottom centre (panel included) at the origin of the plane.

    ``size_m`` is the em size in metres (0.08 m reads comfortably at 2-3 m). Past
    ``max_lines`` the *start* is dropped, so the newest words of a streaming reply stay shown.
    """
    lines = wrap(atlas, text, max_width_m / size_m)[-max_lines:]
    line_h = atlas.line_height * size_m
    widths = [measure(atlas, ln) * size_m for ln in lines]
    block_w = max(widths, default=0.0)
    block_h = line_h * len(lines)
    panel = (-block_w / 2 - padding_m, 0.0, block_w / 2 + padding_m, block_h + 2 * padding_m)
    quads = [(panel[0], panel[1], panel[2], panel[3], 0.0, 0.0, 0.0, 0.0, 1.0)]
    descent = (atlas.line_height - atlas.ascender) * size_m
    for row, (line, width) in enumerate(zip(lines, widths, strict=True)):
        baseline = padding_m + block_h - (row + 1) * line_h + descent
        pen, prev = -width / 2, None
        for ch in line:
            g = atlas.glyph(ch)
            pen += atlas.kerning.get((prev, ch), 0.0) * size_m
            if ch != " ":
                x0 = pen + g.left * size_m
                y1 = baseline + g.top * size_m
                u0, v0, u1, v1 = g.uv
                quads.append((x0, y1 - g.height * size_m, x0 + g.width * size_m, y1, u0, v1, u1, v0, 0.0))
            pen += g.advance * size_m
            prev = ch
    q = np.asarray(quads, np.float32)  # (k, 9): x0, y0, x1, y1, u0, v_bottom, u1, v_top, kind
    x0, y0, x1, y1, u0, vb, u1, vt, kind = q.T
    corners = [(x0, y0, u0, vb), (x1, y0, u1, vb), (x1, y1, u1, vt),
               (x0, y0, u0, vb), (x1, y1, u1, vt), (x0, y1, u0, vt)]
    verts = np.stack([np.stack([cx, cy, cu, cv, kind], -1) for cx, cy, cu, cv in corners], 1)
    return TextLayout(np.ascontiguousarray(verts.reshape(-1, 5), np.float32), panel, lines)
