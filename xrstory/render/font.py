"""A signed-distance-field glyph atlas rasterised from a TrueType font with freetype-py.

The bundled font is DejaVu Sans (``assets/fonts/DejaVuSans.ttf``, licence beside it). Each
glyph is rendered at ``pixel_size`` with freetype, thresholded, and turned into a signed
distance field with an exact separable squared-distance transform in numpy (no scipy: the
render layer must run inside a minimal root). Value 0.5 is the outline, 1 is ``spread``
pixels inside, 0 is ``spread`` pixels outside, so text stays sharp at any size in 3D.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_FONT = Path(__file__).resolve().parents[2] / "assets" / "fonts" / "DejaVuSans.ttf"
DEFAULT_CHARS = "".join(chr(c) for c in range(32, 127)) + "’‘“”—–…éèàçöüäñ°"


@dataclass(frozen=True)
class Glyph:
    advance: float  # em units (1 em = the font size)
    left: float  # quad's left edge relative to the pen, em
    top: float  # quad's top relative to the baseline, em (up positive)
    width: float  # em
    height: float  # em
    uv: tuple[float, float, float, float]  # u0, v0, u1, v1 in the atlas (v down the image)


@dataclass
class FontAtlas:
    image: np.ndarray  # (h, w) uint8, the distance field
    glyphs: dict[str, Glyph]
    line_height: float  # em
    ascender: float  # em
    spread_px: int
    pixel_size: int
    kerning: dict[tuple[str, str], float] = field(default_factory=dict)  # em

    def glyph(self, ch: str) -> Glyph:
        return self.glyphs.get(ch) or self.glyphs["?"]


def _edt_1d_min(f: np.ndarray, axis: int, reach: int) -> np.ndarray:
    """min over |k| <= reach of f shifted by k along axis, plus k^2 (one separable pass)."""
    out = f.copy()
    n = f.shape[axis]
    for k in range(1, min(reach, n - 1) + 1):
        cost = float(k * k)
        a = [slice(None)] * f.ndim
        b = [slice(None)] * f.ndim
        a[axis], b[axis] = slice(k, None), slice(None, -k)
        # neighbour k before and k after
        np.minimum(out[tuple(a)], f[tuple(b)] + cost, out=out[tuple(a)])
        np.minimum(out[tuple(b)], f[tuple(a)] + cost, out=out[tuple(b)])
    return out


def squared_distance_to(mask: np.ndarray, reach: int) -> np.ndarray:
    """Squared Euclidean distance (pixels^2) from each pixel to the nearest True pixel, exact
    up to ``reach`` pixels along each axis (larger values are clipped to reach^2 + reach^2)."""
    big = float(2 * reach * reach + 1)
    f = np.where(mask, 0.0, big).astype(np.float32)
    return _edt_1d_min(_edt_1d_min(f, 1, reach), 0, reach)


def signed_distance_field(coverage: np.ndarray, spread: int) -> np.ndarray:
    """(h, w) float32 in 0..1 from a coverage bitmap 0..1: 0.5 on the edge, + inside."""
    inside = coverage >= 0.5
    d_out = np.sqrt(squared_distance_to(inside, spread))  # > 0 outside
    d_in = np.sqrt(squared_distance_to(~inside, spread))  # > 0 inside
    signed = np.where(inside, d_in - 0.5, -(d_out - 0.5))
    return np.clip(0.5 + signed / (2.0 * spread), 0.0, 1.0).astype(np.float32)


def build_atlas(font_path: str | Path = DEFAULT_FONT, pixel_size: int = 48, spread: int = 6,
                chars: str = DEFAULT_CHARS, atlas_width: int = 1024) -> FontAtlas:
    """Rasterise ``chars`` of a TrueType font into one SDF atlas image."""
    import freetype

    font_path = Path(font_path)
    if not font_path.is_file():
        raise FileNotFoundError(f"{font_path}: font file not found")
    face = freetype.Face(str(font_path))
    face.set_pixel_sizes(0, pixel_size)
    pad = spread + 1
    bitmaps, metrics = {}, {}
    for ch in dict.fromkeys(chars):
        if face.get_char_index(ch) == 0 and ch != " ":
            continue  # the font lacks it; layout falls back to '?'
        face.load_char(ch, freetype.FT_LOAD_RENDER | freetype.FT_LOAD_TARGET_NORMAL)
        g = face.glyph
        bm = g.bitmap
        img = np.array(bm.buffer, np.uint8).reshape(bm.rows, bm.pitch)[:, :bm.width] if bm.rows else \
            np.zeros((0, 0), np.uint8)
        bitmaps[ch] = img
        metrics[ch] = (g.advance.x / 64.0, g.bitmap_left, g.bitmap_top)
    # shelf packing, glyphs padded by the SDF spread
    x = y = shelf = 0
    places = {}
    for ch, img in bitmaps.items():
        h, w = img.shape[0] + 2 * pad, img.shape[1] + 2 * pad
        if x + w > atlas_width:
            x, y, shelf = 0, y + shelf, 0
        places[ch] = (x, y, w, h)
        x += w
        shelf = max(shelf, h)
    height = int(2 ** np.ceil(np.log2(max(y + shelf, 1))))
    coverage = np.zeros((height, atlas_width), np.float32)
    for ch, img in bitmaps.items():
        x0, y0, w, h = places[ch]
        coverage[y0 + pad:y0 + pad + img.shape[0], x0 + pad:x0 + pad + img.shape[1]] = img / 255.0
    sdf = (signed_distance_field(coverage, spread) * 255.0 + 0.5).astype(np.uint8)
    glyphs = {}
    for ch, (adv, left, top) in metrics.items():
        x0, y0, w, h = places[ch]
        glyphs[ch] = Glyph(advance=adv / pixel_size, left=(left - pad) / pixel_size,
                           top=(top + pad) / pixel_size, width=w / pixel_size, height=h / pixel_size,
                           uv=(x0 / atlas_width, y0 / height, (x0 + w) / atlas_width, (y0 + h) / height))
    kerning = {}
    if face.has_kerning:
        letters = [c for c in glyphs if c.isalpha()]
        for a in letters:
            for b in letters:
                k = face.get_kerning(a, b).x / 64.0
                if k:
                    kerning[(a, b)] = k / pixel_size
    size = face.size
    return FontAtlas(image=sdf, glyphs=glyphs, line_height=size.height / 64.0 / pixel_size,
                     ascender=size.ascender / 64.0 / pixel_size, spread_px=spread, pixel_size=pixel_size,
                     kerning=kerning)
