"""Build the demo's characters, Maren and Tobias, as glTF 2.0 files: procedurally, no downloads.

Each is one skinned, textured mesh (14 joints; a painted 512x512 atlas with base colour,
metallic-roughness, normal and occlusion maps), morph targets for the mouth shapes the scene
maps visemes onto (mouth_open, mouth_round, mouth_wide, mouth_closed) and a blink, and clips:
idle (loops), wave, nod (cubic spline keys) and shrug. The rig is 1.75 m tall, feet at y=0,
facing +Z; the renderer scales it to the character's height.

    PYTHONPATH=$PWD .venv/bin/python scripts/build_characters.py [--out assets/characters]

The output is committed; tests/test_render_gltf.py validates it with glTF-Validator and checks
that this script still writes the same files.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from xrstory.render.gltf_write import GltfBuilder

ATLAS = 512
# joint: (parent, rest position in rig space, metres)
JOINTS = {
    "root": (None, (0.0, 0.0, 0.0)), "hips": ("root", (0.0, 0.92, 0.0)), "spine": ("hips", (0.0, 1.1, 0.0)),
    "chest": ("spine", (0.0, 1.32, 0.0)), "neck": ("chest", (0.0, 1.5, 0.0)), "head": ("neck", (0.0, 1.58, 0.0)),
    "upperarm_l": ("chest", (-0.21, 1.43, 0.0)), "forearm_l": ("upperarm_l", (-0.26, 1.15, 0.0)),
    "upperarm_r": ("chest", (0.21, 1.43, 0.0)), "forearm_r": ("upperarm_r", (0.26, 1.15, 0.0)),
    "thigh_l": ("hips", (-0.1, 0.9, 0.0)), "shin_l": ("thigh_l", (-0.1, 0.5, 0.0)),
    "thigh_r": ("hips", (0.1, 0.9, 0.0)), "shin_r": ("thigh_r", (0.1, 0.5, 0.0)),
}
NAMES = list(JOINTS)
J = {n: i for i, n in enumerate(NAMES)}
# atlas regions (u0, v0, u1, v1): v grows downwards (row 0 of the image is v = 0)
REGIONS = {"coat": (0.0, 0.0, 0.5, 0.5), "trousers": (0.5, 0.0, 0.75, 0.25), "boots": (0.75, 0.0, 1.0, 0.25),
           "skin": (0.5, 0.25, 0.75, 0.5), "face": (0.0, 0.5, 0.5, 1.0), "hair": (0.75, 0.25, 1.0, 0.5),
           "eye": (0.5, 0.5, 0.625, 0.625), "mouth": (0.625, 0.5, 0.75, 0.625)}

CHARACTERS = {
    "maren": dict(coat=(38, 52, 92), trim=(200, 170, 90), trousers=(50, 46, 44), skin=(222, 180, 150),
                  hair=(170, 168, 165), bun=True, shoulders=0.19, hips=0.17),
    "tobias": dict(coat=(196, 150, 40), trim=(60, 50, 30), trousers=(40, 48, 70), skin=(226, 186, 160),
                   hair=(92, 60, 34), bun=False, shoulders=0.22, hips=0.18),
}


class Parts:
    """Accumulates vertices (position, normal, uv, joints, weights) and triangles."""

    def __init__(self):
        self.pos, self.nrm, self.uv, self.jnt, self.wgt, self.idx, self.tag = [], [], [], [], [], [], []
        self.n = 0

    def add(self, pos, nrm, uv, joints, weights, idx, tag: str) -> np.ndarray:
        k = len(pos)
        self.pos.append(pos)
        self.nrm.append(nrm)
        self.uv.append(uv)
        self.jnt.append(joints)
        self.wgt.append(weights)
        self.idx.append(idx + self.n)
        self.tag += [tag] * k
        rng = np.arange(self.n, self.n + k)
        self.n += k
        return rng

    def arrays(self):
        return (np.concatenate(self.pos).astype(np.float32), np.concatenate(self.nrm).astype(np.float32),
                np.concatenate(self.uv).astype(np.float32), np.concatenate(self.jnt).astype(np.uint16),
                np.concatenate(self.wgt).astype(np.float32), np.concatenate(self.idx).astype(np.uint32))


def grid_indices(rows: int, cols: int) -> np.ndarray:
    idx = []
    w = cols + 1
    for r in range(rows):
        for c in range(cols):
            a, b = r * w + c, (r + 1) * w + c
            idx += [a, b, b + 1, a, b + 1, a + 1]
    return np.asarray(idx, np.uint32)


def region_uv(region: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u0, v0, u1, v1 = REGIONS[region]
    return np.stack([u0 + (u1 - u0) * u, v0 + (v1 - v0) * v], -1)


def rigid(n: int, joint: str):
    j = np.zeros((n, 4), np.uint16)
    j[:, 0] = J[joint]
    w = np.zeros((n, 4), np.float32)
    w[:, 0] = 1.0
    return j, w


def ellipsoid(parts: Parts, centre, radii, region: str, joint: str, tag: str, seg=24, rings=16, axis="y"):
    """An ellipsoid; ``axis`` "z" puts its poles front/back (eyes: the front pole is the iris)."""
    th = np.linspace(0, math.pi, rings + 1)[:, None]
    ph = np.linspace(-math.pi, math.pi, seg + 1)[None, :]  # u = 0.5 faces +Z (the front)
    unit = np.stack([np.sin(th) * np.sin(ph), np.cos(th) * np.ones_like(ph), np.sin(th) * np.cos(ph)], -1)
    unit = unit.reshape(-1, 3)
    if axis == "z":
        unit = unit[:, [0, 2, 1]] * np.array([1, -1, 1])  # pole (0,1,0) -> (0,0,1)
    r = np.asarray(radii, np.float32)
    pos = unit * r + np.asarray(centre, np.float32)
    nrm = unit / r
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    uu, vv = np.meshgrid(np.linspace(0, 1, seg + 1), np.linspace(0, 1, rings + 1))
    idx = grid_indices(rings, seg)  # (the "z" swap is two reflections: the winding stays outward)
    j, w = rigid(len(pos), joint)
    return parts.add(pos, nrm, region_uv(region, uu.ravel(), vv.ravel()), j, w, idx, tag)


def tube(parts: Parts, y0: float, y1: float, radii0, radii1, x: float, region: str, joints, tag: str,
         z: float = 0.0, seg=24, rings=8, caps=True):
    """A vertical tube from y0 (bottom) to y1 with elliptical sections (rx, rz) blending from
    radii0 to radii1; ``joints`` [(joint, y)]: weights blend linearly between joints by height."""
    t = np.linspace(0, 1, rings + 1)[:, None]
    ph = np.linspace(-math.pi, math.pi, seg + 1)[None, :]  # u = 0.5 faces +Z (the front)
    rx = radii0[0] + (radii1[0] - radii0[0]) * t
    rz = radii0[1] + (radii1[1] - radii0[1]) * t
    y = y0 + (y1 - y0) * t
    pos = np.stack([x + rx * np.sin(ph), y * np.ones_like(ph), z + rz * np.cos(ph)], -1).reshape(-1, 3)
    slope = -(rx[-1, 0] - rx[0, 0]) / (y1 - y0)
    nrm = np.stack([np.sin(ph) / np.maximum(rx, 1e-4) * rx.mean(), slope * np.ones_like(ph) * np.ones_like(t),
                    np.cos(ph) / np.maximum(rz, 1e-4) * rz.mean()], -1).reshape(-1, 3)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    uu, vv = np.meshgrid(np.linspace(0, 1, seg + 1), np.linspace(1, 0, rings + 1))
    idx = grid_indices(rings, seg).reshape(-1, 3)[:, ::-1].ravel()  # outward-facing, counter-clockwise
    jj = np.zeros((len(pos), 4), np.uint16)
    ww = np.zeros((len(pos), 4), np.float32)
    yy = pos[:, 1]
    if len(joints) == 1:
        jj[:, 0], ww[:, 0] = J[joints[0][0]], 1.0
    else:
        (ja, ya), (jb, yb) = joints
        f = np.clip((yy - ya) / (yb - ya), 0.0, 1.0)
        jj[:, 0], jj[:, 1] = J[ja], J[jb]
        ww[:, 0], ww[:, 1] = 1.0 - f, f
    rng = parts.add(pos, nrm, region_uv(region, uu.ravel(), vv.ravel()), jj, ww, idx, tag)
    if caps:
        for yc, (cx, cz), sign in ((y0, radii0, -1.0), (y1, radii1, 1.0)):
            ring = np.stack([x + cx * np.sin(ph[0]), np.full(seg + 1, yc), z + cz * np.cos(ph[0])], -1)
            cpos = np.vstack([[x, yc, z], ring])
            cn = np.tile([0.0, sign, 0.0], (len(cpos), 1))
            ci = []
            for i in range(seg):
                ci += [0, 1 + i, 2 + i] if sign > 0 else [0, 2 + i, 1 + i]
            cj, cw = np.zeros((len(cpos), 4), np.uint16), np.zeros((len(cpos), 4), np.float32)
            near = min(joints, key=lambda jy: abs(jy[1] - yc))[0]
            cj[:, 0], cw[:, 0] = J[near], 1.0
            parts.add(cpos, cn, region_uv(region, np.full(len(cpos), 0.5), np.full(len(cpos), 0.5)), cj, cw,
                      np.asarray(ci, np.uint32), tag)
    return rng


def arm_tube(parts: Parts, side: float, region: str, tag: str):
    """Upper arm and forearm as tubes hanging from the shoulder, slightly splayed."""
    for (ja, jb), (r0, r1) in ((("upperarm", "forearm"), (0.05, 0.045)), (("forearm", None), (0.045, 0.038))):
        top = np.array(JOINTS[f"{ja}_{'l' if side < 0 else 'r'}"][1])
        bottom = np.array(JOINTS[f"{jb}_{'l' if side < 0 else 'r'}"][1]) if jb else top + np.array(
            [side * 0.03, -0.26, 0.0])
        name = f"{ja}_{'l' if side < 0 else 'r'}"
        x = (top[0] + bottom[0]) / 2
        tube(parts, bottom[1], top[1] + (0.03 if jb else 0.0), (r1, r1), (r0, r0), x, region, [(name, 0)], tag)


def paint(spec: dict, seed: int):
    """Base colour, metallic-roughness, normal and occlusion atlases (512x512)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((ATLAS, ATLAS, 3), np.float32)
    mr = np.zeros((ATLAS, ATLAS, 3), np.float32)
    mr[..., 1] = 0.8  # roughness
    height = np.zeros((ATLAS, ATLAS), np.float32)
    occ = np.ones((ATLAS, ATLAS), np.float32)
    yy, xx = np.mgrid[0:ATLAS, 0:ATLAS] / ATLAS

    def rect(name):
        u0, v0, u1, v1 = REGIONS[name]
        return slice(int(v0 * ATLAS), int(v1 * ATLAS)), slice(int(u0 * ATLAS), int(u1 * ATLAS))

    def fill(name, color, noise=8.0):
        r = rect(name)
        shape = base[r].shape[:2]
        base[r] = np.asarray(color, np.float32) + rng.normal(0, noise, (*shape, 1))

    # coat: woven fabric (a fine twill in the normal map), a belt and brass buttons
    fill("coat", spec["coat"], 6.0)
    r = rect("coat")
    cy, cx = yy[r] / 0.5, xx[r] / 0.5  # 0..1 inside the region; u wraps around the body, v is height
    height[r] = 0.5 + 0.5 * np.sin((cx * 180 + cy * 180) * math.pi)
    belt = (cy > 0.80) & (cy < 0.86)
    base[r][belt] = np.asarray(spec["trim"], np.float32) * 0.6
    front = np.abs(cx - 0.5) < 0.012  # the front seam (u = 0.5 faces +Z)
    base[r][front] *= 0.6
    for by in (0.2, 0.35, 0.5, 0.65):
        d = np.hypot((cx - 0.53) * 4, cy - by)
        button = d < 0.025
        base[r][button] = spec["trim"]
        mr[r][button] = (0, 0.35, 1.0)
    occ[r] = 1.0 - 0.35 * np.clip((cy - 0.9) / 0.1, 0, 1)  # darker under the hem
    fill("trousers", spec["trousers"], 5.0)
    height[rect("trousers")] = 0.5 + 0.5 * np.sin(xx[rect("trousers")] * ATLAS * 1.2)
    fill("boots", (28, 22, 18), 3.0)
    mr[rect("boots")][..., 1] = 0.45
    fill("skin", spec["skin"], 3.0)
    mr[rect("skin")][..., 1] = 0.6
    fill("hair", spec["hair"], 4.0)
    r = rect("hair")
    base[r] *= (0.8 + 0.2 * np.sin(xx[r] * ATLAS * 0.9))[..., None]
    height[r] = 0.5 + 0.5 * np.sin(xx[r] * ATLAS * 0.9)
    # face: u wraps around the head (0.5 = front), v from the crown (0) to the chin (1)
    fill("face", spec["skin"], 2.5)
    r = rect("face")
    fu, fv = xx[r] / 0.5, (yy[r] - 0.5) / 0.5
    mr[r][..., 1] = 0.55
    cheeks = np.exp(-(((np.abs(fu - 0.5) - 0.09) / 0.04) ** 2 + ((fv - 0.6) / 0.06) ** 2))
    base[r] += cheeks[..., None] * np.array([22, -10, -10], np.float32)
    for sx in (-1, 1):  # brows above the eyes
        brow = (np.abs(fu - 0.5 - sx * 0.065) < 0.035) & (np.abs(fv - 0.43 + 0.02 * np.abs(fu - 0.5 - sx * 0.065) * 10)
                                                          < 0.012)
        base[r][brow] = np.asarray(spec["hair"], np.float32) * 0.55
    lips = ((fu - 0.5) / 0.05) ** 2 + ((fv - 0.735) / 0.02) ** 2 < 1.0
    base[r][lips] = np.array(spec["skin"], np.float32) * np.array([0.8, 0.55, 0.55])
    # eyes: sclera with an iris and pupil around the front pole (v = 0)
    r = rect("eye")
    ev = (yy[r] - 0.5) / 0.125
    base[r] = 235
    base[r][ev < 0.3] = (70, 95, 120)
    base[r][ev < 0.15] = (10, 10, 12)
    mr[rect("eye")][..., 1] = 0.15
    r = rect("mouth")
    base[r] = (90, 25, 28)
    mr[r][..., 1] = 0.4
    # normal map from the height field (tangent space, +Z out)
    gy, gx = np.gradient(height * 1.5)
    n = np.stack([-gx, -gy, np.ones_like(gx)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    to8 = lambda a: np.clip(a, 0, 255).astype(np.uint8)  # noqa: E731
    return (to8(base), to8(mr * 255), to8((n * 0.5 + 0.5) * 255), to8(np.repeat(occ[..., None], 3, -1) * 255))


def build(name: str, spec: dict, out: Path) -> Path:
    b = GltfBuilder(generator="xrstory scripts/build_characters.py")
    p = Parts()
    sh, hp = spec["shoulders"], spec["hips"]
    # legs and boots
    for side in (-1, 1):
        s = "l" if side < 0 else "r"
        x = side * 0.1
        tube(p, 0.5, 0.92, (0.065, 0.07), (0.08, 0.085), x, "trousers", [(f"thigh_{s}", 0)], "legs")
        tube(p, 0.09, 0.52, (0.05, 0.055), (0.065, 0.07), x, "trousers", [(f"shin_{s}", 0)], "legs")
        ellipsoid(p, (x, 0.06, 0.04), (0.06, 0.06, 0.13), "boots", f"shin_{s}", "boots", seg=16, rings=10)
    # coat: hem, body and shoulders, blending spine -> chest by height
    tube(p, 0.62, 0.95, (hp + 0.06, 0.15), (hp + 0.02, 0.13), 0.0, "coat", [("hips", 0.0)], "coat", caps=False)
    tube(p, 0.9, 1.46, (hp + 0.02, 0.13), (sh, 0.12), 0.0, "coat", [("spine", 1.05), ("chest", 1.35)], "coat")
    ellipsoid(p, (0.0, 1.44, 0.0), (sh + 0.02, 0.06, 0.12), "coat", "chest", "coat")
    for side in (-1, 1):
        arm_tube(p, side, "coat", "arms")
        s = "l" if side < 0 else "r"
        hand = np.array(JOINTS[f"forearm_{s}"][1]) + np.array([side * 0.035, -0.3, 0.0])
        ellipsoid(p, hand, (0.04, 0.055, 0.035), "skin", f"forearm_{s}", "hands", seg=12, rings=8)
    # neck, head, hair, nose, eyes, mouth
    tube(p, 1.46, 1.56, (0.045, 0.045), (0.043, 0.043), 0.0, "skin", [("neck", 0)], "neck", caps=False)
    head = ellipsoid(p, (0.0, 1.65, 0.0), (0.105, 0.13, 0.115), "face", "head", "head", seg=32, rings=20)
    # the hair is a cap: above and behind the face, so the forehead, eyes and cheeks stay clear
    ellipsoid(p, (0.0, 1.70, -0.03), (0.112, 0.097, 0.115), "hair", "head", "hair", seg=24, rings=12)
    if spec["bun"]:
        ellipsoid(p, (0.0, 1.7, -0.12), (0.05, 0.05, 0.045), "hair", "head", "hair", seg=12, rings=8)
    ellipsoid(p, (0.0, 1.64, 0.112), (0.016, 0.026, 0.02), "face", "head", "nose", seg=10, rings=6)
    eyes = [ellipsoid(p, (sx * 0.038, 1.668, 0.1), (0.014, 0.014, 0.012), "eye", "head", "eye", seg=12,
                      rings=8, axis="z") for sx in (-1, 1)]
    mouth = ellipsoid(p, (0.0, 1.594, 0.103), (0.028, 0.006, 0.012), "mouth", "head", "mouth", seg=16, rings=8)
    pos, nrm, uv, jnt, wgt, idx = p.arrays()

    # morph targets: mouth shapes scale the mouth about its centre; the open jaw drops the chin
    mc = np.array([0.0, 1.594, 0.103], np.float32)
    targets = {}

    def mouth_shape(sx, sy, dz=0.0, jaw=0.0):
        d = np.zeros_like(pos)
        rel = pos[mouth] - mc
        d[mouth] = rel * (np.array([sx, sy, 1.0]) - 1.0) + np.array([0.0, -0.45 * jaw * 0.02, dz])
        chin = head[(pos[head, 1] < 1.6) & (pos[head, 2] > 0.02)]
        f = np.clip((1.6 - pos[chin, 1]) / 0.06, 0, 1)
        d[chin, 1] -= jaw * 0.018 * f
        return d, None

    targets["mouth_open"] = mouth_shape(1.05, 4.2, 0.002, jaw=1.0)
    targets["mouth_round"] = mouth_shape(0.6, 2.6, 0.006, jaw=0.4)
    targets["mouth_wide"] = mouth_shape(1.35, 1.6, 0.0, jaw=0.15)
    targets["mouth_closed"] = mouth_shape(0.95, 0.35)
    d = np.zeros_like(pos)
    for e, sx in zip(eyes, (-1, 1), strict=True):
        centre = np.array([sx * 0.038, 1.668, 0.1])
        d[e, 1] = (pos[e, 1] - centre[1]) * -0.92 + 0.004
    targets["blink"] = (d, None)

    base, mr, normal, occ = paint(spec, seed=sum(map(ord, name)))
    t_base, t_mr, t_n, t_o = (b.texture(img) for img in (base, mr, normal, occ))
    mat = b.material(f"{name}_body", base_texture=t_base, mr_texture=t_mr, normal_texture=t_n,
                     occlusion_texture=t_o, metallic=1.0, roughness=1.0)
    mesh = b.mesh(f"{name}_body", pos, nrm, idx, mat, uv=uv, joints=jnt, weights=wgt, targets=targets)

    nodes = {}
    for jn, (parent, at) in JOINTS.items():
        rel = np.asarray(at) - (np.asarray(JOINTS[parent][1]) if parent else 0.0)
        nodes[jn] = b.node(jn, parent=nodes[parent] if parent else None, translation=rel)
    ibm = np.stack([np.linalg.inv(_translation(JOINTS[jn][1])) for jn in NAMES])
    skin = b.skin(f"{name}_skin", [nodes[jn] for jn in NAMES], ibm, skeleton=nodes["root"])
    b.node(f"{name}_body", mesh=mesh, skin=skin)
    _clips(b, nodes)
    return b.save(out / f"{name}.glb")


def _translation(t) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m


def _quat(axis, deg) -> list[float]:
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    h = math.radians(deg) / 2
    return [*(a * math.sin(h)), math.cos(h)]


def _rot_keys(axis, degs) -> np.ndarray:
    return np.array([_quat(axis, d) for d in degs], np.float32)


def _clips(b: GltfBuilder, n: dict) -> None:
    t = np.linspace(0, 4, 9)
    breathe = np.sin(t / 4 * 2 * math.pi)
    b.animation("idle", [
        (n["chest"], "rotation", t, _rot_keys((1, 0, 0), 1.5 * breathe), "LINEAR"),
        (n["head"], "rotation", t, np.array([_quat((0, 1, 0), 5 * math.sin(x / 4 * 2 * math.pi + 1.0))
                                             for x in t], np.float32), "LINEAR"),
        (n["upperarm_l"], "rotation", t, _rot_keys((0, 0, 1), -4 - 1.5 * breathe), "LINEAR"),
        (n["upperarm_r"], "rotation", t, _rot_keys((0, 0, 1), 4 + 1.5 * breathe), "LINEAR"),
    ])
    tw = np.array([0.0, 0.4, 0.7, 1.0, 1.3, 1.6, 1.9, 2.4])
    b.animation("wave", [
        (n["upperarm_r"], "rotation", tw, _rot_keys((0, 0, 1), [4, 140, 150, 150, 150, 150, 140, 4]), "LINEAR"),
        (n["forearm_r"], "rotation", tw, _rot_keys((0, 0, 1), [0, 10, 35, -10, 35, -10, 10, 0]), "LINEAR"),
        (n["head"], "rotation", tw, _rot_keys((0, 0, 1), [0, -4, -6, -6, -6, -6, -4, 0]), "LINEAR"),
    ])
    tn = np.array([0.0, 0.35, 0.7, 1.05, 1.4])
    nod = [0, 14, -4, 11, 0]
    vals = []
    for d in nod:  # CUBICSPLINE: in-tangent, value, out-tangent per key (flat tangents: eased keys)
        vals += [[0, 0, 0, 0], _quat((1, 0, 0), d), [0, 0, 0, 0]]
    b.animation("nod", [
        (n["head"], "rotation", tn, np.array(vals, np.float32), "CUBICSPLINE"),
        (n["neck"], "rotation", tn, np.array(sum(([[0, 0, 0, 0], _quat((1, 0, 0), d / 3), [0, 0, 0, 0]]
                                                  for d in nod), []), np.float32), "CUBICSPLINE"),
    ])
    ts = np.array([0.0, 0.4, 1.2, 1.7])
    b.animation("shrug", [
        (n["upperarm_l"], "rotation", ts, _rot_keys((0, 0, 1), [-4, -22, -22, -4]), "LINEAR"),
        (n["upperarm_r"], "rotation", ts, _rot_keys((0, 0, 1), [4, 22, 22, 4]), "LINEAR"),
        (n["forearm_l"], "rotation", ts, _rot_keys((1, 0, 0), [0, -70, -70, 0]), "LINEAR"),
        (n["forearm_r"], "rotation", ts, _rot_keys((1, 0, 0), [0, -70, -70, 0]), "LINEAR"),
        (n["chest"], "translation", ts, np.array([[0, 0.22, 0], [0, 0.235, 0], [0, 0.235, 0], [0, 0.22, 0]],
                                                 np.float32), "LINEAR"),
        (n["head"], "rotation", ts, _rot_keys((0, 0, 1), [0, 8, 8, 0]), "LINEAR"),
    ])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="assets/characters")
    a = ap.parse_args(argv)
    for name, spec in CHARACTERS.items():
        print(build(name, spec, Path(a.out)))


if __name__ == "__main__":
    main()
