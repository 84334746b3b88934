"""The render layer's parts on their own: meshes, glTF, shaders' error messages, the SDF font,
text layout, picking, prop animation, the head script, and the import boundary."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from xrstory.render.animation import PropAnimator
from xrstory.render.font import build_atlas, signed_distance_field
from xrstory.render.mesh import PRIMITIVES, MeshError, load_gltf
from xrstory.render.scene_model import SceneModel
from xrstory.render.text_layout import layout
from xrstory.render.view import Pose
from xrstory.story import Story, load_scene


@pytest.fixture(scope="module")
def scene():
    return load_scene("scenes/lighthouse")


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_primitives_are_unit_sized_and_wound_outwards(name):
    m = PRIMITIVES[name]()
    pos, nrm = m.vertices[:, :3], m.vertices[:, 3:6]
    size = m.bounds_max - m.bounds_min
    assert np.allclose(size[[0, 2]], 1.0, atol=1e-5)
    tri = m.indices.reshape(-1, 3)
    a, b, c = pos[tri[:, 0]], pos[tri[:, 1]], pos[tri[:, 2]]
    face = np.cross(b - a, c - a)
    area = np.linalg.norm(face, axis=1)
    keep = area > 1e-9  # the sphere's poles have degenerate triangles
    facing = np.einsum("ij,ij->i", face[keep], nrm[tri[keep, 0]] + nrm[tri[keep, 1]] + nrm[tri[keep, 2]])
    assert (facing > 0).all(), f"{name}: {np.sum(facing <= 0)} triangles wound inwards"


def _write_triangle_gltf(path, color=(0.2, 0.6, 0.9, 1.0)):
    import pygltflib

    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0]], np.float32)
    idx = np.array([0, 1, 2], np.uint16)
    blob = pos.tobytes() + idx.tobytes() + b"\0\0"
    gl = pygltflib.GLTF2(
        scene=0, scenes=[pygltflib.Scene(nodes=[0])],
        nodes=[pygltflib.Node(mesh=0, translation=[0.0, 0.5, 0.0])],
        meshes=[pygltflib.Mesh(primitives=[pygltflib.Primitive(
            attributes=pygltflib.Attributes(POSITION=0), indices=1, material=0)])],
        materials=[pygltflib.Material(pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(baseColorFactor=list(color)))],
        accessors=[pygltflib.Accessor(bufferView=0, componentType=5126, count=3, type="VEC3",
                                      max=[1, 2, 0], min=[0, 0, 0]),
                   pygltflib.Accessor(bufferView=1, componentType=5123, count=3, type="SCALAR")],
        bufferViews=[pygltflib.BufferView(buffer=0, byteOffset=0, byteLength=36),
                     pygltflib.BufferView(buffer=0, byteOffset=36, byteLength=6)],
        buffers=[pygltflib.Buffer(byteLength=len(blob))],
    )
    gl.set_binary_blob(blob)
    gl.save_binary(str(path))


def test_gltf_mesh_loads_with_node_transform_and_material_colour(tmp_path):
    path = tmp_path / "tri.glb"
    _write_triangle_gltf(path)
    m = load_gltf(path)
    assert len(m.indices) == 3
    assert np.allclose(m.bounds_min, [0, 0.5, 0]) and np.allclose(m.bounds_max, [1, 2.5, 0])
    assert np.allclose(m.vertices[0, 6:9], [0.2, 0.6, 0.9])
    with pytest.raises(MeshError, match="missing.glb: glTF file not found"):
        load_gltf(tmp_path / "missing.glb")
    (tmp_path / "bad.glb").write_bytes(b"not a gltf")
    with pytest.raises(MeshError, match="bad.glb"):
        load_gltf(tmp_path / "bad.glb")


def test_shader_compile_error_names_file_and_line(tmp_path):
    import moderngl

    from xrstory.render.shaders import ShaderError, load_program

    (tmp_path / "broken.vert").write_text("#version 330 core\nvoid main() { gl_Position = vec4(0.0); }\n")
    (tmp_path / "broken.frag").write_text("#version 330 core\nout vec4 c;\nvoid main() {\n"
                                          "    c = vec4(undeclared_thing);\n}\n")
    ctx = moderngl.create_standalone_context(backend="egl", require=330)
    try:
        with pytest.raises(ShaderError) as info:
            load_program(ctx, "broken", tmp_path)
        assert info.value.line == 4
        assert str(info.value).startswith(f"{tmp_path / 'broken.frag'}:4:")
        assert "undeclared_thing" in str(info.value)
        with pytest.raises(ShaderError, match="nothing.vert"):
            load_program(ctx, "nothing", tmp_path)
        for name in ("scene", "sky", "halo", "text"):  # the shipped shaders compile
            load_program(ctx, name).release()
    finally:
        ctx.release()


def test_signed_distance_field_of_a_square():
    cov = np.zeros((40, 40), np.float32)
    cov[10:30, 10:30] = 1.0
    sdf = signed_distance_field(cov, spread=6)
    assert sdf[20, 20] == pytest.approx(1.0)  # deep inside: clipped at +spread
    assert sdf[0, 0] == pytest.approx(0.0)  # far outside
    # 3 px outside the left edge: 0.5 - (3 - 0.5) / 12
    assert sdf[20, 7] == pytest.approx(0.5 - 2.5 / 12, abs=1e-5)
    # diagonal distance from the corner is Euclidean, not city-block
    assert sdf[7, 7] == pytest.approx(0.5 - (np.hypot(3, 3) - 0.5) / 12, abs=1e-5)


def test_font_atlas_and_layout_wrap_and_centre():
    atlas = build_atlas()
    assert {"A", "g", "?", "’"} <= set(atlas.glyphs)
    lay = layout(atlas, "Aye, friend. The lamp burns again and the ship is coming home.", size_m=0.1,
                 max_width_m=1.0)
    assert len(lay.lines) >= 3
    x0, y0, x1, y1 = lay.panel
    assert x0 == pytest.approx(-x1) and y0 == 0.0  # centred above its anchor
    glyphs = lay.vertices[lay.vertices[:, 4] == 0]
    assert glyphs[:, 0].min() >= x0 and glyphs[:, 0].max() <= x1 and glyphs[:, 1].max() <= y1
    assert lay.vertices.shape[1] == 5 and len(lay.vertices) % 6 == 0


def test_pick_hits_props_and_characters_and_skips_hidden(scene):
    model = SceneModel(scene, Story(scene).state)
    eye = np.array([0.0, 1.6, 0.0])

    def aim(target):
        return model.pick(eye, np.asarray(target) - eye)

    assert aim(scene.prop("lamp").position) == "lamp"
    assert aim((-1.3, 1.0, -3.0)) == "maren"
    assert aim((0.0, 5.0, -1.0)) is None  # the sky
    assert aim(scene.prop("oil_can").position) != "oil_can"  # hidden in the cellar
    # interactive only: the table is not (the ray then goes on to the floor), the radio on it is
    table_top = np.array([1.35, 0.76, -1.9])
    assert aim(table_top) == "table"
    assert model.pick(eye, table_top - eye, interactive_only=True) is None
    assert model.pick(eye, np.array([0.55, 0.92, -2.0]) - eye, interactive_only=True) == "radio"


def test_prop_state_blends_over_its_animate_seconds(scene):
    door = PropAnimator(scene.prop("cellar_door"), "closed")
    door.set_state("open")
    door.advance(0.6)  # half of animate_s = 1.2
    assert door.current.rotation_deg[1] == pytest.approx(50.0, abs=0.5)
    door.advance(1.0)
    assert door.current.rotation_deg[1] == pytest.approx(100.0)
    lamp = PropAnimator(scene.prop("lamp"), "off")
    assert lamp.current.light_color.max() == 0.0
    lamp.set_state("on")
    lamp.advance(0.75)
    assert 0.0 < lamp.current.emissive[0] < 4.0 and lamp.current.light_color.max() > 0.0


def test_headless_head_script_walks_and_looks_on_the_fixed_timestep():
    from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

    cfg = HeadlessConfig(eye_size=(32, 32), stereo=True, fps=50, start=Pose((0.0, 1.6, 0.0)))
    with HeadlessDisplay(cfg) as display:
        display.walk([(0.0, 1.6, -1.0)], speed=1.0)  # 1 m at 1 m/s = 50 frames
        display.look_at((2.0, 1.6, -1.0))
        frames = []
        for frame in display.frames(max_frames=60):
            frames.append((frame.index, frame.time, frame.head, frame.views))
    assert frames[25][1] == pytest.approx(0.5)
    assert frames[25][2].position[2] == pytest.approx(-0.5, abs=0.03)
    last = frames[-1][2]
    assert last.position[2] == pytest.approx(-1.0)
    assert np.allclose(last.forward(), [1.0, 0.0, 0.0], atol=1e-5)
    # stereo: the eyes sit ipd apart along the head's right axis
    left, right = (np.asarray(v.pose.position) for v in frames[-1][3])
    assert np.linalg.norm(right - left) == pytest.approx(0.063, abs=1e-6)
    assert (right - left)[2] > 0  # head looks +X, so its right is +Z
    assert len(display.timings) == 60


def test_render_and_headless_import_without_speech_or_model_packages():
    code = ("import sys; import xrstory.render.renderer, xrstory.xr.headless, xrstory.cli.render; "
            "bad = [m for m in ('torch', 'transformers', 'faster_whisper', 'scipy', 'sentence_transformers') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_render_writes_one_png_per_viewpoint_and_names_bad_input(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from xrstory.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["render", "scenes/lighthouse", "--out", str(tmp_path), "--eye-size", "48x32",
                               "--samples", "0", "--stereo"])
    assert done.exit_code == 0, done.output
    for vp in ("player", "overview"):
        img = np.asarray(Image.open(tmp_path / f"{vp}.png"))
        assert img.shape == (32, 96, 3) and img.std() > 5  # two eyes side by side, not blank
    bad = runner.invoke(app, ["render", "scenes/lighthouse", "--out", str(tmp_path), "--eye-size", "big"])
    assert bad.exit_code == 2 and "--eye-size 'big'" in bad.output
