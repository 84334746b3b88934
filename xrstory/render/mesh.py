"""Mesh data on the CPU: primitives (box, sphere, cylinder, cone, plane) and glTF 2.0 files.

A ``MeshData`` is interleaved vertices ``(n, 9) float32`` = position xyz (metres), normal xyz,
colour rgb (linear, multiplied with the instance's base colour) and ``(m,) uint32`` triangle
indices, counter-clockwise front faces. Unit primitives are centred on the origin and one
metre across (sphere/cylinder/cone radius 0.5, height 1; the plane lies in XZ facing +Y), so a
prop's ``scale`` is its size in metres. No GL here: ``gpu.py`` uploads these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WHITE = (1.0, 1.0, 1.0)


@dataclass
class MeshData:
    vertices: np.ndarray  # (n, 9) float32: position, normal, colour
    indices: np.ndarray  # (m,) uint32, triangles
    bounds_min: np.ndarray  # (3,) float32, metres
    bounds_max: np.ndarray  # (3,) float32, metres

    @staticmethod
    def build(pos, nrm, idx, color=WHITE) -> MeshData:
        pos = np.asarray(pos, np.float32).reshape(-1, 3)
        nrm = np.asarray(nrm, np.float32).reshape(-1, 3)
        col = np.broadcast_to(np.asarray(color, np.float32), pos.shape) if np.ndim(color) == 1 else color
        verts = np.ascontiguousarray(np.concatenate([pos, nrm, np.asarray(col, np.float32)], axis=1))
        return MeshData(verts, np.asarray(idx, np.uint32).ravel(), pos.min(axis=0), pos.max(axis=0))


def box() -> MeshData:
    pos, nrm, idx = [], [], []
    # one quad per face, with its own normals so edges stay sharp
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = sign
            u = np.zeros(3)
            v = np.zeros(3)
            u[(axis + 1) % 3] = 1.0
            v[(axis + 2) % 3] = 1.0
            if sign < 0:
                u, v = v, u  # keep counter-clockwise seen from outside
            base = len(pos)
            for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                pos.append(0.5 * n + 0.5 * a * u + 0.5 * b * v)
                nrm.append(n)
            idx += [base, base + 1, base + 2, base, base + 2, base + 3]
    return MeshData.build(pos, nrm, idx)


def sphere(segments: int = 32, rings: int = 16) -> MeshData:
    th = np.linspace(0, math.pi, rings + 1)[:, None]  # polar angle from +Y
    ph = np.linspace(0, 2 * math.pi, segments + 1)[None, :]
    n = np.stack([np.sin(th) * np.sin(ph), np.cos(th) * np.ones_like(ph), np.sin(th) * np.cos(ph)], -1)
    n = n.reshape(-1, 3)
    idx = []
    w = segments + 1
    for r in range(rings):
        for s in range(segments):
            a, b = r * w + s, (r + 1) * w + s
            idx += [a, b, b + 1, a, b + 1, a + 1]
    return MeshData.build(0.5 * n, n, idx)


def _lathe(radius_bottom: float, radius_top: float, segments: int, caps: bool) -> MeshData:
    """A surface of revolution about Y from y=-0.5 to 0.5, with flat caps."""
    ph = np.linspace(0, 2 * math.pi, segments + 1)
    sx, sz = np.sin(ph), np.cos(ph)
    slope = radius_bottom - radius_top  # outward normal tilts up when the top is narrower
    ny = slope / math.hypot(slope, 1.0)
    nr = 1.0 / math.hypot(slope, 1.0)
    pos, nrm, idx = [], [], []
    for y, r in ((-0.5, radius_bottom), (0.5, radius_top)):
        for i in range(segments + 1):
            pos.append((r * sx[i], y, r * sz[i]))
            nrm.append((nr * sx[i], ny, nr * sz[i]))
    w = segments + 1
    for i in range(segments):
        idx += [i, i + 1, w + i + 1, i, w + i + 1, w + i]
    if caps:
        for y, r, sign in ((-0.5, radius_bottom, -1.0), (0.5, radius_top, 1.0)):
            if r <= 0:
                continue
            centre = len(pos)
            pos.append((0.0, y, 0.0))
            nrm.append((0.0, sign, 0.0))
            for i in range(segments + 1):
                pos.append((r * sx[i], y, r * sz[i]))
                nrm.append((0.0, sign, 0.0))
            for i in range(segments):
                a, b = centre + 1 + i, centre + 2 + i
                idx += [centre, a, b] if sign > 0 else [centre, b, a]
    return MeshData.build(pos, nrm, idx)


def cylinder(segments: int = 32) -> MeshData:
    return _lathe(0.5, 0.5, segments, caps=True)


def cone(segments: int = 32) -> MeshData:
    return _lathe(0.5, 0.0, segments, caps=True)


def plane() -> MeshData:
    pos = [(-0.5, 0, 0.5), (0.5, 0, 0.5), (0.5, 0, -0.5), (-0.5, 0, -0.5)]
    return MeshData.build(pos, [(0, 1, 0)] * 4, [0, 1, 2, 0, 2, 3])


PRIMITIVES = {"box": box, "sphere": sphere, "cylinder": cylinder, "cone": cone, "plane": plane}


class MeshError(ValueError):
    """A mesh file that cannot be used; the message names the file and what is wrong."""


def load_gltf(path: str | Path) -> MeshData:
    """All triangle primitives of a glTF 2.0 file (.gltf or .glb), node transforms applied,
    each primitive coloured by its material's baseColorFactor, merged into one mesh."""
    import pygltflib

    path = Path(path)
    if not path.is_file():
        raise MeshError(f"{path}: glTF file not found")
    try:
        gl = pygltflib.GLTF2().load(str(path))
    except Exception as exc:  # pygltflib raises assorted errors on bad files
        raise MeshError(f"{path}: not a readable glTF 2.0 file ({exc})") from exc
    blob = gl.binary_blob()

    def buffer_bytes(buffer_index: int) -> bytes:
        buf = gl.buffers[buffer_index]
        if buf.uri is None:
            return blob
        if buf.uri.startswith("data:"):
            import base64
            return base64.b64decode(buf.uri.split(",", 1)[1])
        return (path.parent / buf.uri).read_bytes()

    comp = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}

    def accessor(i: int) -> np.ndarray:
        acc = gl.accessors[i]
        view = gl.bufferViews[acc.bufferView]
        dtype = np.dtype(comp[acc.componentType])
        n = width[acc.type]
        data = buffer_bytes(view.buffer)
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        stride = view.byteStride or dtype.itemsize * n
        rows = np.ndarray((acc.count, n), dtype, buffer=data, offset=start, strides=(stride, dtype.itemsize))
        return np.array(rows)

    def node_matrix(node) -> np.ndarray:
        if node.matrix:
            return np.asarray(node.matrix, np.float32).reshape(4, 4).T  # glTF stores column-major
        from xrstory.render.transform import scaling, translation
        x, y, z, w = node.rotation or (0, 0, 0, 1)
        r = np.eye(4, dtype=np.float32)
        r[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
        return translation(node.translation or (0, 0, 0)) @ r @ scaling(node.scale or (1, 1, 1))

    parts: list[MeshData] = []

    def visit(node_index: int, parent: np.ndarray) -> None:
        node = gl.nodes[node_index]
        m = parent @ node_matrix(node)
        if node.mesh is not None:
            for prim in gl.meshes[node.mesh].primitives:
                if prim.mode not in (None, 4):  # 4 = TRIANGLES
                    continue
                pos = accessor(prim.attributes.POSITION).astype(np.float32)
                if prim.attributes.NORMAL is not None:
                    nrm = accessor(prim.attributes.NORMAL).astype(np.float32)
                else:
                    nrm = np.tile([0.0, 1.0, 0.0], (len(pos), 1))
                idx = (accessor(prim.indices).ravel() if prim.indices is not None
                       else np.arange(len(pos)))
                color = WHITE
                if prim.material is not None:
                    pbr = gl.materials[prim.material].pbrMetallicRoughness
                    if pbr and pbr.baseColorFactor:
                        color = tuple(pbr.baseColorFactor[:3])
                pos = pos @ m[:3, :3].T + m[:3, 3]
                nrm_m = np.linalg.inv(m[:3, :3]).T
                nrm = nrm @ nrm_m.T
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-8)
                parts.append(MeshData.build(pos, nrm, idx, color))
        for child in node.children or []:
            visit(child, m)

    scene_index = gl.scene or 0
    roots = gl.scenes[scene_index].nodes if gl.scenes else range(len(gl.nodes))
    for root in roots:
        visit(root, np.eye(4, dtype=np.float32))
    if not parts:
        raise MeshError(f"{path}: no triangle meshes in the file")
    offset, verts, idxs = 0, [], []
    for p in parts:
        verts.append(p.vertices)
        idxs.append(p.indices + offset)
        offset += len(p.vertices)
    v = np.concatenate(verts)
    return MeshData(v, np.concatenate(idxs).astype(np.uint32), v[:, :3].min(0), v[:, :3].max(0))
