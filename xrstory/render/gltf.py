"""glTF 2.0 as artists export it, read into numpy: meshes with materials and textures, the node
hierarchy, skins, morph targets and animation clips. No GL here (``model_gpu.py`` uploads it).

Read with ``pygltflib`` (.gltf with external or data-URI buffers, or .glb). Supported:
PBR metallic-roughness (base colour, metallic-roughness, normal, occlusion, emissive textures
with their samplers and TEXCOORD_0), alpha modes OPAQUE / MASK / BLEND, doubleSided,
KHR_materials_emissive_strength, KHR_texture_transform (on the base colour texture; the other
textures of a material share it), skins (JOINTS_0 / WEIGHTS_0, 4 weights), morph targets
(POSITION and NORMAL deltas), animations (translation / rotation / scale / weights with LINEAR,
STEP and CUBICSPLINE). Units: metres, +Y up, as glTF says.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xrstory.render.mesh import MeshError

VERTEX_FLOATS = 16  # position 3, normal 3, uv 2, joints 4 (as float), weights 4
_COMP = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_NORM_MAX = {np.int8: 127.0, np.uint8: 255.0, np.int16: 32767.0, np.uint16: 65535.0}
TEXTURE_SLOTS = ("base", "mr", "normal", "occlusion", "emissive")
SUPPORTED_EXTENSIONS = {"KHR_materials_emissive_strength", "KHR_texture_transform"}


@dataclass
class Sampler:
    mag: int = 9729  # GL_LINEAR
    min: int = 9987  # GL_LINEAR_MIPMAP_LINEAR
    wrap_s: int = 10497  # GL_REPEAT
    wrap_t: int = 10497


@dataclass
class TextureData:
    image: np.ndarray  # (h, w, 4) uint8, rows top to bottom as glTF's uv (0,0) is the top left
    srgb: bool  # base colour and emissive are sRGB-encoded (glTF 3.9.2); the others are linear
    sampler: Sampler


@dataclass
class MaterialData:
    name: str = ""
    base_color: tuple = (1.0, 1.0, 1.0, 1.0)  # linear rgba
    metallic: float = 1.0
    roughness: float = 1.0
    emissive: tuple = (0.0, 0.0, 0.0)  # linear, times KHR_materials_emissive_strength
    normal_scale: float = 1.0
    occlusion_strength: float = 1.0
    alpha_mode: str = "OPAQUE"
    alpha_cutoff: float = 0.5
    double_sided: bool = False
    textures: dict[str, int] = field(default_factory=dict)  # slot -> index into GltfModel.textures
    uv_transform: np.ndarray = field(default_factory=lambda: np.eye(3, dtype=np.float32))


@dataclass
class PrimitiveData:
    vertices: np.ndarray  # (n, VERTEX_FLOATS) float32
    indices: np.ndarray  # (m,) uint32 triangles
    material: int  # index into GltfModel.materials (-1: the default material)
    morph: np.ndarray | None  # (targets, n, 2, 4) float32 position / normal deltas (w unused)
    bounds_min: np.ndarray
    bounds_max: np.ndarray


@dataclass
class MeshDef:
    name: str
    primitives: list[PrimitiveData]
    weights: np.ndarray  # (targets,) default morph weights
    target_names: list[str]


@dataclass
class NodeDef:
    name: str
    parent: int  # -1 for a root
    translation: np.ndarray  # (3,)
    rotation: np.ndarray  # (4,) quaternion x, y, z, w
    scale: np.ndarray  # (3,)
    matrix: np.ndarray | None  # (4, 4) when the file gives a matrix instead of TRS (not animatable)
    mesh: int | None
    skin: int | None


@dataclass
class SkinDef:
    name: str
    joints: np.ndarray  # (j,) node indices
    inverse_bind: np.ndarray  # (j, 4, 4) float32


@dataclass
class Channel:
    node: int
    path: str  # translation | rotation | scale | weights
    times: np.ndarray  # (k,) seconds
    values: np.ndarray  # (k, width) or (k, 3, width) for CUBICSPLINE (in-tangent, value, out-tangent)
    interpolation: str  # LINEAR | STEP | CUBICSPLINE


@dataclass
class Clip:
    name: str
    channels: list[Channel]
    duration: float


@dataclass
class GltfModel:
    path: Path
    nodes: list[NodeDef]
    order: list[int]  # node indices, parents before children (the scene's nodes only)
    meshes: list[MeshDef]
    skins: list[SkinDef]
    materials: list[MaterialData]
    textures: list[TextureData]
    clips: dict[str, Clip]
    bounds_min: np.ndarray  # rest pose, model space (node transforms applied, skins not)
    bounds_max: np.ndarray

    def morph_target_names(self) -> set[str]:
        return {n for m in self.meshes for n in m.target_names}


def _err(path: Path, msg: str) -> MeshError:
    return MeshError(f"{path}: {msg}")


def load_model(path: str | Path) -> GltfModel:
    """Read a glTF 2.0 file; a file that cannot be used raises ``MeshError`` naming it."""
    import pygltflib

    path = Path(path)
    if not path.is_file():
        raise _err(path, "glTF file not found")
    try:
        gl = pygltflib.GLTF2().load(str(path))
    except Exception as exc:  # pygltflib raises assorted errors on bad files
        raise _err(path, f"not a readable glTF 2.0 file ({exc})") from exc
    unsupported = sorted(set(gl.extensionsRequired or []) - SUPPORTED_EXTENSIONS)
    if unsupported:
        raise _err(path, f"needs glTF extensions this renderer does not draw: {', '.join(unsupported)} "
                         f"(supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))})")
    blob = gl.binary_blob()
    buffers: dict[int, bytes] = {}

    def buffer_bytes(i: int) -> bytes:
        if i not in buffers:
            uri = gl.buffers[i].uri
            if uri is None:
                buffers[i] = blob
            elif uri.startswith("data:"):
                buffers[i] = base64.b64decode(uri.split(",", 1)[1])
            else:
                buffers[i] = (path.parent / uri).read_bytes()
        return buffers[i]

    def view_bytes(vi: int) -> bytes:
        v = gl.bufferViews[vi]
        start = v.byteOffset or 0
        return buffer_bytes(v.buffer)[start:start + v.byteLength]

    def accessor(i: int, as_float: bool = True) -> np.ndarray:
        acc = gl.accessors[i]
        dtype = np.dtype(_COMP[acc.componentType])
        n = _WIDTH[acc.type]
        if acc.bufferView is None:
            out = np.zeros((acc.count, n), dtype)
        else:
            view = gl.bufferViews[acc.bufferView]
            data = buffer_bytes(view.buffer)
            start = (view.byteOffset or 0) + (acc.byteOffset or 0)
            stride = view.byteStride or dtype.itemsize * n
            out = np.array(np.ndarray((acc.count, n), dtype, buffer=data, offset=start,
                                      strides=(stride, dtype.itemsize)))
        if acc.sparse is not None:
            sp = acc.sparse
            idx = np.frombuffer(view_bytes(sp.indices.bufferView), _COMP[sp.indices.componentType],
                                sp.count, sp.indices.byteOffset or 0)
            vals = np.frombuffer(view_bytes(sp.values.bufferView), dtype, sp.count * n,
                                 sp.values.byteOffset or 0).reshape(sp.count, n)
            out[idx] = vals
        if as_float and dtype.type is not np.float32:
            out = out.astype(np.float32)
            if acc.normalized:
                out = np.maximum(out / _NORM_MAX[dtype.type], -1.0)
        return out

    textures = _textures(gl, path, view_bytes)
    materials = [_material(m, textures) for m in (gl.materials or [])]
    meshes = [_mesh(path, gl, m, accessor) for m in (gl.meshes or [])]
    nodes, order = _nodes(path, gl)
    skins = []
    for s in gl.skins or []:
        j = np.asarray(s.joints, np.int64)
        ibm = (accessor(s.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
               if s.inverseBindMatrices is not None else np.tile(np.eye(4, dtype=np.float32), (len(j), 1, 1)))
        skins.append(SkinDef(s.name or "", j, np.ascontiguousarray(ibm, np.float32)))
    clips = {}
    for k, a in enumerate(gl.animations or []):
        chans = []
        for ch in a.channels:
            smp = a.samplers[ch.sampler]
            if ch.target.node is None:
                continue
            times = accessor(smp.input).ravel()
            vals = accessor(smp.output)
            interp = smp.interpolation or "LINEAR"
            if ch.target.path == "weights":
                vals = vals.reshape(len(times) * (3 if interp == "CUBICSPLINE" else 1), -1)
            if interp == "CUBICSPLINE":
                vals = vals.reshape(len(times), 3, -1)
            chans.append(Channel(ch.target.node, ch.target.path, times, vals, interp))
        name = a.name or f"animation_{k}"
        clips[name] = Clip(name, chans, max((float(c.times[-1]) for c in chans), default=0.0))
    model = GltfModel(path, nodes, order, meshes, skins, materials, textures, clips,
                      np.zeros(3, np.float32), np.zeros(3, np.float32))
    _set_bounds(model)
    return model


def _textures(gl, path: Path, view_bytes) -> list[TextureData]:
    from PIL import Image

    srgb = set()
    for m in gl.materials or []:
        pbr = m.pbrMetallicRoughness
        for info in ((pbr.baseColorTexture if pbr else None), m.emissiveTexture):
            if info is not None:
                srgb.add(info.index)
    out = []
    for i, t in enumerate(gl.textures or []):
        img = gl.images[t.source]
        try:
            if img.bufferView is not None:
                raw = view_bytes(img.bufferView)
            elif img.uri and img.uri.startswith("data:"):
                raw = base64.b64decode(img.uri.split(",", 1)[1])
            else:
                raw = (path.parent / img.uri).read_bytes()
            pixels = np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA"), np.uint8)
        except Exception as exc:  # PIL raises many kinds on bad images
            raise _err(path, f"texture {i}: image cannot be read ({exc})") from exc
        s = gl.samplers[t.sampler] if t.sampler is not None else None
        smp = Sampler(*(getattr(s, k) or d for k, d in (("magFilter", 9729), ("minFilter", 9987),
                                                          ("wrapS", 10497), ("wrapT", 10497)))) if s else Sampler()
        out.append(TextureData(pixels, i in srgb, smp))
    return out


def _uv_transform(ext: dict | None) -> np.ndarray:
    """KHR_texture_transform as a 3x3 matrix on (u, v, 1): T * R * S, as the extension defines."""
    m = np.eye(3, dtype=np.float32)
    if not ext:
        return m
    ox, oy = ext.get("offset", (0.0, 0.0))
    r = float(ext.get("rotation", 0.0))
    sx, sy = ext.get("scale", (1.0, 1.0))
    c, s = np.cos(r), np.sin(r)
    t = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], np.float32)
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], np.float32)
    return (t @ rot @ np.diag([sx, sy, 1.0])).astype(np.float32)


def _material(m, textures) -> MaterialData:
    pbr = m.pbrMetallicRoughness
    ext = m.extensions or {}
    out = MaterialData(name=m.name or "", alpha_mode=m.alphaMode or "OPAQUE",
                       alpha_cutoff=0.5 if m.alphaCutoff is None else float(m.alphaCutoff),
                       double_sided=bool(m.doubleSided))
    strength = float(ext.get("KHR_materials_emissive_strength", {}).get("emissiveStrength", 1.0))
    out.emissive = tuple(float(v) * strength for v in (m.emissiveFactor or (0.0, 0.0, 0.0)))
    if pbr is not None:
        out.base_color = tuple(pbr.baseColorFactor or (1.0, 1.0, 1.0, 1.0))
        out.metallic = 1.0 if pbr.metallicFactor is None else float(pbr.metallicFactor)
        out.roughness = 1.0 if pbr.roughnessFactor is None else float(pbr.roughnessFactor)
        if pbr.baseColorTexture is not None:
            out.textures["base"] = pbr.baseColorTexture.index
            out.uv_transform = _uv_transform((pbr.baseColorTexture.extensions or {}).get("KHR_texture_transform"))
        if pbr.metallicRoughnessTexture is not None:
            out.textures["mr"] = pbr.metallicRoughnessTexture.index
    if m.normalTexture is not None:
        out.textures["normal"] = m.normalTexture.index
        out.normal_scale = float(m.normalTexture.scale if m.normalTexture.scale is not None else 1.0)
    if m.occlusionTexture is not None:
        out.textures["occlusion"] = m.occlusionTexture.index
        st = m.occlusionTexture.strength
        out.occlusion_strength = float(1.0 if st is None else st)
    if m.emissiveTexture is not None:
        out.textures["emissive"] = m.emissiveTexture.index
    out.textures = {k: v for k, v in out.textures.items() if 0 <= v < len(textures)}
    return out


def _mesh(path: Path, gl, mesh, accessor) -> MeshDef:
    prims = []
    n_targets = 0
    for p in mesh.primitives:
        if p.mode not in (None, 4):  # only TRIANGLES; lines and points are not drawn
            continue
        a = p.attributes
        if a.POSITION is None:
            raise _err(path, f"mesh '{mesh.name}': a primitive has no POSITION")
        pos = accessor(a.POSITION)
        n = len(pos)
        v = np.zeros((n, VERTEX_FLOATS), np.float32)
        v[:, 0:3] = pos
        v[:, 3:6] = accessor(a.NORMAL) if a.NORMAL is not None else _flat_normals(pos, p, accessor)
        if a.TEXCOORD_0 is not None:
            v[:, 6:8] = accessor(a.TEXCOORD_0)
        if a.JOINTS_0 is not None and a.WEIGHTS_0 is not None:
            v[:, 8:12] = accessor(a.JOINTS_0, as_float=False).astype(np.float32)
            w = accessor(a.WEIGHTS_0)
            v[:, 12:16] = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-8)
        idx = accessor(p.indices, as_float=False).ravel().astype(np.uint32) if p.indices is not None \
            else np.arange(n, dtype=np.uint32)
        morph = None
        if p.targets:
            morph = np.zeros((len(p.targets), n, 2, 4), np.float32)
            for t, tgt in enumerate(p.targets):
                if tgt.get("POSITION") is not None:
                    morph[t, :, 0, :3] = accessor(tgt["POSITION"])
                if tgt.get("NORMAL") is not None:
                    morph[t, :, 1, :3] = accessor(tgt["NORMAL"])
            n_targets = max(n_targets, len(p.targets))
        prims.append(PrimitiveData(v, idx, -1 if p.material is None else p.material, morph,
                                   pos.min(0), pos.max(0)))
    weights = np.zeros(n_targets, np.float32)
    if mesh.weights:
        weights[:len(mesh.weights)] = mesh.weights
    names = list((mesh.extras or {}).get("targetNames", [])) if isinstance(mesh.extras, dict) else []
    names += [f"target_{i}" for i in range(len(names), n_targets)]
    return MeshDef(mesh.name or "", prims, weights, names)


def _flat_normals(pos, prim, accessor) -> np.ndarray:
    """glTF 3.7.2.1: without normals, flat normals are used; per-vertex here (an approximation)."""
    idx = accessor(prim.indices, as_float=False).ravel() if prim.indices is not None else np.arange(len(pos))
    tri = idx.reshape(-1, 3)
    fn = np.cross(pos[tri[:, 1]] - pos[tri[:, 0]], pos[tri[:, 2]] - pos[tri[:, 0]])
    out = np.zeros_like(pos)
    for k in range(3):
        np.add.at(out, tri[:, k], fn)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)


def _nodes(path: Path, gl) -> tuple[list[NodeDef], list[int]]:
    parent = [-1] * len(gl.nodes)
    for i, n in enumerate(gl.nodes):
        for c in n.children or []:
            parent[c] = i
    nodes = []
    for i, n in enumerate(gl.nodes):
        mat = np.asarray(n.matrix, np.float32).reshape(4, 4).T if n.matrix else None
        nodes.append(NodeDef(n.name or f"node_{i}", parent[i],
                             np.asarray(n.translation or (0, 0, 0), np.float32),
                             np.asarray(n.rotation or (0, 0, 0, 1), np.float32),
                             np.asarray(n.scale or (1, 1, 1), np.float32), mat, n.mesh, n.skin))
    roots = gl.scenes[gl.scene or 0].nodes if gl.scenes else [i for i, p in enumerate(parent) if p < 0]
    order: list[int] = []
    stack = list(reversed(roots or []))
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(gl.nodes[i].children or []))
    if len(order) != len(set(order)):
        raise _err(path, "the node hierarchy has a cycle or a node with two parents")
    return nodes, order


def _set_bounds(model: GltfModel) -> None:
    from xrstory.render.pose import rest_world_matrices

    world = rest_world_matrices(model)
    lo, hi = np.full(3, np.inf, np.float32), np.full(3, -np.inf, np.float32)
    for i in model.order:
        node = model.nodes[i]
        if node.mesh is None:
            continue
        for p in model.meshes[node.mesh].primitives:
            pos = p.vertices[:, :3]
            if node.skin is not None:  # skinned: vertices are in bind space (the joints' frame)
                w = pos
            else:
                w = pos @ world[i][:3, :3].T + world[i][:3, 3]
            lo, hi = np.minimum(lo, w.min(0)), np.maximum(hi, w.max(0))
    if not np.all(np.isfinite(lo)):
        raise _err(model.path, "no triangle meshes in the file")
    model.bounds_min, model.bounds_max = lo, hi

