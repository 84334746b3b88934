"""A glTF model on the GPU: one vertex array per primitive (for the lit pass and the shadow
pass), textures with their samplers (sRGB ones decoded by the sampler), a float texture of
morph deltas per primitive. ``draw`` issues one draw call per primitive; the model's pose
(joint matrices, morph weights, the character's place) is written into uniform buffers once a
frame (``upload_pose``), so each draw binds buffers rather than writing uniforms.
"""

from __future__ import annotations

import time

import numpy as np

from xrstory.render.gltf import GltfModel, MaterialData
from xrstory.render.puppet import MAX_TARGETS

GL_SRGB8_ALPHA8, GL_RGBA8 = 0x8C43, 0x8058
MORPH_WIDTH = 4096
ALPHA_MODES = {"OPAQUE": 0, "MASK": 1, "BLEND": 2}
SLOTS = (("base", 1, "u_tex_base"), ("mr", 2, "u_tex_mr"), ("normal", 4, "u_tex_normal"),
         ("occlusion", 8, "u_tex_occlusion"), ("emissive", 16, "u_tex_emissive"))
TEX_UNIT0 = 1  # units 1..5 material textures, 6 shadow map, 7 morph deltas (0 is the subtitles' atlas)
MORPH_UNIT = 7
MATERIAL_BINDING, JOINTS_BINDING, INSTANCE_BINDING = 1, 2, 3  # uniform block bindings (0 is Lights)


def material_block(m: MaterialData) -> bytes:
    """The ``Material`` uniform block of shaders/model.frag (std140: four vec4-sized rows)."""
    f = np.zeros(16, np.float32)
    f[0:4] = m.base_color
    f[4:7], f[7] = m.emissive, m.metallic
    f[8:12] = (m.roughness, m.normal_scale, m.occlusion_strength, m.alpha_cutoff)
    mask = sum(bit for slot, bit, _ in SLOTS if slot in m.textures)
    f.view(np.int32)[12:14] = (ALPHA_MODES.get(m.alpha_mode, 0), mask)
    return f.tobytes()


class _Prim:
    __slots__ = ("vaos", "buffers", "material", "material_index", "morph_tex", "morph_count", "vertices", "node", "mesh",
                 "skin", "centre", "blend", "index")


