"""Golden images of the demo scene: catch visual regressions with a tolerance.

Each case renders scenes/lighthouse headless at 256x256 (mono) and compares with
tests/golden/<case>.png: mean absolute difference <= 2.0 (of 255) and at most 1% of pixels
off by more than 40, so driver rounding passes and a changed look fails.

After an intended change of the look, regenerate them (and look at them!) with:

    XRSTORY_UPDATE_GOLDEN=1 scripts/test.sh tests/test_render_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xrstory.render.renderer import SceneRenderer
from xrstory.render.view import Pose
from xrstory.story import Story, load_scene
from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("XRSTORY_UPDATE_GOLDEN") == "1"
SIZE = (256, 256)

CASES = {
    # case: (viewpoint, triggers fired before the frame, blend mode, speaking, subtitles)
    "storm_player": ("player", [], "opaque", {}, {}),
    "beacon_overview": ("overview", [("light_stove", "maren"), ("open_cellar", "player"),
                                     ("fetch_oil", "tobias"), ("light_lamp", "maren")], "opaque",
                        {"maren": 0.8}, {"maren": "Aye, she burns!"}),
    "ar_player": ("player", [("light_stove", "maren")], "alpha_blend", {}, {}),
}


def background() -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    return np.stack([xx * 255 // SIZE[0], yy * 255 // SIZE[1], np.full_like(xx, 90)], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def rig():
    scene = load_scene("scenes/lighthouse")
    with HeadlessDisplay(HeadlessConfig(eye_size=SIZE, stereo=False)) as display, \
            SceneRenderer(display.ctx, scene) as renderer:
        yield scene, display, renderer


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(rig, case):
    scene, display, renderer = rig
    viewpoint, triggers, mode, speaking, subtitles = CASES[case]
    story = Story(scene)
    for trig, by in triggers:
        assert story.apply(trig, by).fired
    vp = scene.viewpoint(viewpoint)
    display.set_head(Pose.look_at(vp.position, vp.look_at))
    display.blend_mode = mode
    display.background = background() if mode != "opaque" else None
    assert display.ctx.error == "GL_NO_ERROR"
    for frame in display.frames(max_frames=1):
        renderer.update(story.state, frame.dt, speaking=speaking, subtitles=subtitles, snap=True,
                        player_position=vp.position)
        renderer.draw(frame.views, frame.targets, ar_mode=mode)
    assert display.ctx.error == "GL_NO_ERROR"
    image = display.image()
    display.blend_mode, display.background = "opaque", None
    path = GOLDEN / f"{case}.png"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(image).save(path)
        pytest.skip(f"wrote {path}")
    assert path.is_file(), f"{path} missing: run XRSTORY_UPDATE_GOLDEN=1 scripts/test.sh {__file__}"
    want = np.asarray(Image.open(path).convert("RGB"), np.int16)
    diff = np.abs(image.astype(np.int16) - want)
    mean, bad = float(diff.mean()), float((diff.max(-1) > 40).mean())
    if mean > 2.0 or bad > 0.01:
        out = Path("reports") / "golden"
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out / f"{case}.actual.png")
        pytest.fail(f"{case}: mean abs diff {mean:.2f} (limit 2.0), {bad:.2%} pixels off by > 40 "
                    f"(limit 1%); actual image in {out / f'{case}.actual.png'}")
