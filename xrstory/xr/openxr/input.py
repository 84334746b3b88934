"""Controller input through OpenXR actions: aim pose, select, grip, thumbstick, push-to-talk, haptics.

Suggested bindings for Khronos simple, Oculus Touch, Valve Index and HTC Vive controllers; the
runtime picks the one that matches the hardware. ``poll`` syncs the actions once per frame and
turns changes into ``InputEvent``s (edges for buttons, a value for the thumbstick) carrying the
hand's aim pose, so a ray from it can pick what the player points at (see picking.py).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

import xr

from xrstory.xr.backend import InputEvent, InputKind
from xrstory.xr.openxr.spaces import to_pose

log = logging.getLogger("xrstory.xr.openxr")
HANDS = ("left", "right")

# interaction profile -> action name -> component path under /user/hand/<hand>/input or /output
PROFILES: dict[str, dict[str, str]] = {
    "/interaction_profiles/khr/simple_controller": {
        "aim": "input/aim/pose", "select": "input/select/click", "talk": "input/menu/click",
        "haptic": "output/haptic"},
    "/interaction_profiles/oculus/touch_controller": {
        "aim": "input/aim/pose", "select": "input/trigger/value", "grip": "input/squeeze/value",
        "thumbstick": "input/thumbstick", "talk": "input/thumbstick/click", "haptic": "output/haptic"},
    "/interaction_profiles/valve/index_controller": {
        "aim": "input/aim/pose", "select": "input/trigger/click", "grip": "input/squeeze/value",
        "thumbstick": "input/thumbstick", "talk": "input/b/click", "haptic": "output/haptic"},
    "/interaction_profiles/htc/vive_controller": {
        "aim": "input/aim/pose", "select": "input/trigger/click", "grip": "input/squeeze/click",
        "thumbstick": "input/trackpad", "talk": "input/menu/click", "haptic": "output/haptic"},
}
ACTION_TYPES = {
    "aim": xr.ActionType.POSE_INPUT, "select": xr.ActionType.BOOLEAN_INPUT,
    "grip": xr.ActionType.FLOAT_INPUT, "thumbstick": xr.ActionType.VECTOR2F_INPUT,
    "talk": xr.ActionType.BOOLEAN_INPUT, "haptic": xr.ActionType.VIBRATION_OUTPUT,
}
GRIP_ON = 0.6  # squeeze value above which the grip counts as held
STICK_DEAD = 0.2  # thumbstick magnitude below which it counts as centred


class XrInput:
    def __init__(self, instance, session, spaces):
        self.instance = instance
        self.session = session
        self.spaces = spaces
        self.actions: dict[str, object] = {}
        self.hand_paths = {h: xr.string_to_path(instance, f"/user/hand/{h}") for h in HANDS}
        self.aim_spaces: dict[str, object] = {}
        self.profiles_bound: list[str] = []
        self._last: dict[tuple[str, str], object] = {}
        self._stack = ExitStack()

    def __enter__(self) -> XrInput:
        try:
            self._create()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _create(self) -> None:
        action_set = xr.create_action_set(self.instance, xr.ActionSetCreateInfo(
            action_set_name="xrstory", localized_action_set_name="xrstory", priority=0))
        self._stack.callback(xr.destroy_action_set, action_set)
        self.action_set = action_set
        subpaths = list(self.hand_paths.values())
        for name, kind in ACTION_TYPES.items():
            self.actions[name] = xr.create_action(action_set, xr.ActionCreateInfo(
                action_type=kind, action_name=name, localized_action_name=name,
                subaction_paths=subpaths))
        for profile, components in PROFILES.items():
            bindings = [xr.ActionSuggestedBinding(self.actions[name], xr.string_to_path(
                self.instance, f"/user/hand/{hand}/{component}"))
                for name, component in components.items() for hand in HANDS]
            try:
                xr.suggest_interaction_profile_bindings(self.instance, xr.InteractionProfileSuggestedBinding(
                    interaction_profile=xr.string_to_path(self.instance, profile), suggested_bindings=bindings))
                self.profiles_bound.append(profile)
            except xr.XrException as exc:  # a runtime without this profile refuses it; others still work
                log.info("bindings for %s refused: %s", profile, exc)
        for hand, path in self.hand_paths.items():
            self.aim_spaces[hand] = xr.create_action_space(self.session, xr.ActionSpaceCreateInfo(
                action=self.actions["aim"], subaction_path=path, pose_in_action_space=xr.Posef()))
            self._stack.callback(_destroy_space, self.aim_spaces[hand])
        xr.attach_session_action_sets(self.session, xr.SessionActionSetsAttachInfo(action_sets=[action_set]))

    def poll(self, display_time, seconds: float) -> list[InputEvent]:
        """Sync actions and return this frame's input events (call once per frame while FOCUSED)."""
        try:
            xr.sync_actions(self.session, xr.ActionsSyncInfo(
                active_action_sets=[xr.ActiveActionSet(self.action_set, xr.NULL_PATH)]))
        except xr.SessionNotFocused:
            return []
        events: list[InputEvent] = []
        for hand, path in self.hand_paths.items():
            aim = self._aim(hand, display_time)
            select = self._bool("select", path)
            talk = self._bool("talk", path)
            grip = self._float("grip", path)
            stick = self._vec2("thumbstick", path)
            if self._edge(hand, "select", select) is True:
                events.append(InputEvent(InputKind.SELECT, seconds, hand, aim))
            edge = self._edge(hand, "talk", talk)
            if edge is not None:
                kind = InputKind.PUSH_TO_TALK_DOWN if edge else InputKind.PUSH_TO_TALK_UP
                events.append(InputEvent(kind, seconds, hand, aim))
            if grip is not None and self._edge(hand, "grip", grip > GRIP_ON) is True:
                events.append(InputEvent(InputKind.GRIP, seconds, hand, aim, grip))
            if stick is not None:
                moved = (stick[0] ** 2 + stick[1] ** 2) ** 0.5 > STICK_DEAD
                if moved or self._last.get((hand, "stick_moved")):
                    events.append(InputEvent(InputKind.THUMBSTICK, seconds, hand, aim, stick))
                self._last[(hand, "stick_moved")] = moved
        return events

    def _edge(self, hand: str, name: str, value: bool | None) -> bool | None:
        """True on press, False on release, None when unchanged or inactive."""
        if value is None:
            return None
        before = self._last.get((hand, name), False)
        self._last[(hand, name)] = value
        return None if value == before else value

    def _bool(self, name, path) -> bool | None:
        st = xr.get_action_state_boolean(self.session, xr.ActionStateGetInfo(self.actions[name], path))
        return bool(st.current_state) if st.is_active else None

    def _float(self, name, path) -> float | None:
        st = xr.get_action_state_float(self.session, xr.ActionStateGetInfo(self.actions[name], path))
        return float(st.current_state) if st.is_active else None

    def _vec2(self, name, path) -> tuple[float, float] | None:
        st = xr.get_action_state_vector2f(self.session, xr.ActionStateGetInfo(self.actions[name], path))
        return (float(st.current_state.x), float(st.current_state.y)) if st.is_active else None

    def _aim(self, hand: str, display_time):
        loc = xr.locate_space(self.aim_spaces[hand], self.spaces.world, display_time)
        valid = int(xr.SpaceLocationFlags.POSITION_VALID_BIT | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT)
        return to_pose(loc.pose) if (int(loc.location_flags) & valid) == valid else None

    def haptic(self, hand: str, seconds: float, amplitude: float) -> None:
        """A vibration pulse; silently nothing where the device has no haptics."""
        vib = xr.HapticVibration(duration=int(seconds * 1e9), frequency=xr.FREQUENCY_UNSPECIFIED,
                                 amplitude=amplitude)
        try:
            xr.apply_haptic_feedback(self.session, xr.HapticActionInfo(self.actions["haptic"],
                                                                       self.hand_paths[hand]), vib)
        except xr.XrException as exc:
            log.debug("haptic on %s: %s", hand, exc)

    def __exit__(self, *exc) -> None:
        self._stack.close()


def _destroy_space(space) -> None:
    try:
        xr.destroy_space(space)
    except xr.XrException as exc:
        log.debug("xrDestroySpace: %s", exc)