class ModelGpu:
    def __init__(self, ctx, program, depth_program, model: GltfModel, shared_state: dict | None = None):
        """``shared_state``: one dict for all models drawn with these two programs (it remembers
        uniform values the programs already hold, so unchanged ones are not written again)."""
        self.ctx, self.program, self.depth_program, self.model = ctx, program, depth_program, model
        self.shared_state = shared_state if shared_state is not None else {}
        self.textures = [self._texture(t) for t in model.textures]
        self.materials = [*model.materials, MaterialData(name="default", metallic=0.0)]
        self._material_ubos = [ctx.buffer(material_block(m)) for m in self.materials]
        self._uv_bytes = [np.ascontiguousarray(m.uv_transform.T, np.float32).tobytes() for m in self.materials]
        self._material_textures = [[(TEX_UNIT0 + k, self.textures[m.textures[slot]])
                                    for k, (slot, _, name) in enumerate(SLOTS) if slot in m.textures]
                                   for m in self.materials]
        for prog in (program, depth_program):
            prog["Material"].binding = MATERIAL_BINDING
        for prog in (program, depth_program):
            prog["Joints"].binding = JOINTS_BINDING
            prog["Instance"].binding = INSTANCE_BINDING
        self._joint_buffers: dict[tuple[int, int], object] = {}
        self._instance_buffers: dict[tuple[int, int], object] = {}  # (puppet, primitive) -> Instance block
        self._instance = np.zeros(16 + MAX_TARGETS, np.float32)  # model matrix (column-major), weights
        self.prims: list[_Prim] = []
        for node_index in model.order:
            node = model.nodes[node_index]
            if node.mesh is None:
                continue
            for p in model.meshes[node.mesh].primitives:
                self.prims.append(self._prim(p, node_index, node))
                self.prims[-1].index = len(self.prims) - 1
        self._u = {n: program[n] for n in program if hasattr(program[n], "write") or hasattr(program[n], "value")}
        self._du = {n: depth_program[n] for n in depth_program if hasattr(depth_program[n], "write")
                    or hasattr(depth_program[n], "value")}

    def _texture(self, t):
        import moderngl

        h, w = t.image.shape[:2]
        tex = self.ctx.texture((w, h), 4, np.ascontiguousarray(t.image).tobytes(),
                               internal_format=GL_SRGB8_ALPHA8 if t.srgb else GL_RGBA8)
        mipmap = t.sampler.min in (9984, 9985, 9986, 9987)
        if mipmap:
            tex.build_mipmaps()
        filt = {9728: moderngl.NEAREST, 9729: moderngl.LINEAR, 9984: moderngl.NEAREST_MIPMAP_NEAREST,
                9985: moderngl.LINEAR_MIPMAP_NEAREST, 9986: moderngl.NEAREST_MIPMAP_LINEAR,
                9987: moderngl.LINEAR_MIPMAP_LINEAR}
        tex.filter = (filt.get(t.sampler.min, moderngl.LINEAR), filt.get(t.sampler.mag, moderngl.LINEAR))
        tex.repeat_x = t.sampler.wrap_s != 33071
        tex.repeat_y = t.sampler.wrap_t != 33071
        if 33648 in (t.sampler.wrap_s, t.sampler.wrap_t):  # MIRRORED_REPEAT: moderngl has no switch for it
            tex.repeat_x = tex.repeat_y = True
        return tex

    def _prim(self, p, node_index: int, node) -> _Prim:
        ctx = self.ctx
        vbo = ctx.buffer(np.ascontiguousarray(p.vertices, np.float32).tobytes())
        ibo = ctx.buffer(p.indices.astype(np.uint32).tobytes())
        fmt = [(vbo, "3f 3f 2f 4f 4f", "in_position", "in_normal", "in_uv", "in_joints", "in_weights")]
        pr = _Prim()
        pr.vaos = {}
        for key, prog in (("lit", self.program), ("depth", self.depth_program)):
            names = [n for n in fmt[0][2:] if n in prog]
            layout = " ".join(f if n in prog else f"{f.rstrip('f')}x4"
                              for f, n in zip(fmt[0][1].split(), fmt[0][2:], strict=True))
            pr.vaos[key] = ctx.vertex_array(prog, [(vbo, layout, *names)], ibo, index_element_size=4)
        pr.buffers = [vbo, ibo]
        pr.material = self.materials[p.material]
        pr.material_index = p.material % len(self.materials)  # -1: the default material, last
        pr.morph_tex, pr.morph_count, pr.vertices = None, 0, len(p.vertices)
        if p.morph is not None:
            count = min(len(p.morph), 16)
            flat = p.morph[:count].reshape(-1, 4)
            rows = -(-len(flat) // MORPH_WIDTH)
            data = np.zeros((rows * MORPH_WIDTH, 4), np.float32)
            data[:len(flat)] = flat
            pr.morph_tex = ctx.texture((MORPH_WIDTH, rows), 4, data.tobytes(), dtype="f4")
            pr.morph_tex.filter = (ctx.NEAREST, ctx.NEAREST)
            pr.morph_count = count
        pr.node, pr.mesh, pr.skin = node_index, node.mesh, node.skin
        pr.centre = (p.bounds_min + p.bounds_max) / 2
        pr.blend = pr.material.alpha_mode == "BLEND"
        return pr

    # -- drawing ----------------------------------------------------------------------
    def upload_pose(self, puppet, root: np.ndarray) -> None:
        """The puppet's joint matrices, and per primitive its model matrix (``root``: (4, 4)
        model space -> world) and morph weights, into uniform buffers: once per frame for every
        pass, so a draw binds a buffer instead of writing uniforms."""
        for skin, data in puppet.joint_bytes.items():
            key = (id(puppet), skin)
            buf = self._joint_buffers.get(key)
            if buf is None:
                buf = self._joint_buffers[key] = self.ctx.buffer(reserve=len(data))
            buf.write(data)
        block = self._instance
        for i, p in enumerate(self.prims):
            model = root if p.skin is not None else root @ puppet.world[p.node]
            block[:16] = model.T.ravel()
            block[16:] = puppet.weights_padded[p.node] if p.morph_tex is not None else 0.0
            key = (id(puppet), i)
            buf = self._instance_buffers.get(key)
            if buf is None:
                buf = self._instance_buffers[key] = self.ctx.buffer(reserve=block.nbytes)
            buf.write(block.tobytes())

    def blend_prims(self) -> list[_Prim]:
        return [p for p in self.prims if p.blend]

    def draw(self, puppet, opacity: float = 1.0, which: str = "opaque",
             only: list | None = None, clock=time.perf_counter) -> tuple[int, float]:
        """Draw primitives in the pose ``upload_pose`` last gave: ``which`` "opaque" (OPAQUE and
        MASK), "blend", or "depth" (shadow pass, every non-blended primitive). Returns the number
        of draw calls and the seconds spent inside them (the renderer's GL share)."""
        import moderngl

        ctx = self.ctx
        depth = which == "depth"
        u = self._du if depth else self._u
        last = self.shared_state.setdefault(which == "depth", {})  # values the program holds already
        calls, gl_s = 0, 0.0
        prims = only if only is not None else self.prims
        for p in prims:
            if p.blend != (which == "blend") and not (depth and not p.blend):
                continue
            if depth and p.blend:
                continue
            m = p.material
            skinned = int(p.skin is not None)
            if last.get("u_skinned") != skinned:
                u["u_skinned"].value = last["u_skinned"] = skinned
            if skinned:
                self._joint_buffers[(id(puppet), p.skin)].bind_to_uniform_block(JOINTS_BINDING)
            self._instance_buffers[(id(puppet), p.index)].bind_to_uniform_block(INSTANCE_BINDING)
            morph = (p.morph_count, p.vertices) if p.morph_tex is not None else (0, 0)
            if last.get("morph") != morph:
                u["u_morph_count"].value, u["u_morph_vertices"].value = morph
                last["morph"] = morph
            if p.morph_tex is not None:
                units = self.shared_state.setdefault("units", {})
                if units.get(MORPH_UNIT) is not p.morph_tex:
                    p.morph_tex.use(MORPH_UNIT)
                    units[MORPH_UNIT] = p.morph_tex
            if not depth:
                self._material(u, p.material_index, opacity)
            else:  # MASK cut-outs cut the shadow too: the depth shader tests alpha with the material
                mask = int(m.alpha_mode == "MASK")
                if last.get("u_alpha_test") != mask:
                    u["u_alpha_test"].value = last["u_alpha_test"] = mask
                # bound even when unread: llvmpipe evaluates both sides of the shader's branch
                self._material_ubos[p.material_index].bind_to_uniform_block(MATERIAL_BINDING)
                if mask:
                    u["u_uv_transform"].write(self._uv_bytes[p.material_index])
                    units = self.shared_state.setdefault("units", {})
                    for unit, tex in self._material_textures[p.material_index][:1]:
                        if unit == TEX_UNIT0:  # the base colour texture, when the material has one
                            tex.use(unit)
                            units[unit] = tex
            cull = not (m.double_sided or depth)  # the shadow pass draws both faces of everything
            if last.get("cull", False) != cull:
                (ctx.enable if cull else ctx.disable)(moderngl.CULL_FACE)
                last["cull"] = cull
            g = clock()
            p.vaos["depth" if depth else "lit"].render()
            gl_s += clock() - g
            calls += 1
        return calls, gl_s

    def end_pass(self) -> None:
        """After the model draws of a pass: back to no culling, as the other passes expect."""
        import moderngl

        for last in self.shared_state.values():
            if last.get("cull"):
                self.ctx.disable(moderngl.CULL_FACE)
                last["cull"] = False

    def _material(self, u, index: int, opacity: float) -> None:
        self._material_ubos[index].bind_to_uniform_block(MATERIAL_BINDING)
        last = self.shared_state[False]
        if last.get("u_opacity") != opacity:
            u["u_opacity"].value = last["u_opacity"] = opacity
        uv = self._uv_bytes[index]
        if last.get("uv") != uv:  # (most materials share the identity transform)
            u["u_uv_transform"].write(uv)
            last["uv"] = uv
        units = self.shared_state.setdefault("units", {})  # texture unit -> what is bound there now
        for unit, tex in self._material_textures[index]:
            if units.get(unit) is not tex:
                tex.use(unit)
                units[unit] = tex

    def release(self) -> None:
        for p in self.prims:
            for v in p.vaos.values():
                v.release()
            for b in p.buffers:
                b.release()
            if p.morph_tex is not None:
                p.morph_tex.release()
        for t in self.textures:
            t.release()
        for b in (*self._material_ubos, *self._joint_buffers.values(), *self._instance_buffers.values()):
            b.release()
        self._material_ubos, self._joint_buffers, self._instance_buffers = [], {}, {}
        self.prims, self.textures = [], []
