"""What the story state looks like, animated over time: prop looks, mood, light levels.

No GL here. Each prop state resolves to a ``PropLook`` (the prop's defaults overridden by the
state's fields); when the story changes a prop's state, the look blends from wherever it is
now to the new look over the state's ``animate_s`` (a door swings, a lamp warms up). The
mood (sky, fog, ambient, sun) eases towards the story's current mood the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from xrstory.story.scene import Mood, Prop, Scene

MOOD_BLEND_S = 2.0  # seconds for a mood change to settle


@dataclass
class PropLook:
    """Everything about a prop that a state may change, as arrays so looks blend linearly."""

    position: np.ndarray  # (3,) metres
    rotation_deg: np.ndarray  # (3,) Euler degrees
    color: np.ndarray  # (3,) linear rgb
    emissive: np.ndarray  # (3,)
    roughness: float
    metallic: float
    opacity: float
    presence: float  # 1 visible, 0 hidden; in between it fades
    light_color: np.ndarray  # (3,) colour * intensity of the prop's own point light (0: none)
    light_range: float  # metres
    light_offset: np.ndarray  # (3,) metres, prop space

    def blend(self, other: PropLook, t: float) -> PropLook:
        # field names looked up once (dataclasses.fields per call was most of a blend's cost)
        return PropLook(*[a + (b - a) * t for a, b in zip(self._values(), other._values(), strict=True)])

    def _values(self) -> list:
        return [getattr(self, name) for name in _PROP_LOOK_FIELDS]


_PROP_LOOK_FIELDS = tuple(f.name for f in fields(PropLook))


def resolve_look(prop: Prop, state_name: str | None) -> PropLook:
    st = prop.states.get(state_name) if state_name else None
    mat = st.material if st and st.material else prop.material
    light = st.light if st else None
    return PropLook(
        position=np.asarray(st.position if st and st.position else prop.position, np.float32),
        rotation_deg=np.asarray(st.rotation_deg if st and st.rotation_deg else prop.rotation_deg, np.float32),
        color=np.asarray(mat.color, np.float32),
        emissive=np.asarray(mat.emissive, np.float32),
        roughness=float(mat.roughness),
        metallic=float(mat.metallic),
        opacity=float(mat.opacity),
        presence=0.0 if st is not None and st.visible is False else 1.0,
        light_color=np.asarray(light.color, np.float32) * light.intensity if light else np.zeros(3, np.float32),
        light_range=float(light.range) if light else 1.0,
        light_offset=np.asarray(light.offset, np.float32) if light else np.zeros(3, np.float32),
    )


def _ease(t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


class PropAnimator:
    """One prop's look over time; ``set_state`` starts a blend, ``advance(dt)`` moves it on."""

    def __init__(self, prop: Prop, state_name: str | None):
        self.prop = prop
        self.state_name = state_name
        self.start = self.target = self.current = resolve_look(prop, state_name)
        self.duration = 0.0
        self.elapsed = 0.0

    @property
    def target_state(self) -> str | None:
        return self.state_name

    @property
    def animating(self) -> bool:
        return self.elapsed < self.duration

    def set_state(self, state_name: str | None, snap: bool = False) -> bool:
        """Returns True when the look changes (the caller re-uploads this prop)."""
        if state_name == self.state_name:
            return False
        self.state_name = state_name
        self.start, self.target = self.current, resolve_look(self.prop, state_name)
        st = self.prop.states.get(state_name) if state_name else None
        self.duration = 0.0 if snap else (st.animate_s if st else 1.0)
        self.elapsed = 0.0
        if self.duration <= 0.0:
            self.current = self.target
        return True

    def advance(self, dt: float) -> bool:
        if not self.animating:
            return False
        self.elapsed = min(self.elapsed + dt, self.duration)
        self.current = self.start.blend(self.target, _ease(self.elapsed / self.duration))
        return True


MOOD_FIELDS = ("sky_top", "sky_horizon", "ambient", "sun_color", "fog_color")


@dataclass
class MoodLook:
    sky_top: np.ndarray  # (3,) linear rgb
    sky_horizon: np.ndarray
    ambient: np.ndarray
    sun_color: np.ndarray
    fog_color: np.ndarray
    sun_intensity: float
    fog_density: float  # per metre

    @staticmethod
    def of(mood: Mood) -> MoodLook:
        return MoodLook(**{k: np.asarray(getattr(mood, k), np.float32) for k in MOOD_FIELDS},
                        sun_intensity=float(mood.sun_intensity), fog_density=float(mood.fog_density))

    def towards(self, other: MoodLook, k: float) -> MoodLook:
        return MoodLook(**{f.name: getattr(self, f.name) + (getattr(other, f.name) - getattr(self, f.name)) * k
                           for f in fields(self)})


class MoodAnimator:
    def __init__(self, scene: Scene, mood_id: str):
        self.scene = scene
        self.mood_id = mood_id
        self.current = self.target = MoodLook.of(self._mood(mood_id))

    def _mood(self, mood_id: str) -> Mood:
        if mood_id in self.scene.moods:
            return self.scene.moods[mood_id]
        # a mood the scene lacks (the loader reports it): keep going with the default look
        return self.scene.moods.get("default") or Mood()

    def set_mood(self, mood_id: str, snap: bool = False) -> bool:
        """Start easing towards ``mood_id``; returns True when the look changed right now."""
        if mood_id != self.mood_id:
            self.mood_id = mood_id
            self.target = MoodLook.of(self._mood(mood_id))
        if snap and self.current is not self.target:
            self.current = self.target
            return True
        return False

    def advance(self, dt: float) -> bool:
        """Ease towards the target mood; returns False once settled (nothing changed)."""
        if self.current is self.target:
            return False
        # exponential ease: ~95% of the way in MOOD_BLEND_S seconds
        k = 1.0 - float(np.exp(-3.0 * dt / MOOD_BLEND_S))
        self.current = self.current.towards(self.target, k)
        if max(float(np.max(np.abs(getattr(self.current, f) - getattr(self.target, f)))) for f in MOOD_FIELDS) < 1e-3:
            self.current = self.target
        return True
