"""AR compositing on the CPU: what an OpenXR runtime does with our layer in its blend modes,
done here for headless runs, where an image file stands in for the passthrough camera.

The renderer writes premultiplied alpha. "alpha_blend": ``out = layer + background * (1 - a)``;
"additive" (see-through displays): ``out = background + layer`` (black adds nothing);
"opaque": the layer as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLEND_MODES = ("opaque", "alpha_blend", "additive")


def load_background(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8: the image scaled to cover ``size`` = (w, h) and centre-cropped."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: AR background image not found")
    try:
        img = Image.open(path).convert("RGB")
    except Exception as exc:  # PIL raises several types for unreadable images
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    w, h = size
    k = max(w / img.width, h / img.height)
    img = img.resize((max(w, round(img.width * k)), max(h, round(img.height * k))), Image.BILINEAR)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return np.asarray(img.crop((left, top, left + w, top + h)), np.uint8)


def composite(layer_rgba: np.ndarray, background_rgb: np.ndarray, mode: str) -> np.ndarray:
    """(h, w, 3) uint8 of a premultiplied (h, w, 4) uint8 layer over a (h, w, 3) background."""
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode '{mode}' is not one of {', '.join(BLEND_MODES)}")
    if layer_rgba.shape[:2] != background_rgb.shape[:2]:
        raise ValueError(f"layer {layer_rgba.shape[:2]} and background {background_rgb.shape[:2]} differ in size")
    layer = layer_rgba.astype(np.float32) / 255.0
    bg = background_rgb.astype(np.float32) / 255.0
    if mode == "opaque":
        out = layer[..., :3]
    elif mode == "alpha_blend":
        out = layer[..., :3] + bg * (1.0 - layer[..., 3:4])
    else:
        out = layer[..., :3] + bg
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
