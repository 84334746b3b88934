"""The scene format: pydantic models of ``scenes/<name>/scene.toml``.

Units are metres and degrees; positions use OpenXR conventions (right-handed, +Y up,
-Z forward). ``xrstory schema`` prints the JSON Schema generated from these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Vec3 = tuple[float, float, float]
Color = tuple[float, float, float]  # linear RGB, 0..1 (emissive may exceed 1)

PLAYER = "player"  # the id that stands for the player in `fired_by`

# The emotions a reply may carry (the renderer and TTS key off these).
EMOTIONS = ("neutral", "happy", "sad", "afraid", "angry", "determined", "relieved", "surprised", "worried")


class Model(BaseModel):
    # forbid unknown keys so a misspelt field is an error, not silently ignored; TOML's nan and
    # inf are refused: a position or an intensity of NaN would poison every frame
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


class Material(Model):
    color: Color = (0.7, 0.7, 0.7)
    roughness: float = Field(0.6, ge=0, le=1)
    metallic: float = Field(0.0, ge=0, le=1)
    emissive: Color = (0.0, 0.0, 0.0)
    opacity: float = Field(1.0, ge=0, le=1)


class PointLight(Model):
    color: Color = (1.0, 0.85, 0.6)
    intensity: float = Field(1.0, ge=0)
    range: float = Field(8.0, gt=0, description="metres to zero contribution")
    offset: Vec3 = (0.0, 0.0, 0.0)
    shadow: bool = Field(False, description="casts shadows (one shadow-casting light is drawn: the brightest "
                                            "with shadow = true)")
    shadow_target: Vec3 | None = Field(None, description="point the light's shadow frustum looks at (metres; "
                                                         "default: the middle of the characters)")


class PropState(Model):
    """A named look of a prop: whatever is given overrides the prop's defaults."""

    material: Material | None = None
    light: PointLight | None = None
    rotation_deg: Vec3 | None = None
    position: Vec3 | None = None
    visible: bool | None = None
    animate_s: float = Field(1.0, ge=0, description="seconds to blend into this state")


class Prop(Model):
    id: str
    name: str = ""
    description: str = ""
    shape: Literal["box", "sphere", "cylinder", "cone", "plane"] | None = None
    mesh: str | None = Field(None, description="glTF 2.0 file, relative to the scene folder")
    position: Vec3 = (0.0, 0.0, 0.0)
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)
    scale: Vec3 = (1.0, 1.0, 1.0)
    pivot: Vec3 = Field((0.0, 0.0, 0.0), description="rotation pivot in prop space (a door's hinge)")
    material: Material = Material()
    states: dict[str, PropState] = Field(default_factory=dict)
    initial_state: str | None = None
    interactive: bool = Field(False, description="the player can point at it and press")
    press_trigger: str | None = Field(
        None, description="trigger fired (as the player) when the player points at this prop and presses select")


class LightDef(Model):
    id: str
    kind: Literal["directional", "point", "spot"]
    color: Color = (1.0, 1.0, 1.0)
    intensity: float = Field(1.0, ge=0)
    position: Vec3 = (0.0, 3.0, 0.0)
    direction: Vec3 = (0.0, -1.0, 0.0)
    range: float = Field(10.0, gt=0)
    cone_deg: float = Field(30.0, gt=0, le=90)
    shadow: bool = Field(False, description="casts shadows (one shadow-casting light is drawn: the brightest "
                                            "with shadow = true)")
    shadow_target: Vec3 | None = Field(None, description="point the light's shadow frustum is centred on (metres; "
                                                         "default: the middle of the characters)")


class Voice(Model):
    voice: str = Field("en-us", description="'hibari' (the neural voice), an espeak-ng voice name, or a Piper model file")
    rate: int = Field(170, ge=60, le=400, description="words per minute")
    pitch: int = Field(50, ge=0, le=99)
    volume: float = Field(1.0, ge=0, le=2)


class Appearance(Model):
    body_color: Color = (0.3, 0.35, 0.5)
    head_color: Color = (0.85, 0.7, 0.6)
    height: float = Field(1.75, gt=0.3, le=3.0, description="metres")
    mesh: str | None = None
    model: str | None = Field(None, description="glTF 2.0 character (skins, morph targets, clips), relative "
                                                "to the scene folder; drawn instead of the primitive figure")
    idle: str | None = Field(None, description="clip of `model` that loops while nothing else plays")
    animations: dict[str, str] = Field(default_factory=dict,
                                       description="emotion (or gesture name) -> clip of `model`, cross-faded in")
    visemes: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="viseme class of the voice (PP FF TH DD kk CH SS RR aa E I O U rest) "
                                          "-> {morph target: weight}")
    blink: str | None = Field("blink", description="morph target that closes the eyes")


