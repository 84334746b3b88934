"""The scene as the renderer sees it this frame, on the CPU: instance rows per mesh, lights,
glows, and bounding volumes for picking. No GL here, so it is testable and benchmarkable alone.

An instance row is 28 float32: model matrix (16, column-major), base colour rgb + alpha,
emissive rgb + roughness, metallic + 3 spare. Rows are allocated once per object; ``update``
rewrites only what moved (animating props, speaking or turning characters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xrstory.render import figure
from xrstory.render.animation import MoodAnimator, PropAnimator
from xrstory.render.gltf import GltfModel, load_model
from xrstory.render.mesh import PRIMITIVES, MeshData, MeshError, load_gltf
from xrstory.render.pick import Box, pick_nearest
from xrstory.render.puppet import Puppet
from xrstory.render.transform import rotation_y, scaling, translation, trs, wrap_angle, yaw_towards
from xrstory.story.scene import Scene
from xrstory.story.state import StoryState

ROW = 28
TURN_RATE = 4.0  # 1/s: how fast a figure turns towards the player (exponential ease)
MOUTH_ATTACK, MOUTH_RELEASE = 40.0, 12.0  # 1/s: the mouth opens faster than it closes
DEFAULT_SUN_DIRECTION = (-0.3, -1.0, -0.4)


@dataclass
class LightSet:
    directional: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (direction, colour)
    point: list[tuple[np.ndarray, float, np.ndarray]] = field(default_factory=list)  # (position, range, colour)
    spot: list[tuple[np.ndarray, float, np.ndarray, float, np.ndarray]] = field(default_factory=list)
    # spot: (position, range, direction, cos half-angle, colour)
    shadow: tuple[str, int, np.ndarray, np.ndarray | None] | None = None
    # the one shadow-casting light: ("directional" | "point", index in its list, direction or
    # position, the point its frustum looks at)


@dataclass
class _PropSlot:
    prop_id: str
    kind: str
    row: int
    animator: PropAnimator
    bounds: tuple[np.ndarray, np.ndarray]
    matrix: np.ndarray = field(default_factory=lambda: np.eye(4, dtype=np.float32))


@dataclass
class _CharacterSlot:
    character_id: str
    position: np.ndarray  # (3,) metres, feet
    height: float
    base_yaw: float  # radians
    yaw: float
    parts: list[tuple[str, int]]  # (kind, row) per rig part
    locals: np.ndarray  # (k, 4, 4) part matrices in rig space
    colors: list = field(default_factory=list)  # per part: colour, roughness, metallic, emissive
    rigged: bool = True
    groups: dict | None = None  # kind -> (part indices, row indices), built on first write
    mouth: float = 0.0
    root: np.ndarray = field(default_factory=lambda: np.eye(4, dtype=np.float32))
    puppet: Puppet | None = None  # a glTF character (appearance.model); None: primitive figure or mesh
    model_kind: str = ""  # key of the model in SceneModel.models
    fit: np.ndarray = field(default_factory=lambda: np.eye(4, dtype=np.float32))  # model space -> feet at 0, height


def _row(matrix: np.ndarray, color, alpha: float, emissive, roughness: float, metallic: float) -> np.ndarray:
    r = np.zeros(ROW, np.float32)
    r[0:16] = matrix.T.ravel()
    r[16:19], r[19] = color, alpha
    r[20:23], r[23] = emissive, roughness
    r[24] = metallic
    return r


class SceneModel:
    """Scene + story state -> what to draw. ``meshes`` maps a mesh kind to its ``MeshData``."""

    def __init__(self, scene: Scene, state: StoryState | None = None):
        self.scene = scene
        self.meshes: dict[str, MeshData] = {}
        self._rows: dict[str, list[np.ndarray]] = {}
        self.props: list[_PropSlot] = []
        self.characters: list[_CharacterSlot] = []
        self.models: dict[str, GltfModel] = {}  # glTF characters by resolved path
        self.light_levels = {li.id: li.intensity for li in scene.lights}
        self.mood = MoodAnimator(scene, state.mood if state else scene.scene.mood)
        self.time = 0.0
        self.dirty = True  # some instance rows changed since the renderer last uploaded
        self.dirty_kinds: set[str] = set()  # which mesh kinds' rows changed
        self.lights_dirty = True  # lights or glows changed (props, light levels, mood)
        self.geometry_dirty = True  # an opaque instance moved, appeared or vanished (static shadows)
        prop_states = {p.id: p.initial_state for p in scene.props}
        if state is not None:
            prop_states.update(state.prop_states)
        kinds = [self._mesh_kind(prop.shape, prop.mesh, f"prop '{prop.id}'") for prop in scene.props]
        # rows in drawing order, small in front of large: figures first, then props from the smallest
        # footprint up (a wall or floor is drawn last, so its pixels behind things fail the depth test
        # before llvmpipe shades them)
        for ch in scene.characters:
            self.characters.append(self._make_character(ch))
        self.footprint: dict[str, float] = {}  # kind -> its largest prop's footprint (m^2): draw order
        rows = {}
        for i in sorted(range(len(kinds)), key=lambda i: _footprint(scene.props[i].scale)):
            rows[i] = self._alloc(kinds[i])
            self.footprint[kinds[i]] = max(self.footprint.get(kinds[i], 0.0), _footprint(scene.props[i].scale))
        for i, prop in enumerate(scene.props):
            kind = kinds[i]
            self.props.append(_PropSlot(prop.id, kind, rows[i], PropAnimator(prop, prop_states.get(prop.id)),
                                        (self.meshes[kind].bounds_min, self.meshes[kind].bounds_max)))
        if state is not None:
            self.light_levels.update(state.light_levels)
        self.rows = {k: np.stack(v) for k, v in self._rows.items()}  # kind -> (n, ROW) float32
        for slot in self.props:
            self._write_prop(slot)
        for c in self.characters:
            self._write_character(c)

    # -- construction -----------------------------------------------------------------
    def _mesh_kind(self, shape: str | None, mesh: str | None, who: str) -> str:
        if mesh:
            folder = Path(self.scene.folder or ".")
            path = (folder / mesh).resolve()
            kind = f"mesh:{path}"
            if kind not in self.meshes:
                try:
                    self.meshes[kind] = load_gltf(path)
                except MeshError as exc:
                    raise MeshError(f"{folder / 'scene.toml'}: {who}: mesh = '{mesh}': {exc}") from None
            return kind
        shape = shape or "box"
        if shape not in self.meshes:
            self.meshes[shape] = PRIMITIVES[shape]()
        return shape

    def _alloc(self, kind: str) -> int:
        rows = self._rows.setdefault(kind, [])
        rows.append(np.zeros(ROW, np.float32))
        return len(rows) - 1

    def _make_character(self, ch) -> _CharacterSlot:
        ap = ch.appearance
        yaw = math.radians(ch.facing_deg)
        if ap.model:
            folder = Path(self.scene.folder or ".")
            path = (folder / ap.model).resolve()
            where = f"{folder / 'scene.toml'}: character '{ch.id}'"
            try:
                if str(path) not in self.models:
                    self.models[str(path)] = load_model(path)
                puppet = Puppet(self.models[str(path)], ap, ch.id, where)
            except MeshError as exc:
                msg = str(exc)
                raise MeshError(msg if msg.startswith(where) else f"{where}: appearance.model = '{ap.model}': "
                                f"{msg}") from None
            m = self.models[str(path)]
            k = ap.height / max(float(m.bounds_max[1] - m.bounds_min[1]), 1e-6)
            fit = scaling((k, k, k)) @ translation((0.0, -float(m.bounds_min[1]), 0.0))
            return _CharacterSlot(ch.id, np.asarray(ch.position, np.float32), ap.height, yaw, yaw, [],
                                  np.zeros((0, 4, 4), np.float32), [], rigged=False, puppet=puppet,
                                  model_kind=str(path), fit=fit)
        if ap.mesh:
            kind = self._mesh_kind(None, ap.mesh, f"character '{ch.id}' appearance")
            data = self.meshes[kind]
            # scale the mesh so it stands on y=0 at the character's height, in rig units
            size = max(float(data.bounds_max[1] - data.bounds_min[1]), 1e-6)
            k = figure.RIG_HEIGHT / size
            local = (scaling((k, k, k)) @ translation((0.0, -float(data.bounds_min[1]), 0.0)))[None]
            parts = [(kind, self._alloc(kind))]
            colors = [(ap.body_color, 0.7, 0.0, (0, 0, 0))]
        else:
            rig = figure.build_rig(ch.id, ap.body_color, ap.head_color)
            local = np.stack([p.matrix for p in rig])
            parts = []
            for p in rig:
                self._mesh_kind(p.mesh, None, f"character '{ch.id}'")
                parts.append((p.mesh, self._alloc(p.mesh)))
            colors = [(p.color, p.roughness, p.metallic, p.emissive) for p in rig]
        return _CharacterSlot(ch.id, np.asarray(ch.position, np.float32), ap.height, yaw, yaw, parts, local,
                              colors, rigged=not ap.mesh)

    # -- per frame --------------------------------------------------------------------
    def update(self, state: StoryState | None, dt: float, speaking: dict[str, float] | None = None,
               player_position=None, snap: bool = False, visemes: dict[str, str] | None = None) -> None:
        """Move the look towards ``state`` by ``dt`` seconds (``snap``: jump there). ``speaking``:
        character -> voice envelope 0..1; ``visemes``: character -> viseme class now spoken."""
        self.time += dt
        speaking = speaking or {}
        visemes = visemes or {}
        if state is not None:
            for slot in self.props:
                if slot.animator.set_state(state.prop_states.get(slot.prop_id, slot.animator.state_name), snap):
                    self._write_prop(slot)
            if self.mood.set_mood(state.mood, snap):
                self.lights_dirty = True
            for lid, level in state.light_levels.items():
                cur = self.light_levels.get(lid, level)
                if abs(level - cur) > 1e-4:
                    k = 1.0 if snap else 1.0 - math.exp(-4.0 * dt)
                    self.light_levels[lid] = cur + (level - cur) * k
                    self.lights_dirty = True
                elif cur != level:
                    self.light_levels[lid] = level
                    self.lights_dirty = True
        for slot in self.props:
            if slot.animator.advance(dt):
                self._write_prop(slot)
        if self.mood.advance(dt):
            self.lights_dirty = True
        player = np.asarray(player_position if player_position is not None else
                            self.scene.viewpoint().position, np.float32)
        for c in self.characters:
            env = speaking.get(c.character_id)
            target_yaw = yaw_towards(c.position, player) if env is not None else c.base_yaw
            turn = wrap_angle(target_yaw - c.yaw)
            k = 1.0 if snap else 1.0 - math.exp(-TURN_RATE * dt)
            mouth_target = float(env or 0.0)
            rate = MOUTH_ATTACK if mouth_target > c.mouth else MOUTH_RELEASE
            mouth = mouth_target if snap else c.mouth + (mouth_target - c.mouth) * (1.0 - math.exp(-rate * dt))
            if c.puppet is not None:  # a glTF character moves every frame (idle, face, gestures)
                c.yaw = wrap_angle(c.yaw + turn * k)
                c.mouth = mouth  # the envelope, eased as for primitive figures (tests and glow read it)
                c.puppet.evaluate(dt, float(env or 0.0), visemes.get(c.character_id, ""))
                c.root = translation(c.position) @ rotation_y(c.yaw) @ c.fit
            elif abs(turn) > 1e-4 or abs(mouth - c.mouth) > 1e-4:
                c.yaw = wrap_angle(c.yaw + turn * k)
                c.mouth = mouth
                self._write_character(c)

    def gesture(self, character_id: str, emotion_or_clip: str) -> bool:
        """Play the clip a character's scene entry names for an emotion (or a clip by name)."""
        c = next((c for c in self.characters if c.character_id == character_id), None)
        return bool(c and c.puppet and c.puppet.gesture(emotion_or_clip))

    def _write_prop(self, slot: _PropSlot) -> None:
        look = slot.animator.current
        p = slot.animator.prop
        matrix = trs(look.position, look.rotation_deg, p.scale, p.pivot)
        alpha = look.opacity * look.presence
        old = self.rows[slot.kind][slot.row]
        # shadows change only when a caster moves or appears/disappears, not when its colour fades
        if not np.array_equal(matrix, slot.matrix) or (old[19] >= 0.999) != (alpha >= 0.999):
            self.geometry_dirty = True
        slot.matrix = matrix
        self.rows[slot.kind][slot.row] = _row(slot.matrix, look.color, alpha, look.emissive,
                                              look.roughness, look.metallic)
        self.dirty = self.lights_dirty = True
        self.dirty_kinds.add(slot.kind)

    def _write_character(self, c: _CharacterSlot) -> None:
        if c.puppet is not None:
            c.root = translation(c.position) @ rotation_y(c.yaw) @ c.fit
            return
        s = c.height / figure.RIG_HEIGHT
        c.root = translation(c.position) @ rotation_y(c.yaw) @ scaling((s, s, s))
        self.geometry_dirty = True
        if c.rigged:
            mouth = figure.mouth_part(c.mouth)
            c.locals[figure.MOUTH_INDEX] = mouth.matrix
            c.colors[figure.MOUTH_INDEX] = (*c.colors[figure.MOUTH_INDEX][:3], mouth.emissive)
        if c.groups is None:  # first write: all of each part's row, and the per-kind index groups
            groups: dict[str, tuple[list[int], list[int]]] = {}
            for i, (kind, row) in enumerate(c.parts):
                g = groups.setdefault(kind, ([], []))
                g[0].append(i)
                g[1].append(row)
            c.groups = {k: (np.array(a), np.array(b)) for k, (a, b) in groups.items()}
            for (kind, row), (color, rough, metal, emissive) in zip(c.parts, c.colors, strict=True):
                self.rows[kind][row] = _row(np.eye(4, dtype=np.float32), color, 1.0, emissive, rough, metal)
        elif c.rigged:
            kind, row = c.parts[figure.MOUTH_INDEX]
            self.rows[kind][row, 20:23] = c.colors[figure.MOUTH_INDEX][3]
        # (k, 4, 4) part matrices in world space, written column-major into each kind's rows at once
        world = np.matmul(c.root, c.locals).transpose(0, 2, 1).reshape(-1, 16)
        for kind, (parts, rows) in c.groups.items():
            self.rows[kind][rows, 0:16] = world[parts]
            self.dirty_kinds.add(kind)
        self.dirty = True

    # -- what the renderer asks for ---------------------------------------------------
    def batches(self, eye=None, kinds=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """kind -> (opaque rows, translucent rows sorted far to near from ``eye``), for ``kinds``
        (default all)."""
        out = {}
        for kind in (self.rows if kinds is None else kinds):
            rows = self.rows[kind]
            alpha = rows[:, 19]
            if alpha.min() >= 0.999:  # the common case: nothing translucent or hidden
                out[kind] = (rows, rows[:0])
                continue
            opaque = rows[alpha >= 0.999]
            clear = rows[(alpha > 0.001) & (alpha < 0.999)]
            if len(clear) and eye is not None:
                d = np.linalg.norm(clear[:, 12:15] - np.asarray(eye, np.float32), axis=1)
                clear = clear[np.argsort(-d)]
            out[kind] = (np.ascontiguousarray(opaque), np.ascontiguousarray(clear))
        return out

    def lights(self) -> LightSet:
        mood = self.mood.current
        out = LightSet()
        sun_tint = mood.sun_color * mood.sun_intensity
        best = 1e-3  # the brightest light with shadow = true casts the shadows
        for li in self.scene.lights:
            level = self.light_levels.get(li.id, li.intensity)
            color = np.asarray(li.color, np.float32) * level
            if li.kind == "directional":
                d = np.asarray(li.direction, np.float32)
                d = d / (np.linalg.norm(d) or 1.0)
                out.directional.append((d, color * sun_tint))
                strength = float(np.max(color * sun_tint))
                if li.shadow and strength > best:
                    best, out.shadow = strength, ("directional", len(out.directional) - 1, d, _target(li))
            elif li.kind == "point":
                out.point.append((np.asarray(li.position, np.float32), li.range, color))
                if li.shadow and float(np.max(color)) > best:
                    best, out.shadow = float(np.max(color)), ("point", len(out.point) - 1, out.point[-1][0], _target(li))
            else:
                d = np.asarray(li.direction, np.float32)
                out.spot.append((np.asarray(li.position, np.float32), li.range, d / (np.linalg.norm(d) or 1.0),
                                 math.cos(math.radians(li.cone_deg)), color))
        if not out.directional:
            d = np.asarray(DEFAULT_SUN_DIRECTION, np.float32)
            out.directional.append((d / np.linalg.norm(d), sun_tint.astype(np.float32)))
        for slot in self.props:
            look = slot.animator.current
            strength = look.light_color * look.presence
            if float(strength.max()) > 1e-3:
                pos = slot.matrix[:3, 3] + look.light_offset
                out.point.append((pos, look.light_range, strength))
                st = slot.animator.prop.states.get(slot.animator.target_state or "")
                light = st.light if st is not None else None
                # a prop's light casts shadows while its target state's light says so
                if light is not None and light.shadow and float(strength.max()) > best:
                    best = float(strength.max())
                    out.shadow = ("point", len(out.point) - 1, pos, _target(light))
        return out

    def halos(self) -> np.ndarray:
        """(k, 7) float32 glow billboards: centre xyz, radius (m), colour rgb."""
        rows = []
        for slot in self.props:
            look = slot.animator.current
            glow = float(np.max(look.emissive)) * look.presence
            if glow > 0.5:
                size = float(np.max(slot.animator.prop.scale))
                tint = look.emissive / max(glow, 1e-6) * min(glow / 4.0, 1.0)
                rows.append([*slot.matrix[:3, 3], size * 1.25, *(tint * 0.9)])
        for li in self.scene.lights:
            level = self.light_levels.get(li.id, li.intensity)
            if li.kind == "point" and level > 0.05:
                rows.append([*li.position, 0.12, *(np.asarray(li.color) * min(level, 1.0) * 1.2)])
        return np.asarray(rows, np.float32).reshape(-1, 7)

    def head_anchor(self, character_id: str) -> np.ndarray:
        """World position just above a character's head (subtitles sit here), metres."""
        c = next(c for c in self.characters if c.character_id == character_id)
        return c.position + np.array([0.0, figure.head_height(c.height) + 0.18, 0.0], np.float32)

    def anchor(self, thing_id: str) -> np.ndarray:
        """World centre of a prop, or a character's face (for look-at scripts), metres."""
        for slot in self.props:
            if slot.prop_id == thing_id:
                return slot.matrix[:3, 3].copy()
        for c in self.characters:
            if c.character_id == thing_id:
                return (c.root @ np.array([0.0, 1.65, 0.0, 1.0], np.float32))[:3]
        raise KeyError(f"no prop or character '{thing_id}' in scene '{self.scene.scene.id}'")

    def pick(self, origin, direction, interactive_only: bool = False) -> str | None:
        """The id of the nearest prop or character the ray hits, or None."""
        boxes = []
        for slot in self.props:
            look = slot.animator.current
            if look.presence < 0.5 or (interactive_only and not slot.animator.prop.interactive):
                continue
            boxes.append(Box(slot.prop_id, slot.matrix, *slot.bounds))
        for c in self.characters:
            boxes.append(Box(c.character_id, c.root, np.array([-0.36, 0.0, -0.22], np.float32),
                             np.array([0.36, 1.81, 0.22], np.float32)))
        return pick_nearest(boxes, origin, direction)


def _footprint(scale) -> float:
    """The product of a prop's two largest extents (m^2): how much of a view it can cover."""
    a, b, _ = sorted((abs(float(v)) for v in scale), reverse=True)
    return a * b


def _target(light) -> np.ndarray | None:
    """Where a light's shadow frustum is centred when the scene says (``shadow_target``)."""
    return np.asarray(light.shadow_target, np.float32) if light.shadow_target is not None else None
