"""Write glTF 2.0 binary files (.glb) from numpy arrays with ``pygltflib``: meshes with morph
targets, PBR materials with PNG textures and samplers, nodes, skins and animation clips.

Used by ``scripts/build_characters.py`` (the demo's characters) and by the render tests (their
small test assets); every file it writes is meant to pass Khronos' glTF-Validator.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pygltflib as g

ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
NEAREST, LINEAR, LINEAR_MIPMAP_LINEAR = 9728, 9729, 9987
CLAMP, REPEAT = 33071, 10497
_TYPE = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


class GltfBuilder:
    """Accumulates one binary buffer and the glTF objects that point into it."""

    def __init__(self, generator: str = "xrstory gltf_write"):
        self.gl = g.GLTF2(asset=g.Asset(version="2.0", generator=generator), scene=0,
                          scenes=[g.Scene(nodes=[])], buffers=[g.Buffer(byteLength=0)])
        self.blob = bytearray()
        self.used_ext: set[str] = set()

    # -- raw data ---------------------------------------------------------------------
    def _view(self, data: bytes, target: int | None = None) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        self.gl.bufferViews.append(g.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data),
                                                target=target))
        self.blob += data
        return len(self.gl.bufferViews) - 1

    def accessor(self, array: np.ndarray, target: int | None = None, bounds: bool = False,
                 width: int | None = None) -> int:
        a = np.ascontiguousarray(array)
        comp = {np.dtype(np.float32): g.FLOAT, np.dtype(np.uint16): g.UNSIGNED_SHORT,
                np.dtype(np.uint32): g.UNSIGNED_INT, np.dtype(np.uint8): g.UNSIGNED_BYTE}[a.dtype]
        n = width or (1 if a.ndim == 1 else int(np.prod(a.shape[1:])))
        rows = a.reshape(-1, n)
        acc = g.Accessor(bufferView=self._view(a.tobytes(), target), componentType=comp, count=len(rows),
                         type=_TYPE[n])
        if bounds:
            acc.min = [float(v) for v in rows.min(0)]
            acc.max = [float(v) for v in rows.max(0)]
        self.gl.accessors.append(acc)
        return len(self.gl.accessors) - 1

    # -- materials --------------------------------------------------------------------
    def texture(self, image: np.ndarray, mag: int = LINEAR, min_: int = LINEAR_MIPMAP_LINEAR,
                wrap: int = REPEAT) -> int:
        """A PNG texture from an (h, w, 3|4) uint8 image (row 0 is the top: uv v=0)."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
        self.gl.images.append(g.Image(bufferView=self._view(buf.getvalue()), mimeType="image/png"))
        self.gl.samplers.append(g.Sampler(magFilter=mag, minFilter=min_, wrapS=wrap, wrapT=wrap))
        self.gl.textures.append(g.Texture(source=len(self.gl.images) - 1, sampler=len(self.gl.samplers) - 1))
        return len(self.gl.textures) - 1

    def material(self, name: str, base_color=(1, 1, 1, 1), metallic: float = 0.0, roughness: float = 0.8,
                 base_texture: int | None = None, mr_texture: int | None = None, normal_texture: int | None = None,
                 occlusion_texture: int | None = None, emissive_texture: int | None = None,
                 emissive=(0.0, 0.0, 0.0), emissive_strength: float | None = None, alpha_mode: str = "OPAQUE",
                 alpha_cutoff: float | None = None, double_sided: bool = False, uv_transform: dict | None = None) -> int:
        pbr = g.PbrMetallicRoughness(baseColorFactor=list(map(float, base_color)), metallicFactor=metallic,
                                     roughnessFactor=roughness)
        if base_texture is not None:
            pbr.baseColorTexture = g.TextureInfo(index=base_texture)
            if uv_transform:
                pbr.baseColorTexture.extensions = {"KHR_texture_transform": uv_transform}
                self.used_ext.add("KHR_texture_transform")
        if mr_texture is not None:
            pbr.metallicRoughnessTexture = g.TextureInfo(index=mr_texture)
        m = g.Material(name=name, pbrMetallicRoughness=pbr, alphaMode=alpha_mode, doubleSided=double_sided,
                       emissiveFactor=list(map(float, emissive)))
        if alpha_mode == "MASK":
            m.alphaCutoff = 0.5 if alpha_cutoff is None else alpha_cutoff
        if normal_texture is not None:
            m.normalTexture = g.NormalMaterialTexture(index=normal_texture)
        if occlusion_texture is not None:
            m.occlusionTexture = g.OcclusionTextureInfo(index=occlusion_texture)
        if emissive_texture is not None:
            m.emissiveTexture = g.TextureInfo(index=emissive_texture)
        if emissive_strength is not None:
            m.extensions = {"KHR_materials_emissive_strength": {"emissiveStrength": float(emissive_strength)}}
            self.used_ext.add("KHR_materials_emissive_strength")
        self.gl.materials.append(m)
        return len(self.gl.materials) - 1

    # -- geometry ---------------------------------------------------------------------
    def mesh(self, name: str, position, normal, indices, material: int, uv=None, joints=None, weights=None,
             targets: dict[str, tuple[np.ndarray, np.ndarray | None]] | None = None) -> int:
        """One primitive. ``targets``: morph target name -> (position deltas, normal deltas)."""
        attrs = g.Attributes(POSITION=self.accessor(np.asarray(position, np.float32), ARRAY_BUFFER, bounds=True),
                             NORMAL=self.accessor(np.asarray(normal, np.float32), ARRAY_BUFFER))
        if uv is not None:
            attrs.TEXCOORD_0 = self.accessor(np.asarray(uv, np.float32), ARRAY_BUFFER)
        if joints is not None:
            w = np.asarray(weights, np.float32)
            j = np.where(w > 0, np.asarray(joints, np.uint16), 0).astype(np.uint16)  # unused slots name joint 0
            attrs.JOINTS_0 = self.accessor(j, ARRAY_BUFFER)
            attrs.WEIGHTS_0 = self.accessor(w / w.sum(axis=1, keepdims=True), ARRAY_BUFFER)
        idx = np.asarray(indices, np.uint32).ravel()
        prim = g.Primitive(attributes=attrs, indices=self.accessor(idx, ELEMENT_ARRAY_BUFFER), material=material)
        names = []
        if targets:
            prim.targets = []
            for tname, (dp, dn) in targets.items():
                t = {"POSITION": self.accessor(np.asarray(dp, np.float32), ARRAY_BUFFER, bounds=True)}
                if dn is not None:
                    t["NORMAL"] = self.accessor(np.asarray(dn, np.float32), ARRAY_BUFFER)
                prim.targets.append(t)
                names.append(tname)
        mesh = g.Mesh(name=name, primitives=[prim])
        if names:
            mesh.weights = [0.0] * len(names)
            mesh.extras = {"targetNames": names}
        self.gl.meshes.append(mesh)
        return len(self.gl.meshes) - 1

    def node(self, name: str, parent: int | None = None, translation=None, rotation=None, scale=None,
             mesh: int | None = None, skin: int | None = None) -> int:
        n = g.Node(name=name, mesh=mesh, skin=skin)
        if translation is not None:
            n.translation = list(map(float, translation))
        if rotation is not None:
            n.rotation = list(map(float, rotation))
        if scale is not None:
            n.scale = list(map(float, scale))
        self.gl.nodes.append(n)
        i = len(self.gl.nodes) - 1
        if parent is None:
            self.gl.scenes[0].nodes.append(i)
        else:
            self.gl.nodes[parent].children.append(i)
        return i

    def skin(self, name: str, joints: list[int], inverse_bind: np.ndarray, skeleton: int | None = None) -> int:
        ibm = np.ascontiguousarray(np.asarray(inverse_bind, np.float32).transpose(0, 2, 1))  # column-major
        self.gl.skins.append(g.Skin(name=name, joints=list(joints), skeleton=skeleton,
                                    inverseBindMatrices=self.accessor(ibm.reshape(-1, 16), width=16)))
        return len(self.gl.skins) - 1

    def animation(self, name: str, channels: list[tuple[int, str, np.ndarray, np.ndarray, str]]) -> int:
        """Channels: (node, path, times (k,), values (k, w) or (k*3, w) for CUBICSPLINE, interpolation)."""
        anim = g.Animation(name=name, samplers=[], channels=[])
        time_cache: dict[bytes, int] = {}
        for node, path, times, values, interp in channels:
            t = np.asarray(times, np.float32)
            key = t.tobytes()
            if key not in time_cache:
                time_cache[key] = self.accessor(t, bounds=True)
            vals = np.asarray(values, np.float32)
            out = self.accessor(vals.reshape(-1) if path == "weights" else vals,
                                width=1 if path == "weights" else None)
            anim.samplers.append(g.AnimationSampler(input=time_cache[key], output=out, interpolation=interp))
            anim.channels.append(g.AnimationChannel(sampler=len(anim.samplers) - 1,
                                                    target=g.AnimationChannelTarget(node=node, path=path)))
        self.gl.animations.append(anim)
        return len(self.gl.animations) - 1

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        while len(self.blob) % 4:
            self.blob.append(0)
        self.gl.buffers[0].byteLength = len(self.blob)
        if self.used_ext:
            self.gl.extensionsUsed = sorted(self.used_ext)
        self.gl.set_binary_blob(bytes(self.blob))
        self.gl.save_binary(str(path))
        return path
