"""The shadow map, headless (EGL, llvmpipe) at 128x128: a box above a floor under a slanted
directional light darkens the floor where the box's shadow falls (predicted by projecting the
box along the light) and nowhere else; without shadow = true nothing darkens; in the demo the
shadow light changes from the storm light to the lamp when the lamp is lit, and both eyes get it.
A glTF sheet with an alphaMode MASK cut-out lets the light through its hole onto the floor. The
cheaper one-tap filter (``shadow_taps=1``) passes the same occluder test.
"""

from __future__ import annotations

import numpy as np
import pytest
from gltf_assets import masked_sheet, scene_folder

from xrstory.render.renderer import SceneRenderer
from xrstory.render.view import Pose
from xrstory.story import Story, load_scene
from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

SIZE = (128, 128)
LIGHT = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)  # travels right and down: shadows fall +1 m in x per metre of height
BOX_Y, BOX_HALF = 1.0, 0.25


def room(tmp_path, name: str, box: bool, shadow: bool = True, model=None):
    props = f'''
[[props]]
id = "floor"
shape = "plane"
scale = [8.0, 1.0, 8.0]
material = {{ color = [0.8, 0.8, 0.8], roughness = 1.0 }}

[[lights]]
id = "sun"
kind = "directional"
direction = [{LIGHT[0]}, {LIGHT[1]}, {LIGHT[2]}]
intensity = 1.0
shadow = {str(shadow).lower()}
shadow_target = [0.0, 0.5, -3.0]
'''
    if box:
        props += f'''
[[props]]
id = "box"
shape = "box"
position = [0.0, {BOX_Y}, -3.0]
scale = [{2 * BOX_HALF}, {2 * BOX_HALF}, {2 * BOX_HALF}]
material = {{ color = [0.8, 0.2, 0.2] }}
'''
    return load_scene(scene_folder(tmp_path / name, model, ambient=0.1, sun=1.0, eye=(0.0, 3.0, 0.0),
                                   look=(0.0, 0.0, -3.0), position=(0.0, 0.0, -3.0), extra=props))


@pytest.fixture(scope="module")
def display():
    with HeadlessDisplay(HeadlessConfig(eye_size=SIZE, stereo=False)) as d:
        yield d


def draw(display, scene, taps: int = 4):
    vp = scene.viewpoint()
    display.set_head(Pose.look_at(vp.position, vp.look_at))
    with SceneRenderer(display.ctx, scene, shadow_taps=taps) as r:
        for frame in display.frames(max_frames=1):
            r.update(Story(scene).state, 0.0, snap=True)
            r.draw(frame.views, frame.targets)
        assert display.ctx.error == "GL_NO_ERROR"
        return display.image().astype(np.float32).mean(-1), frame.views[0]


def project(view, p) -> tuple[int, int]:
    clip = view.fov.projection() @ view.view_matrix() @ np.append(np.asarray(p, np.float64), 1.0)
    ndc = clip[:3] / clip[3]
    return int((ndc[0] + 1) / 2 * SIZE[0]), int((1 - ndc[1]) / 2 * SIZE[1])


def patch(img, view, p, r=2) -> float:
    x, y = project(view, p)
    return float(img[y - r:y + r + 1, x - r:x + r + 1].mean())


@pytest.mark.parametrize("taps", [4, 1])
def test_shadow_darkens_the_floor_under_the_occluder_and_nowhere_else(display, tmp_path, taps):
    empty, view = draw(display, room(tmp_path, "empty", box=False), taps)
    boxed, _ = draw(display, room(tmp_path, "boxed", box=True), taps)
    # the box's centre projected along the light onto y = 0
    shade = np.array([0.0, BOX_Y, -3.0]) + LIGHT * (BOX_Y / -LIGHT[1])
    assert patch(boxed, view, shade) < 0.6 * patch(empty, view, shade)
    for elsewhere in ((-1.5, 0.0, -3.0), (2.6, 0.0, -3.0), (1.0, 0.0, -1.7), (1.0, 0.0, -4.4), (-1.0, 0.0, -2.0)):
        assert abs(patch(boxed, view, elsewhere) - patch(empty, view, elsewhere)) < 2.0, elsewhere
    # the shadow's edges: dark inside the box's footprint shifted along the light, lit just outside it
    edge = BOX_HALF + 0.12  # just past the edge and its filtered penumbra
    assert patch(boxed, view, shade + [0, 0, edge], r=1) > 0.9 * patch(empty, view, shade + [0, 0, edge], r=1)
    assert patch(boxed, view, shade + [0, 0, BOX_HALF - 0.1], r=1) < 0.6 * patch(empty, view, shade + [0, 0, 0.15], r=1)


