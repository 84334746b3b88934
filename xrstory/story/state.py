"""The story state: one serialisable object that a save holds, and the rules that change it.

``StoryState`` is plain data (JSON round-trip, versioned). ``Story`` pairs it with its
``Scene`` and is the only way triggers change it: ``story.apply(trigger, by=character)``
checks the beat, the character's permission and the trigger's preconditions every time
(complete mediation), whatever the model or the player asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from xrstory.story.save_checks import check_state
from xrstory.story.scene import PLAYER, Effects, Scene

SAVE_VERSION = 2


class LogEntry(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    t: float  # scene time, seconds
    trigger: str
    by: str
    fired: bool
    reason: str = ""


class Utterance(BaseModel):
    """One line of conversation, kept for context and for the save."""

    model_config = ConfigDict(allow_inf_nan=False)

    t: float
    speaker: str  # character id or "player"
    text: str
    interrupted: bool = False


class StoryState(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)  # a save with NaN or inf in it is refused

    version: int = SAVE_VERSION
    scene_id: str
    beat: str
    flags: list[str] = Field(default_factory=list)
    prop_states: dict[str, str] = Field(default_factory=dict)
    light_levels: dict[str, float] = Field(default_factory=dict)
    mood: str = "default"
    ended: str | None = None
    fired: list[str] = Field(default_factory=list)  # ids of triggers fired so far, in order
    log: list[LogEntry] = Field(default_factory=list)
    conversation: list[Utterance] = Field(default_factory=list)
    memories: dict[str, list[dict]] = Field(default_factory=dict)  # owned by mind.memory
    director: dict = Field(default_factory=dict)  # owned by director (pacing counters)
    time: float = 0.0  # scene time, seconds

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> StoryState:
        return cls.model_validate_json(text)


@dataclass
class TriggerResult:
    trigger: str
    by: str
    fired: bool
    reason: str = ""  # why it was refused; empty when fired
    effects: Effects | None = None
    beat_before: str = ""
    beat_after: str = ""
    ended: str | None = None
    sounds: list[str] = field(default_factory=list)


class Story:
    """A scene and its state; the single place where the rules are enforced."""

    def __init__(self, scene: Scene, state: StoryState | None = None):
        self.scene = scene
        if state is None:
            state = StoryState(scene_id=scene.scene.id, beat=scene.scene.start_beat, mood=scene.scene.mood,
                               prop_states={p.id: p.initial_state for p in scene.props if p.initial_state},
                               light_levels={li.id: li.intensity for li in scene.lights})
            self.state = state
            self._apply_effects(scene.beat(state.beat).entry_effects, TriggerResult("", "", True))
        else:
            check_state(scene, state)  # SaveError naming every unknown id or bad value
            self.state = state

    # -- queries ---------------------------------------------------------------------
    def refusal(self, trigger_id: str, by: str) -> str | None:
        """Why ``by`` may not fire ``trigger_id`` now, or None when it may."""
        st = self.state
        try:
            trig = self.scene.trigger(trigger_id)
        except KeyError:
            return f"unknown trigger '{trigger_id}'"
        if st.ended is not None:
            return "the story has ended"
        if by != PLAYER:
            try:
                ch = self.scene.character(by)
            except KeyError:
                return f"unknown character '{by}'"
            if trigger_id not in ch.triggers or (trig.fired_by and by not in trig.fired_by):
                return f"'{by}' may not fire '{trigger_id}'"
        elif PLAYER not in trig.fired_by:
            return f"the player may not fire '{trigger_id}' directly"
        beat = self.scene.beat(st.beat)
        if trigger_id not in beat.allowed_triggers:
            return f"'{trigger_id}' is not allowed in beat '{st.beat}'"
        if trig.once and trigger_id in st.fired:
            return f"'{trigger_id}' has already fired"
        req = trig.requires
        if req.beats and st.beat not in req.beats:
            return f"needs beat {' or '.join(req.beats)} (now '{st.beat}')"
        missing = [f for f in req.flags_set if f not in st.flags]
        if missing:
            return f"needs flag{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        present = [f for f in req.flags_unset if f in st.flags]
        if present:
            return f"needs flag{'s' if len(present) > 1 else ''} {', '.join(present)} unset"
        for pid, want in req.prop_states.items():
            if st.prop_states.get(pid) != want:
                return f"needs prop '{pid}' {want} (now {st.prop_states.get(pid)})"
        return None

    def allowed_triggers(self, by: str) -> list[str]:
        """Triggers ``by`` may fire right now, in the scene file's order."""
        return [t.id for t in self.scene.triggers if self.refusal(t.id, by) is None]

    # -- the one mutation ------------------------------------------------------------
    def apply(self, trigger_id: str, by: str) -> TriggerResult:
        st = self.state
        result = TriggerResult(trigger_id, by, False, beat_before=st.beat, beat_after=st.beat)
        reason = self.refusal(trigger_id, by)
        if reason is not None:
            result.reason = reason
            st.log.append(LogEntry(t=st.time, trigger=trigger_id, by=by, fired=False, reason=reason))
            return result
        trig = self.scene.trigger(trigger_id)
        result.fired, result.effects = True, trig.effects
        st.fired.append(trigger_id)
        st.log.append(LogEntry(t=st.time, trigger=trigger_id, by=by, fired=True))
        self._apply_effects(trig.effects, result)
        self._follow_transitions(result)
        result.beat_after = st.beat
        return result

    def _apply_effects(self, fx: Effects, result: TriggerResult) -> None:
        st = self.state
        for f in fx.set_flags:
            if f not in st.flags:
                st.flags.append(f)
        st.flags = [f for f in st.flags if f not in fx.clear_flags]
        st.prop_states.update(fx.prop_states)
        st.light_levels.update(fx.lights)
        if fx.mood:
            st.mood = fx.mood
        if fx.sound:
            result.sounds.append(fx.sound)
        if fx.end_story:
            st.ended = result.ended = fx.end_story
        if fx.enter_beat and fx.enter_beat != st.beat:
            self._enter(fx.enter_beat, result)

    def _enter(self, beat_id: str, result: TriggerResult) -> None:
        self.state.beat = beat_id
        beat = self.scene.beat(beat_id)
        self._apply_effects(beat.entry_effects, result)
        if beat.ending and self.state.ended is None:
            self.state.ended = result.ended = beat.goal

    def _follow_transitions(self, result: TriggerResult) -> None:
        # bounded: a transition chain cannot be longer than the number of beats
        for _ in range(len(self.scene.beats)):
            beat = self.scene.beat(self.state.beat)
            nxt = next((tr.to for tr in beat.transitions
                        if all(f in self.state.flags for f in tr.when_flags)), None)
            if nxt is None or nxt == self.state.beat:
                return
            self._enter(nxt, result)

    def note_utterance(self, speaker: str, text: str, interrupted: bool = False) -> None:
        self.state.conversation.append(Utterance(t=self.state.time, speaker=speaker, text=text,
                                                 interrupted=interrupted))
