"""``SceneRenderer``: draws a story scene with ModernGL into framebuffers it is given.

It takes a ``moderngl.Context`` it did not create (a headless EGL context, or the OpenXR
backend's context wrapping swapchain textures) and draws ``views`` into ``targets``: one
framebuffer per view, or one framebuffer with a viewport per view. Per frame::

    renderer.update(story.state, frame.dt, speaking={"maren": 0.6}, subtitles={"maren": "Aye."})
    renderer.draw(frame.views, frame.targets, ar_mode="opaque")

At most once per frame, when a caster or the light moved: the shadow map of the one
shadow-casting light (``shadow.py``). Passes per view, front to back where it is known so that
llvmpipe's early depth test skips hidden pixels: glTF characters (``model_gpu.py``: one draw per
primitive, skinned and morphed on the GPU), opaque instanced meshes (one draw per mesh kind,
small props before walls and floors), sky, then with blending on: translucent meshes and
blended glTF primitives (sorted far to near), light glows, subtitles. Everything writes premultiplied alpha, so ``ar_mode``
"alpha_blend" (transparent clear, no sky) and "additive" (black clear, no sky) are what the
OpenXR blend modes composite over passthrough. ``last_stats`` splits each frame's CPU time.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from xrstory.render import light_block
from xrstory.render.eye_matrices import inverse_projection, projection, rigid_view_matrix
from xrstory.render.light_block import MAX_DIR, MAX_POINT
from xrstory.render.mesh_gpu import MeshGpu, RenderStats
from xrstory.render.model_gpu import ModelGpu
from xrstory.render.scene_model import SceneModel
from xrstory.render.shaders import load_program
from xrstory.render.shadow import ShadowMap, light_matrix, shadow_size_for
from xrstory.render.subtitles import SubtitleLayer, billboard_axes
from xrstory.render.view import View
from xrstory.story.scene import Scene
from xrstory.story.state import StoryState

AR_MODES = ("opaque", "alpha_blend", "additive")
SHADOW_UNIT = 6  # texture unit (0 subtitles, 1-5 materials, 7 morph deltas)


class SceneRenderer:
    def __init__(self, ctx, scene: Scene, state: StoryState | None = None,
                 shaders_dir: str | Path | None = None, assets_dir: str | Path | None = None,
                 srgb_encode: bool = True, exposure: float = 0.6, cloudiness: float | None = None,
                 shadow_size: int | None = None, shadow_taps: int = 4):
        self.ctx = ctx
        self.scene = scene
        self.model = SceneModel(scene, state)
        self.srgb_encode = srgb_encode  # False for sRGB swapchain formats that encode themselves
        self.exposure = exposure
        self.cloudiness = cloudiness
        self.last_stats = RenderStats()
        # what RenderStats measures with: wall time by default; the bench also reads the thread's CPU
        # time (time.thread_time), which a loaded machine's waiting does not inflate
        self.clock = time.perf_counter
        self._head = np.asarray(scene.viewpoint().position, np.float32)
        if shadow_taps not in (1, 4):
            raise ValueError(f"shadow_taps {shadow_taps}: must be 4 (a 3x3-texel filter) or 1 (2x2, about a tenth "
                             "less llvmpipe time at small eyes)")
        self.shadow_taps = shadow_taps
        taps = {"SHADOW_TAPS": shadow_taps}
        self._programs = [load_program(ctx, n, shaders_dir, defines=taps if n in ("scene", "model") else None)
                          for n in ("scene", "sky", "halo", "text", "model")]
        self.p_scene, self.p_sky, self.p_halo, self.p_text, self.p_model = self._programs
        self.p_scene_depth = load_program(ctx, "scene", shaders_dir, fragment="depth")
        self.p_model_depth = load_program(ctx, "model", shaders_dir, fragment="model_depth")
        self._programs += [self.p_scene_depth, self.p_model_depth]
        self._light_ubo = ctx.buffer(reserve=light_block.SIZE_FLOATS * 4)
        for prog in (self.p_scene, self.p_model):
            prog["u_shadow_map"].value = SHADOW_UNIT
            prog["Lights"].binding = light_block.BINDING
        for i, name in enumerate(("u_tex_base", "u_tex_mr", "u_tex_normal", "u_tex_occlusion", "u_tex_emissive")):
            for prog in (self.p_model, self.p_model_depth):
                if name in prog:
                    prog[name].value = 1 + i
        for prog in (self.p_model, self.p_model_depth):
            prog["u_morph"].value = 7
        self.shadow_size = shadow_size
        self.shadow: ShadowMap | None = None  # made at the first draw, sized for its targets
        self._shadow_on = False
        self._shadow_key: tuple | None = None  # what the shadow frustum was last computed from
        shared: dict = {}
        self._models = {key: ModelGpu(ctx, self.p_model, self.p_model_depth, m, shared)
                        for key, m in self.model.models.items()}
        self._puppets = [c for c in self.model.characters if c.puppet is not None]
        # mesh kinds drawn small to large (figures' parts first): see SceneModel.footprint
        kinds = sorted(self.model.meshes, key=lambda k: self.model.footprint.get(k, 0.0))
        self._meshes = {kind: MeshGpu(ctx, self.p_scene, self.model.meshes[kind], len(self.model.rows[kind]))
                        for kind in kinds}
        self._depth_vaos = {kind: ctx.vertex_array(self.p_scene_depth, [
            (m.vbo, "3f 24x", "in_position"), (m.inst[0], "4f 4f 4f 4f 48x/i", "i_model0", "i_model1", "i_model2",
                                                "i_model3")], m.ibo, index_element_size=4)
            for kind, m in self._meshes.items()}
        self._sky_vao = ctx.vertex_array(self.p_sky, [])
        corners = np.array([-1, -1, 1, -1, 1, 1, -1, -1, 1, 1, -1, 1], np.float32)
        self._halo_quad = ctx.buffer(corners.tobytes())
        self._halo_inst = ctx.buffer(reserve=64 * 7 * 4)
        self._halo_count = 0
        self._halo_vao = ctx.vertex_array(self.p_halo, [(self._halo_quad, "2f", "in_corner"),
                                                        (self._halo_inst, "4f 3f/i", "i_center", "i_color")])
        atlas = None
        if assets_dir is not None:
            from xrstory.render.font import build_atlas
            atlas = build_atlas(Path(assets_dir) / "fonts" / "DejaVuSans.ttf")
        self.subtitles = SubtitleLayer(ctx, self.p_text, atlas)
        self._us = {(id(p), n): p[n] for p in self._programs for n in p if hasattr(p[n], "write")}
        self._translucent_kinds: set[str] = set()
        self._mode_set: str | None = None
        self._upload(self._head)

    # -- per frame --------------------------------------------------------------------
    def update(self, state: StoryState | None, dt: float, speaking: dict[str, float] | None = None,
               subtitles: dict[str, str] | None = None, player_position=None, snap: bool = False,
               visemes: dict[str, str] | None = None) -> None:
        """Animate towards ``state``: prop-state blends, mood, light levels, characters facing the
        player while they speak (``speaking``: id -> voice envelope 0..1; ``visemes``: id -> the
        viseme class now spoken, for glTF faces), glTF clips and faces, subtitle texts."""
        t0 = self.clock()
        if player_position is not None:
            self._head = np.asarray(player_position, np.float32)
        self.model.update(state, dt, speaking, self._head, snap, visemes)
        self.subtitles.set_texts(subtitles or {})
        self.last_stats.update_ms = (self.clock() - t0) * 1e3

    def gesture(self, character_id: str, emotion_or_clip: str) -> bool:
        """A reply's emotion (or a named gesture) plays the clip the scene names for it,
        cross-faded; False when the character has no such clip (primitive figures have none)."""
        return self.model.gesture(character_id, emotion_or_clip)

    def _u_of(self, prog, name):
        return self._us[(id(prog), name)]

    def _upload(self, eye) -> None:
        """Instance rows and glows to the GPU, only what changed (translucent rows are re-sorted
        for the eye every frame)."""
        model = self.model
        kinds = set(model.dirty_kinds) | self._translucent_kinds
        if model.dirty or self._translucent_kinds:
            for kind, (opaque, clear) in model.batches(eye, kinds).items():
                self._meshes[kind].upload(opaque, clear)
                if len(clear):
                    self._translucent_kinds.add(kind)
                else:
                    self._translucent_kinds.discard(kind)
            if model.geometry_dirty:
                if self.shadow is not None:  # (a new map starts stale)
                    self.shadow.stale = True  # a prop or figure moved: its shadow too
                model.geometry_dirty = False
            model.dirty_kinds.clear()
            model.dirty = False
        if model.lights_dirty:
            halos = model.halos()[:64]
            self._halo_count = len(halos)
            if len(halos):
                self._halo_inst.write(halos.tobytes())

    def _set_frame_uniforms(self, ar_mode: str) -> None:
        u = self._u_of
        sc, sky = self.p_scene, self.p_sky
        u(sky, "u_time").value = float(self.model.time)
        if ar_mode != self._mode_set:
            u(sc, "u_blend_mode").value = AR_MODES.index(ar_mode)
            self.p_model["u_blend_mode"].value = AR_MODES.index(ar_mode)
            self._mode_set = ar_mode
        if not self.model.lights_dirty:
            return  # lights, mood and exposure are as last frame: their uniforms still hold
        self.model.lights_dirty = False
        lights = self.model.lights()
        mood = self.model.mood.current
        shadow = self._set_shadow(lights)
        self._light_ubo.write(light_block.pack(lights, mood, self.exposure, self.srgb_encode, shadow,
                                               self.shadow.matrix, 1.0 / self.shadow.size))
        u(sky, "u_sky_top").write(mood.sky_top.astype(np.float32).tobytes())
        u(sky, "u_sky_horizon").write(mood.sky_horizon.astype(np.float32).tobytes())
        u(sky, "u_fog_color").write(mood.fog_color.astype(np.float32).tobytes())
        cloud = self.cloudiness if self.cloudiness is not None else float(np.clip(mood.fog_density * 15, 0, 1))
        u(sky, "u_cloudiness").value = cloud
        u(sky, "u_exposure").value = self.exposure
        u(sky, "u_srgb_encode").value = int(self.srgb_encode)
        u(self.p_halo, "u_srgb_encode").value = int(self.srgb_encode)

    def _set_shadow(self, lights) -> tuple[int, int]:
        """Choose the shadow frustum for this frame's shadow light; (kind, index) for the shaders."""
        sh = lights.shadow
        self._shadow_on = sh is not None and sh[1] < (MAX_DIR if sh[0] == "directional" else MAX_POINT)
        if not self._shadow_on:
            return 0, 0
        kind, index, where, target = sh
        key = (kind, where.tobytes(), None if target is None else target.tobytes())
        if key == self._shadow_key:  # the light and its target as last frame (characters stand still)
            return (1 if kind == "directional" else 2), index
        self._shadow_key = key
        feet = [c.position for c in self.model.characters]
        # the characters are what shadows must show; a scene without them: what the viewpoint looks at
        centre = (np.mean(feet, axis=0) + np.array([0, 0.8, 0], np.float32) if feet
                  else np.asarray(self.scene.viewpoint().look_at, np.float32))
        if target is not None:
            centre = target
        radius = max(3.0, min(8.0, 1.8 + max((float(np.linalg.norm(f - centre)) for f in feet), default=0.0)))
        matrix = light_matrix(kind, where, centre, radius)
        if not np.array_equal(matrix, self.shadow.matrix):
            self.shadow.matrix = matrix
            self.shadow.stale = True
        return (1 if kind == "directional" else 2), index

    def draw(self, views: list[View], targets: list, clear: tuple | None = None, ar_mode: str = "opaque",
             viewports: list[tuple[int, int, int, int]] | None = None) -> None:
        """Draw ``views`` into ``targets`` (moderngl framebuffers with depth).

        ``targets``: one per view, or a single framebuffer shared by all views with
        ``viewports`` (x, y, w, h) per view (default: side by side). ``clear``: colour to clear
        to; by default the sky covers the background in "opaque" mode and AR modes clear to
        transparent black. The eye position used for facing and sorting is the views' mean.
        """
        import moderngl

        if ar_mode not in AR_MODES:
            raise ValueError(f"ar_mode '{ar_mode}' is not one of {', '.join(AR_MODES)}")
        if len(targets) not in (1, len(views)):
            raise ValueError(f"draw got {len(views)} views and {len(targets)} targets: give one target per "
                             "view, or one target with a viewport per view")
        t0 = self.clock()
        gl_s = 0.0
        calls = 0
        ctx = self.ctx
        self._head = np.mean([v.pose.position for v in views], axis=0).astype(np.float32)
        if self.shadow is None:
            self.shadow = ShadowMap(ctx, self.shadow_size or shadow_size_for(max(targets[0].size)))
            self.model.lights_dirty = True  # the light block carries the map's texel size
        self._upload(self._head)
        self._set_frame_uniforms(ar_mode)
        self._light_ubo.bind_to_uniform_block(light_block.BINDING)
        anchors = {cid: self.model.head_anchor(cid) for cid in self.subtitles.captions}
        right, up = billboard_axes(self._head + np.array([0, 0, -1], np.float32), self._head)
        if viewports is None and len(targets) == 1 and len(views) > 1:
            w, h = targets[0].size
            viewports = [(i * w // len(views), 0, w // len(views), h) for i in range(len(views))]
        if clear is None and ar_mode != "opaque":
            clear = (0.0, 0.0, 0.0, 0.0)
        u = self._u_of
        for c in self._puppets:
            self._models[c.model_kind].upload_pose(c.puppet, c.root)
        if self._shadow_on:
            n, g = self._draw_shadow_map()
            calls, gl_s = calls + n, gl_s + g
        blend_items = self._sorted_blend_prims(self._head)
        ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA  # premultiplied (the halos' restores it)
        for i, view in enumerate(views):
            fbo = targets[i] if len(targets) > 1 else targets[0]
            vp = viewports[i] if viewports else (0, 0, *fbo.size)
            view_proj = projection(view.fov) @ rigid_view_matrix(view.pose)  # (4, 4) float32, world -> clip
            vp_bytes = view_proj.T.tobytes()  # column-major for GLSL
            eye = np.asarray(view.pose.position, np.float32).tobytes()
            g = self.clock()
            fbo.use()
            ctx.viewport = vp
            ctx.scissor = vp if viewports else None
            fbo.depth_mask = True
            if clear is not None:
                fbo.clear(*clear, depth=1.0, viewport=vp)
            else:
                fbo.clear(depth=1.0, viewport=vp)
            # opaque passes and the sky write alpha 1: blending them would only add a framebuffer read
            # per pixel (a tenth of llvmpipe's time for a wall); it is on from the translucent pass on
            ctx.enable_only(moderngl.DEPTH_TEST)
            ctx.depth_func = "<="  # (the sky is drawn at the far plane, depth 1, into what is left)
            gl_s += self.clock() - g
            # characters first: they stand in front of most of the room (early depth test)
            if self._puppets:
                u(self.p_model, "u_view_proj").write(vp_bytes)
                u(self.p_model, "u_eye").write(eye)
                for c in self._puppets:
                    n, g = self._models[c.model_kind].draw(c.puppet, clock=self.clock)
                    calls, gl_s = calls + n, gl_s + g
                self._models[self._puppets[0].model_kind].end_pass()
            u(self.p_scene, "u_view_proj").write(vp_bytes)
            u(self.p_scene, "u_eye").write(eye)
            g = self.clock()  # the loop is render calls only: timed as one block (a clock read costs too)
            for mesh in self._meshes.values():
                if mesh.counts[0]:
                    mesh.vaos[0].render(instances=mesh.counts[0])
                    calls += 1
            gl_s += self.clock() - g
            if ar_mode == "opaque" and clear is None:
                inv = view.pose.matrix() @ inverse_projection(view.fov)  # clip -> world
                u(self.p_sky, "u_inv_view_proj").write(inv.T.tobytes())
                u(self.p_sky, "u_eye").write(eye)
                g = self.clock()
                self._sky_vao.render(moderngl.TRIANGLES, vertices=3)
                gl_s += self.clock() - g
                calls += 1
            g = self.clock()
            fbo.depth_mask = False  # translucent things and glows do not hide what is behind them
            ctx.enable(moderngl.BLEND)
            for mesh in self._meshes.values():
                if mesh.counts[1]:
                    mesh.vaos[1].render(instances=mesh.counts[1])
                    calls += 1
            gl_s += self.clock() - g
            for c, prim in blend_items:
                n, g = self._models[c.model_kind].draw(c.puppet, which="blend", only=[prim],
                                                         clock=self.clock)
                calls, gl_s = calls + n, gl_s + g
            if blend_items:
                self._models[blend_items[0][0].model_kind].end_pass()
            if self._halo_count:
                u(self.p_halo, "u_view_proj").write(vp_bytes)
                u(self.p_halo, "u_right").write(right.tobytes())
                u(self.p_halo, "u_up").write(up.tobytes())
                g = self.clock()
                ctx.blend_func = moderngl.ONE, moderngl.ONE
                self._halo_vao.render(moderngl.TRIANGLES, vertices=6, instances=self._halo_count)
                ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
                gl_s += self.clock() - g
                calls += 1
            if self.subtitles.captions:
                g = self.clock()
                ctx.disable(moderngl.DEPTH_TEST)  # subtitles stay readable in front of the scene
                gl_s += self.clock() - g
                n, g = self.subtitles.draw(view_proj, anchors, self._head, self.srgb_encode, clock=self.clock)
                calls, gl_s = calls + n, gl_s + g
            fbo.depth_mask = True
        ctx.scissor = None
        self.last_stats.draw_ms = (self.clock() - t0) * 1e3
        self.last_stats.gl_call_ms = gl_s * 1e3
        self.last_stats.draw_calls = calls

    def _draw_shadow_map(self) -> tuple[int, float]:
        """Depth from the shadow light, once per frame for all views, and only when a caster or
        the light moved (glTF characters move every frame). Returns draw calls and the seconds
        inside GL calls."""
        sm = self.shadow
        if not (sm.stale or self._puppets):
            return 0, 0.0
        calls, gl_s = 0, 0.0
        light_vp = sm.matrix.T.tobytes()
        g = self.clock()
        sm.begin()
        gl_s += self.clock() - g
        self.p_scene_depth["u_view_proj"].write(light_vp)
        g = self.clock()
        for kind, mesh in self._meshes.items():
            if mesh.counts[0]:
                self._depth_vaos[kind].render(instances=mesh.counts[0])
                calls += 1
        gl_s += self.clock() - g
        if self._puppets:
            self.p_model_depth["u_view_proj"].write(light_vp)
            for c in self._puppets:
                n, g = self._models[c.model_kind].draw(c.puppet, which="depth", clock=self.clock)
                calls, gl_s = calls + n, gl_s + g
        g = self.clock()
        sm.end(SHADOW_UNIT)
        return calls, gl_s + self.clock() - g

    def _sorted_blend_prims(self, eye) -> list:
        """(character, primitive) of every BLEND primitive, far to near from ``eye``."""
        items = []
        for c in self._puppets:
            for prim in self._models[c.model_kind].blend_prims():
                w = c.root @ (c.puppet.world[prim.node] if prim.skin is None else np.eye(4, dtype=np.float32))
                centre = w[:3, :3] @ prim.centre + w[:3, 3]
                items.append((float(np.sum((centre - eye) ** 2)), c, prim))
        items.sort(key=lambda t: -t[0])
        return [(c, p) for _, c, p in items]

    # -- queries ----------------------------------------------------------------------
    def pick(self, origin, direction, interactive_only: bool = False) -> str | None:
        """Prop or character id the ray (world, metres) hits first, or None."""
        return self.model.pick(origin, direction, interactive_only)

    def anchor(self, thing_id: str) -> np.ndarray:
        """World position of a prop's centre or a character's face (for look-at), metres."""
        return self.model.anchor(thing_id)

    def release(self) -> None:
        self.subtitles.release()
        for mesh in self._meshes.values():
            mesh.release()
        for vao in self._depth_vaos.values():
            vao.release()
        for m in self._models.values():
            m.release()
        if self.shadow is not None:
            self.shadow.release()
        self._light_ubo.release()
        self._models, self._depth_vaos = {}, {}
        for obj in (self._sky_vao, self._halo_vao, self._halo_quad, self._halo_inst, *self._programs):
            obj.release()
        self._meshes = {}

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