def test_no_shadow_without_a_shadow_light(display, tmp_path):
    empty, view = draw(display, room(tmp_path, "e", box=False, shadow=False))
    boxed, _ = draw(display, room(tmp_path, "b", box=True, shadow=False))
    shade = np.array([0.0, BOX_Y, -3.0]) + LIGHT * (BOX_Y / -LIGHT[1])
    assert abs(patch(boxed, view, shade) - patch(empty, view, shade)) < 2.0


def test_a_mask_cut_out_lets_the_light_through_onto_the_floor(display, tmp_path):
    """The sheet (y = 1 m over x -0.5..0.5 at z = -3) is opaque on its +x half and cut out on its
    -x half; the light shifts shadows +1 m in x, so the opaque half darkens the floor at x 1..1.5
    and the hole's light falls on x 0.5..1. The same sheet drawn OPAQUE darkens both."""
    empty, view = draw(display, room(tmp_path, "none", box=False))
    masked, _ = draw(display, room(tmp_path, "mask", box=False, model=masked_sheet(tmp_path / "m.glb")))
    solid, _ = draw(display, room(tmp_path, "solid", box=False,
                                  model=masked_sheet(tmp_path / "s.glb", alpha_mode="OPAQUE")))
    under_opaque, under_hole = (1.25, 0.0, -3.0), (0.75, 0.0, -3.0)
    assert patch(masked, view, under_opaque) < 0.6 * patch(empty, view, under_opaque)
    assert patch(masked, view, under_hole) > 0.9 * patch(empty, view, under_hole)
    assert patch(solid, view, under_hole) < 0.6 * patch(empty, view, under_hole)
    # the hole itself shows the floor: the cut-out is cut in the lit pass too
    hole_seen = (-0.25, 1.0, -3.0)
    assert abs(patch(masked, view, hole_seen, r=1) - patch(empty, view, hole_seen, r=1)) < 3.0


def test_shadow_taps_other_than_1_or_4_are_refused(display, tmp_path):
    with pytest.raises(ValueError, match="shadow_taps 2: must be 4"):
        SceneRenderer(display.ctx, room(tmp_path, "t", box=False), shadow_taps=2)


def test_lamp_takes_the_shadow_over_from_the_storm_light_in_both_eyes():
    scene = load_scene("scenes/lighthouse")
    vp = scene.viewpoint("player")
    cfg = HeadlessConfig(eye_size=SIZE, stereo=True, start=Pose.look_at(vp.position, vp.look_at))
    story = Story(scene)
    with HeadlessDisplay(cfg) as display, SceneRenderer(display.ctx, scene) as r:
        def frame_eyes():
            for frame in display.frames(max_frames=1):
                r.update(story.state, 0.0, snap=True, player_position=vp.position)
                r.draw(frame.views, frame.targets)
            return [img.astype(np.float32) for img in display.eye_images()]

        dark = frame_eyes()
        assert r.model.lights().shadow[0] == "directional"
        for trig, by in [("light_stove", "maren"), ("open_cellar", "player"), ("fetch_oil", "tobias"),
                         ("light_lamp", "maren")]:
            assert story.apply(trig, by).fired
        lit = frame_eyes()
        kind, index, where, _ = r.model.lights().shadow
        assert kind == "point" and np.allclose(where, scene.prop("lamp").position, atol=0.01)
        # the matrices differ, so the light now comes from the lamp; each eye sees the change
        for d, li in zip(dark, lit, strict=True):
            assert np.abs(li - d).mean() > 5
        assert display.ctx.error == "GL_NO_ERROR"
