"""Scenario "render": the demo scene drawn by the project's SceneRenderer into Monado's swapchains.

For ``frames`` rendered frames with the session FOCUSED, each eye's swapchain image is read back
(colour and depth) on sampled frames and summarised: how much of the image is scene geometry
(depth < 1), how many distinct colours, how far from a flat clear colour, and how the two eyes
differ (parallax). PNGs of the last frame's eyes go to the workdir for a human to look at.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from monado import MonadoService

from xrstory.render.renderer import SceneRenderer
from xrstory.story import Story, load_scene
from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay

SCENE_DIR = Path(__file__).resolve().parents[2] / "scenes" / "lighthouse"


def eye_stats(fbo) -> tuple[dict, np.ndarray]:
    w, h = fbo.size
    rgba = np.frombuffer(fbo.read(components=4), np.uint8).reshape(h, w, 4)  # (h, w, 4) bottom row first
    depth = np.frombuffer(fbo.read(attachment=-1, components=1, dtype="f4"), np.float32).reshape(h, w)  # 0..1 window depth
    rgb = rgba[..., :3].reshape(-1, 3)
    colours = np.unique(rgb[:: max(1, len(rgb) // 20000)], axis=0)
    mode = np.bincount((rgb.astype(np.int32) @ np.array([65536, 256, 1])).ravel()).max() / len(rgb)
    return {"size": [w, h], "geometry_fraction": float((depth < 0.9999).mean()),
            "distinct_colours": int(len(colours)), "most_common_colour_fraction": float(mode),
            "mean_rgb": [float(c) for c in rgb.mean(axis=0)]}, rgba


def render(workdir: Path, frames: int) -> dict:
    story = Story(load_scene(SCENE_DIR))
    samples: list[dict] = []
    rendered_focused = 0
    rendered_other = 0
    cpu_ms: list[float] = []
    last = None
    with MonadoService(workdir) as monado:
        with OpenXRDisplay(OpenXRConfig(ar_allowed=story.scene.scene.ar_allowed)) as display:
            with SceneRenderer(display.ctx, story.scene, story.state) as renderer:
                for frame in display.frames():
                    renderer.update(story.state, frame.dt)
                    if not frame.should_render:
                        continue
                    t0 = time.perf_counter()
                    renderer.draw(frame.views, frame.targets, ar_mode=display.blend_mode)
                    cpu_ms.append((time.perf_counter() - t0) * 1e3)
                    if display.lifecycle.state.value != "FOCUSED":
                        rendered_other += 1
                        continue
                    k = rendered_focused
                    rendered_focused += 1
                    if k in (0, frames // 2) or k >= frames - 20 and k % 5 == 0 or k == frames - 1:
                        eyes = [eye_stats(t) for t in frame.targets]
                        left, right = eyes[0][1], eyes[1][1]
                        diff = float(np.abs(left.astype(np.int16) - right.astype(np.int16)).mean())
                        samples.append({"frame": frame.index, "focused_frame": k, "eyes": [e[0] for e in eyes],
                                        "eye_difference": diff, "state": display.lifecycle.state.value,
                                        "gl_error": display.ctx.error})
                        last = (left, right)
                    if rendered_focused >= frames:
                        display.request_exit()
                        break
                display.request_exit()
                for _ in display.frames():  # drain to EXITING (renders nothing: exit was requested)
                    pass
            result = {"renderer": "SceneRenderer", "scene": story.scene.scene.id,
                      "rendered_focused": rendered_focused, "rendered_other": rendered_other,
                      "samples": samples, "transitions": display.lifecycle.names(),
                      "exit_reason": display.exit_reason, "blend_mode": display.blend_mode,
                      "render_ms_median": float(np.median(cpu_ms)) if cpu_ms else None,
                      "depth_submitted": display.session is None or bool(display.instance.has(
                          "XR_KHR_composition_layer_depth"))}
    if last is not None:
        from PIL import Image

        for name, img in zip(("eye_left.png", "eye_right.png"), last, strict=True):
            Image.fromarray(np.ascontiguousarray(img[::-1])).save(workdir / name)  # GL rows are bottom-up
    result.update(monado_exit=monado.exit_code, monado_errors=monado.errors(),
                  monado_warnings=sum("WARN" in line for line in monado.log_text().splitlines()))
    return result
