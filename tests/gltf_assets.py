"""Small glTF assets the render tests build (with ``xrstory.render.gltf_write``), and a scene
folder that shows one of them as a character in a plain, fog-free room.

Each asset isolates one feature: a 2x2 texture on a quad (texel order, sRGB decode), a
two-joint arm (skinning), two overlapping blended quads (sorting), a sheet with a MASK
cut-out (shadows through the hole). They are written per test
session into a temporary folder and validated with glTF-Validator like the shipped ones.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from xrstory.render.gltf_write import CLAMP, NEAREST, REPEAT, GltfBuilder

TEXELS = np.array([[(200, 30, 30, 255), (30, 200, 30, 255)], [(30, 30, 200, 255), (128, 128, 128, 255)]], np.uint8)


def quad(b: GltfBuilder, name: str, material: int, centre=(0.0, 0.5, 0.0), size=1.0, uv=True) -> int:
    cx, cy, cz = centre
    h = size / 2
    pos = [(cx - h, cy - h, cz), (cx + h, cy - h, cz), (cx + h, cy + h, cz), (cx - h, cy + h, cz)]
    return b.mesh(name, pos, [(0, 0, 1)] * 4, [0, 1, 2, 0, 2, 3], material,
                  uv=[(0, 1), (1, 1), (1, 0), (0, 0)] if uv else None)


def textured_quad(path: Path, offset: tuple[float, float] | None = None) -> Path:
    """A 1 m quad (y 0..1) with a 2x2 NEAREST base colour texture: red top left, green top
    right, blue bottom left, grey (sRGB 128) bottom right. ``offset``: a KHR_texture_transform
    offset (the texture then repeats)."""
    b = GltfBuilder()
    tex = b.texture(TEXELS, mag=NEAREST, min_=NEAREST, wrap=CLAMP if offset is None else REPEAT)
    mat = b.material("texels", base_texture=tex, metallic=0.0, roughness=1.0,
                     uv_transform=None if offset is None else {"offset": list(offset)})
    b.node("quad", mesh=quad(b, "quad", mat))
    return b.save(path)


def arm(path: Path) -> Path:
    """A bar 1 m long along +X at y=1 (shoulder at x=0, elbow at x=0.5; the outer half is
    weighted to the elbow), a marker triangle at y=0 so the model stands 1.08 m tall, and a
    clip "bend" that turns the elbow 90 degrees about +Z (the forearm then points up)."""
    b = GltfBuilder()
    mat = b.material("red", base_color=(0, 0, 0, 1), emissive=(1.0, 0.1, 0.1), emissive_strength=3.0)
    xs = np.linspace(0.0, 1.0, 21)
    pos, nrm, joints, weights, idx = [], [], [], [], []
    for i, x in enumerate(xs):
        for y in (0.92, 1.08):
            pos.append((x, y, 0.0))
            nrm.append((0, 0, 1))
            joints.append((1 if x > 0.5 else 0, 0, 0, 0))
            weights.append((1, 0, 0, 0))
        if i:
            a = 2 * (i - 1)
            idx += [a, a + 2, a + 3, a, a + 3, a + 1]
    bar = b.mesh("bar", pos, nrm, idx, mat, joints=joints, weights=weights)
    marker = b.mesh("marker", [(-0.01, 0, 0), (0.01, 0, 0), (0, 0.01, 0)], [(0, 0, 1)] * 3, [0, 1, 2], mat)
    root = b.node("shoulder", translation=(0.0, 1.0, 0.0))
    elbow = b.node("elbow", parent=root, translation=(0.5, 0.0, 0.0))
    ibm = np.stack([np.linalg.inv(_translation((0, 1, 0))), np.linalg.inv(_translation((0.5, 1, 0)))])
    skin = b.skin("arm", [root, elbow], ibm)
    b.node("bar", mesh=bar, skin=skin)
    b.node("marker", mesh=marker)
    h = math.radians(90) / 2
    b.animation("bend", [(elbow, "rotation", [0.0, 0.5, 3.0],
                          [(0, 0, 0, 1), (0, 0, math.sin(h), math.cos(h)), (0, 0, math.sin(h), math.cos(h))],
                          "LINEAR")])
    return b.save(path)


def blended_pair(path: Path) -> Path:
    """Two 0.6 m double-sided BLEND quads, half transparent, overlapping in view: red at
    z=+0.3 (first in the file), blue at z=-0.3."""
    b = GltfBuilder()
    for name, z, col in (("red", 0.3, (1.0, 0.05, 0.05)), ("blue", -0.3, (0.05, 0.05, 1.0))):
        mat = b.material(name, base_color=(0, 0, 0, 0.5), emissive=col, emissive_strength=2.0,
                         alpha_mode="BLEND", double_sided=True)
        b.node(name, mesh=quad(b, name, mat, centre=(0.0, 0.5, z), size=0.6, uv=False))
    return b.save(path)


def clips_model(path: Path) -> Path:
    """One node animated three ways: translation LINEAR, scale STEP, translation CUBICSPLINE."""
    b = GltfBuilder()
    mat = b.material("m")
    mesh = b.mesh("tri", [(0, 0, 0), (1, 0, 0), (0, 1, 0)], [(0, 0, 1)] * 3, [0, 1, 2], mat)
    n = b.node("n", mesh=mesh)
    b.animation("lin", [(n, "translation", [0.0, 1.0, 2.0], [(0, 0, 0), (2, 0, 0), (2, 4, 0)], "LINEAR")])
    b.animation("step", [(n, "scale", [0.0, 1.0], [(1, 1, 1), (3, 3, 3)], "STEP")])
    # CUBICSPLINE keys: (in-tangent, value, out-tangent) each
    b.animation("cubic", [(n, "translation", [0.0, 2.0],
                           [(0, 0, 0), (0, 0, 0), (1, 0, 0), (1, 0, 0), (4, 0, 0), (0, 0, 0)], "CUBICSPLINE")])
    return b.save(path)


def masked_sheet(path: Path, alpha_mode: str = "MASK") -> Path:
    """A horizontal 1 m double-sided sheet at y=1 (x, z in -0.5..0.5) whose 2x1 NEAREST base
    colour texture is transparent on its -x half and opaque on its +x half, cut off at 0.5
    (``alpha_mode`` "OPAQUE" keeps the whole sheet), and a 1 cm marker triangle at y=0 so the
    model stands 1 m tall."""
    b = GltfBuilder()
    texels = np.array([[(200, 200, 200, 0), (200, 200, 200, 255)]], np.uint8)
    tex = b.texture(texels, mag=NEAREST, min_=NEAREST, wrap=CLAMP)
    mat = b.material("sheet", base_texture=tex, metallic=0.0, roughness=1.0, alpha_mode=alpha_mode,
                     alpha_cutoff=0.5 if alpha_mode == "MASK" else None, double_sided=True)
    pos = [(-0.5, 1.0, 0.5), (0.5, 1.0, 0.5), (0.5, 1.0, -0.5), (-0.5, 1.0, -0.5)]
    sheet = b.mesh("sheet", pos, [(0, 1, 0)] * 4, [0, 1, 2, 0, 2, 3], mat, uv=[(0, 0), (1, 0), (1, 0), (0, 0)])
    marker = b.mesh("marker", [(0.2, 0, 0), (0.21, 0, 0), (0.2, 0.01, 0)], [(0, 0, 1)] * 3, [0, 1, 2], mat,
                    uv=[(1, 0)] * 3)
    b.node("sheet", mesh=sheet)
    b.node("marker", mesh=marker)
    return b.save(path)


def morph_triangle(path: Path) -> Path:
    """A triangle (node 0) with morph targets "stretch" (the top vertex 0.5 m up) and "other",
    and a clip "pulse" animating their weights (LINEAR: 0,0 -> 1,0.25 -> 0,0 over 2 s)."""
    b = GltfBuilder()
    mat = b.material("m")
    pos = np.array([(0, 0, 0), (1, 0, 0), (0, 1, 0)], np.float32)
    up = np.zeros_like(pos)
    up[2, 1] = 0.5
    mesh = b.mesh("tri", pos, [(0, 0, 1)] * 3, [0, 1, 2], mat,
                  targets={"stretch": (up, None), "other": (np.zeros_like(pos), None)})
    n = b.node("n", mesh=mesh)
    b.animation("pulse", [(n, "weights", [0.0, 1.0, 2.0], [[0.0, 0.0], [1.0, 0.25], [0.0, 0.0]], "LINEAR")])
    return b.save(path)


def _translation(t) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m


def scene_folder(folder: Path, model: Path | None, *, height: float = 1.0, ambient: float = 0.0,
                 position=(0.0, 0.0, -2.0), eye=(0.0, 0.5, 0.0), look=(0.0, 0.5, -2.0), extra: str = "",
                 appearance: str = "", sun: float = 0.0) -> Path:
    """A scene with one character showing ``model`` (or none), no fog, a black sky."""
    folder.mkdir(parents=True, exist_ok=True)
    # a scene needs someone to talk to (the loader refuses one without): with no model, a
    # primitive figure stands behind the camera, out of every test's view and shadow
    char = '''
[[characters]]
id = "bystander"
name = "Bystander"
persona = "stands out of view"
position = [0.0, 0.0, 0.8]
'''
    if model is not None:
        char = f'''
[[characters]]
id = "thing"
name = "Thing"
persona = "a test object"
position = [{position[0]}, {position[1]}, {position[2]}]
[characters.appearance]
model = "{model.resolve()}"
height = {height}
blink = ""
{appearance}
'''
    (folder / "scene.toml").write_text(f'''
[scene]
id = "t"
title = "test"
start_beat = "b"
mood = "m"

[moods.m]
sky_top = [0.0, 0.0, 0.0]
sky_horizon = [0.0, 0.0, 0.0]
ambient = [{ambient}, {ambient}, {ambient}]
sun_intensity = {sun}
sun_color = [1.0, 1.0, 1.0]
fog_density = 0.0

[[viewpoints]]
id = "v"
position = [{eye[0]}, {eye[1]}, {eye[2]}]
look_at = [{look[0]}, {look[1]}, {look[2]}]

[[beats]]
id = "b"
goal = "look"
ending = true
{extra}
{char}
''')
    return folder
