"""glTF characters drawn headless (EGL, llvmpipe) and checked by their pixels, plus the assets
checked by Khronos' glTF-Validator.

Pixel tests (128x128, one mono view): texels of a textured quad land where their uv says,
decoded from sRGB; a skinned arm bent at its joint moves exactly the forearm's pixels; Maren's
mouth_open morph target at weight 1 changes her mouth region and not the rest of her face;
blended primitives are drawn back to front from either side. Expected values come from the
shader's own formulas (ACES fit, 1/2.2 encode) computed here, not from recorded images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gltf_assets import (
    TEXELS,
    arm,
    blended_pair,
    clips_model,
    masked_sheet,
    morph_triangle,
    scene_folder,
    textured_quad,
)

from xrstory.render.renderer import SceneRenderer
from xrstory.render.view import Pose
from xrstory.story import Story, load_scene
from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

SIZE = (128, 128)
ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = Path(os.environ.get("XRSTORY_GLTF_VALIDATOR", ROOT / ".cache" / "npm"))


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gltf")
    return {"quad": textured_quad(d / "quad.glb"), "arm": arm(d / "arm.glb"), "pair": blended_pair(d / "pair.glb"),
            "shifted": textured_quad(d / "shifted.glb", offset=(0.5, 0.0)), "clips": clips_model(d / "clips.glb"),
            "morph": morph_triangle(d / "morph.glb"), "sheet": masked_sheet(d / "sheet.glb")}


@pytest.fixture(scope="module")
def display():
    with HeadlessDisplay(HeadlessConfig(eye_size=SIZE, stereo=False)) as d:
        yield d


def render(display, folder: Path, frames=1, dt=0.1, before=None, eye=None, look=None, **update):
    scene = load_scene(folder)
    vp = scene.viewpoint()
    display.set_head(Pose.look_at(eye or vp.position, look or vp.look_at))
    with SceneRenderer(display.ctx, scene) as r:
        if before:
            before(r)
        for i, frame in enumerate(display.frames(max_frames=frames)):
            r.update(Story(scene).state, dt, snap=i == 0, **update)
            r.draw(frame.views, frame.targets)
        assert display.ctx.error == "GL_NO_ERROR"
        return display.image().astype(np.int32), frame, r.model


def project(view, point) -> tuple[int, int]:
    clip = view.fov.projection() @ view.view_matrix() @ np.append(np.asarray(point, np.float64), 1.0)
    ndc = clip[:3] / clip[3]
    return int((ndc[0] + 1) / 2 * SIZE[0]), int((1 - ndc[1]) / 2 * SIZE[1])


def lit_pixel(linear: np.ndarray, exposure: float = 0.6) -> np.ndarray:
    """What the shader writes for a lit linear colour (see lighting.glsl: ACES fit, 1/2.2)."""
    x = np.asarray(linear, np.float64) * exposure
    aces = np.clip((x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14), 0, 1)
    return aces ** (1 / 2.2) * 255


def expected_pixel(srgb8: np.ndarray) -> np.ndarray:
    c = srgb8 / 255.0
    return lit_pixel(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4))


def test_textured_quad_samples_the_right_texels_srgb_decoded(display, assets, tmp_path):
    # ambient 1/0.55 on a surface facing the camera (n.y = 0): the lit colour is the texel itself
    folder = scene_folder(tmp_path / "s", assets["quad"], ambient=1 / 0.55)
    img, frame, _ = render(display, folder)
    view = frame.views[0]
    for (row, col), (x, y) in {(0, 0): (-0.25, 0.75), (0, 1): (0.25, 0.75), (1, 0): (-0.25, 0.25),
                               (1, 1): (0.25, 0.25)}.items():
        px, py = project(view, (x, y, -2.0))
        got = img[py - 2:py + 3, px - 2:px + 3, :3].reshape(-1, 3).mean(0)
        want = expected_pixel(TEXELS[row, col, :3].astype(np.float64))
        assert np.abs(got - want).max() <= 3.0, (row, col, got, want)
    # sRGB 128 decodes to 0.216 linear; a sampler that skipped the decode would light 0.502
    px, py = project(view, (0.25, 0.25, -2.0))
    assert img[py, px, 0] < lit_pixel(128 / 255)[()] - 20


def test_khr_texture_transform_offsets_the_texels(display, assets, tmp_path):
    folder = scene_folder(tmp_path / "s", assets["shifted"], ambient=1 / 0.55)
    img, frame, _ = render(display, folder)
    view = frame.views[0]
    for (row, col), (x, y) in {(0, 1): (-0.25, 0.75), (0, 0): (0.25, 0.75), (1, 1): (-0.25, 0.25)}.items():
        px, py = project(view, (x, y, -2.0))
        got = img[py - 2:py + 3, px - 2:px + 3, :3].reshape(-1, 3).mean(0)
        assert np.abs(got - expected_pixel(TEXELS[row, col, :3].astype(np.float64))).max() <= 3.0, (row, col, got)


def test_skinned_arm_bent_by_its_joint_moves_the_forearm_pixels(display, assets, tmp_path):
    folder = scene_folder(tmp_path / "s", assets["arm"], height=1.08, position=(-0.5, 0.0, -1.6),
                          eye=(0.0, 1.0, 0.0), look=(0.0, 1.0, -1.6))
    rest, frame, _ = render(display, folder)
    bent, _, _ = render(display, folder, frames=10, before=lambda r: r.gesture("thing", "bend"))
    view = frame.views[0]

    def red(img, p):
        x, y = project(view, p)
        return img[y - 1:y + 2, x - 1:x + 2, 0].mean() - img[y - 1:y + 2, x - 1:x + 2, 2].mean()

    upper, forearm, raised = (-0.25, 1.0, -1.6), (0.25, 1.0, -1.6), (0.0, 1.3, -1.6)
    assert red(rest, upper) > 100 and red(bent, upper) > 100  # the upper arm stays
    assert red(rest, forearm) > 100 and red(bent, forearm) < 20  # the forearm left its rest place
    assert red(rest, raised) < 20 and red(bent, raised) > 100  # and points up from the elbow
    changed = np.abs(bent - rest)[..., 0] > 40
    x_elbow = project(view, (0.0, 1.0, -1.6))[0]
    assert changed.any() and np.nonzero(changed)[1].min() >= x_elbow - 3  # nothing left of the elbow moved


def test_mouth_open_morph_target_at_weight_1_changes_the_mouth_region(display, tmp_path):
    maren = ROOT / "assets" / "characters" / "maren.glb"
    appearance = "[characters.appearance.visemes]\naa = { mouth_open = 1.0 }\n"
    # the rig's mouth is at (0, 1.594, 0.103) for 1.75 m; at height 1.75 the fit keeps metres
    folder = scene_folder(tmp_path / "s", maren, height=1.75, position=(0.0, 0.0, -0.6), ambient=0.6, sun=1.0,
                          eye=(0.0, 1.62, 0.0), look=(0.0, 1.62, -0.6), appearance=appearance)
    shut, frame, model = render(display, folder, speaking={"thing": 0.0}, visemes={"thing": "aa"})
    opened, _, model = render(display, folder, frames=3, speaking={"thing": 1.0}, visemes={"thing": "aa"})
    puppet = model.characters[0].puppet
    node = next(i for i, n in enumerate(puppet.model.nodes) if n.mesh is not None)
    names = puppet.model.meshes[puppet.model.nodes[node].mesh].target_names
    assert puppet.pose.weights[node][names.index("mouth_open")] == pytest.approx(1.0, abs=0.02)
    view = frame.views[0]
    root = model.characters[0].root
    mouth = (root @ np.array([0.0, 1.594, 0.115, 1.0]))[:3]
    mx, my = project(view, mouth)
    diff = np.abs(opened - shut)[..., :3].max(-1) > 30
    ys, xs = np.nonzero(diff)
    assert len(ys) > 15, "the open mouth should change a visible patch"
    # every changed pixel lies in the mouth and chin region: the head's width, 3 cm above to 7 cm below
    left, top = project(view, mouth + np.array([-0.105, 0.03, 0.0]))
    right, bottom = project(view, mouth + np.array([0.105, -0.07, 0.0]))
    assert left <= xs.min() and xs.max() <= right and top <= ys.min() and ys.max() <= bottom, \
        (xs.min(), xs.max(), ys.min(), ys.max(), (left, right, top, bottom))
    assert abs(np.median(xs) - mx) <= 2 and abs(np.median(ys) - my) <= 4  # centred on the mouth


def test_alpha_blend_draws_back_to_front_from_either_side(display, assets, tmp_path):
    folder = scene_folder(tmp_path / "s", assets["pair"], height=0.8, position=(0.0, 0.0, -2.0),
                          eye=(0.0, 0.5, 0.0), look=(0.0, 0.5, -2.0))
    front, frame, _ = render(display, folder)
    # from behind the pair (looking +Z), blue is the near one
    back, bframe, _ = render(display, folder, eye=(0.0, 0.5, -4.0), look=(0.0, 0.5, -2.0))
    cx, cy = SIZE[0] // 2, SIZE[1] // 2
    f = front[cy - 2:cy + 3, cx - 2:cx + 3, :3].reshape(-1, 3).mean(0)
    b = back[cy - 2:cy + 3, cx - 2:cx + 3, :3].reshape(-1, 3).mean(0)
    assert f[0] > f[2] + 30, f  # red over blue: red is nearer, drawn last
    assert b[2] > b[0] + 30, b  # blue over red from the other side
    assert f[2] > 20 and b[0] > 20  # and the far one shows through


def _validate(files: list[Path]) -> list[dict]:
    node = shutil.which("node")
    assert node, "node is not installed: scripts/setup.sh installs it with gltf-validator"
    assert (VALIDATOR / "node_modules" / "gltf-validator").is_dir(), (
        f"gltf-validator not found under {VALIDATOR}: run scripts/setup.sh (it runs "
        f"`npm install --prefix .cache/npm gltf-validator`)")
    out = subprocess.run([node, str(ROOT / "scripts" / "gltf_validate.mjs"), str(VALIDATOR), *map(str, files)],
                         capture_output=True, text=True, timeout=120)
    reports = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(files), out.stderr
    return reports


def test_gltf_validator_reports_no_errors_on_shipped_and_generated_assets(assets, tmp_path):
    shipped = sorted((ROOT / "assets").rglob("*.glb")) + sorted((ROOT / "assets").rglob("*.gltf"))
    assert len(shipped) >= 2
    reports = _validate([*shipped, *assets.values()])
    bad = [r for r in reports if r["errors"]]
    assert not bad, bad
    # and the validator does catch a broken file (the check can fail)
    broken = tmp_path / "broken.glb"
    data = bytearray(assets["quad"].read_bytes())
    data[12:16] = (999999).to_bytes(4, "little")  # JSON chunk length past the end
    broken.write_bytes(bytes(data))
    assert _validate([broken])[0]["errors"] > 0


def test_build_characters_writes_the_committed_files(tmp_path):
    import runpy

    runpy.run_path(str(ROOT / "scripts" / "build_characters.py"), run_name="build")["main"](["--out", str(tmp_path)])
    for name in ("maren", "tobias"):
        assert (tmp_path / f"{name}.glb").read_bytes() == (ROOT / "assets" / "characters" / f"{name}.glb").read_bytes(), \
            f"assets/characters/{name}.glb is not what scripts/build_characters.py writes: rebuild and commit it"