class Character(Model):
    id: str
    name: str
    persona: str
    style: str = ""
    knowledge: list[str] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)
    fallback_lines: list[str] = Field(
        default_factory=list, description="in-character lines used when a reply must be replaced"
    )
    position: Vec3 = (0.0, 0.0, -2.0)
    facing_deg: float = Field(0.0, description="yaw, degrees; 0 faces +Z (towards a player at the origin looking -Z)")
    voice: Voice = Voice()
    appearance: Appearance = Appearance()
    triggers: list[str] = Field(default_factory=list, description="triggers this character may fire")


class Requirements(Model):
    flags_set: list[str] = Field(default_factory=list)
    flags_unset: list[str] = Field(default_factory=list)
    beats: list[str] = Field(default_factory=list, description="empty: any beat")
    prop_states: dict[str, str] = Field(default_factory=dict)


class Effects(Model):
    set_flags: list[str] = Field(default_factory=list)
    clear_flags: list[str] = Field(default_factory=list)
    prop_states: dict[str, str] = Field(default_factory=dict)
    lights: dict[str, float] = Field(default_factory=dict, description="light id -> intensity")
    sound: str | None = Field(None, description="sound cue name (assets/sounds/<name>.wav or a synthesised cue)")
    mood: str | None = None
    enter_beat: str | None = None
    end_story: str | None = Field(None, description="ending text; ends the story")


class Trigger(Model):
    id: str
    description: str = Field(..., description="written for the model: when this trigger is right")
    fired_by: list[str] = Field(default_factory=list, description="character ids, or 'player'")
    requires: Requirements = Requirements()
    once: bool = True
    effects: Effects = Effects()


class Transition(Model):
    to: str
    when_flags: list[str] = Field(default_factory=list)


class Beat(Model):
    id: str
    goal: str
    allowed_triggers: list[str] = Field(default_factory=list)
    entry_effects: Effects = Effects()
    transitions: list[Transition] = Field(default_factory=list)
    ending: bool = False
    nudge_after_turns: int = Field(3, ge=1, description="off-topic turns before a character nudges")


class Mood(Model):
    sky_top: Color = (0.1, 0.15, 0.3)
    sky_horizon: Color = (0.4, 0.45, 0.55)
    ambient: Color = (0.15, 0.15, 0.2)
    sun_color: Color = (1.0, 0.95, 0.85)
    sun_intensity: float = Field(1.0, ge=0)
    fog_color: Color = (0.4, 0.45, 0.55)
    fog_density: float = Field(0.02, ge=0)


class Viewpoint(Model):
    id: str
    position: Vec3 = (0.0, 1.6, 0.0)
    look_at: Vec3 = (0.0, 1.5, -3.0)


class SceneInfo(Model):
    id: str
    title: str
    description: str = ""
    units: Literal["metres"] = "metres"
    ar_allowed: bool = False
    start_beat: str
    mood: str = "default"
    adapter: str | None = Field(None, description="LoRA adapter folder, relative to the scene folder")
    player_voice: Voice = Voice(voice="en-us", rate=160, pitch=40)
    speech_hints: list[str] = Field(default_factory=list, description=(
        "words and names the player may say that speech recognition should expect (a ship's name, "
        "an unusual word); characters, props and trigger words are added automatically"))


class Scene(Model):
    scene: SceneInfo
    moods: dict[str, Mood] = Field(default_factory=lambda: {"default": Mood()})
    viewpoints: list[Viewpoint] = Field(default_factory=list)
    props: list[Prop] = Field(default_factory=list)
    lights: list[LightDef] = Field(default_factory=list)
    characters: list[Character] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)
    beats: list[Beat] = Field(default_factory=list)

    # set by the loader, not part of the file
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    folder: str | None = Field(None, exclude=True, json_schema_extra={"readOnly": True})

    # lookups used everywhere; lists keep the file's order for authors
    def prop(self, prop_id: str) -> Prop:
        return next(p for p in self.props if p.id == prop_id)

    def character(self, character_id: str) -> Character:
        for c in self.characters:
            if c.id == character_id:
                return c
        raise KeyError(f"no character '{character_id}' in scene '{self.scene.id}'")

    def trigger(self, trigger_id: str) -> Trigger:
        for t in self.triggers:
            if t.id == trigger_id:
                return t
        raise KeyError(f"no trigger '{trigger_id}' in scene '{self.scene.id}'")

    def beat(self, beat_id: str) -> Beat:
        for b in self.beats:
            if b.id == beat_id:
                return b
        raise KeyError(f"no beat '{beat_id}' in scene '{self.scene.id}'")

    def viewpoint(self, viewpoint_id: str | None = None) -> Viewpoint:
        if viewpoint_id is None:
            return self.viewpoints[0] if self.viewpoints else Viewpoint(id="default")
        return next(v for v in self.viewpoints if v.id == viewpoint_id)


def scene_json_schema() -> dict:
    schema = Scene.model_json_schema()
    schema["properties"].pop("folder", None)
    schema["title"] = "xrstory scene (scene.toml)"
    return schema
