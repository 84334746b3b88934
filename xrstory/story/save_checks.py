"""A save checked against the scene it is loaded into: every id it names exists, every value
is in range. A save from an older version of the scene, or edited by hand, is refused with
every problem named (``SaveError``), never a ``KeyError`` on the first line of the story.
"""

from __future__ import annotations

import math

from xrstory.story.errors import SaveError
from xrstory.story.scene import PLAYER, Scene

MAX_ITEMS = 100_000  # conversation lines, log entries, fired triggers: a real save holds hundreds


def state_issues(scene: Scene, state) -> list[str]:
    """What is wrong with ``state`` (a ``StoryState``) for ``scene``; empty when it fits."""
    issues: list[str] = []
    sid = scene.scene.id
    if state.scene_id != sid:
        return [f"save is for scene '{state.scene_id}', not '{sid}'"]
    beats = {b.id for b in scene.beats}
    props = {p.id: p for p in scene.props}
    triggers = {t.id for t in scene.triggers}
    lights = {li.id for li in scene.lights}
    speakers = {c.id for c in scene.characters} | {PLAYER}
    if state.beat not in beats:
        issues.append(f"beat: unknown beat '{state.beat}' (scene '{sid}' has {sorted(beats)})")
    if state.mood not in scene.moods:
        issues.append(f"mood: unknown mood '{state.mood}' (one of {sorted(scene.moods)})")
    for pid, value in state.prop_states.items():
        if pid not in props:
            issues.append(f"prop_states.{pid}: unknown prop '{pid}'")
        elif value not in props[pid].states:
            issues.append(f"prop_states.{pid}: prop '{pid}' has no state '{value}' "
                          f"(one of {sorted(props[pid].states)})")
    for lid, level in state.light_levels.items():
        if lid not in lights:
            issues.append(f"light_levels.{lid}: unknown light '{lid}'")
        elif not (math.isfinite(level) and 0 <= level <= 1e6):
            issues.append(f"light_levels.{lid}: {level!r} is not an intensity (finite, 0 or more)")
    for i, tid in enumerate(state.fired):
        if tid not in triggers:
            issues.append(f"fired[{i}]: unknown trigger '{tid}'")
    if not (math.isfinite(state.time) and state.time >= 0):
        issues.append(f"time: {state.time!r} is not a scene time (finite seconds, 0 or more)")
    for name in ("conversation", "log", "fired", "flags"):
        if len(getattr(state, name)) > MAX_ITEMS:
            issues.append(f"{name}: {len(getattr(state, name))} entries, more than {MAX_ITEMS}")
    for i, u in enumerate(state.conversation):
        if u.speaker not in speakers:
            issues.append(f"conversation[{i}].speaker: unknown speaker '{u.speaker}'")
        if not (math.isfinite(u.t) and u.t >= 0):
            issues.append(f"conversation[{i}].t: {u.t!r} is not a scene time")
    for i, e in enumerate(state.log):
        if not (math.isfinite(e.t) and e.t >= 0):
            issues.append(f"log[{i}].t: {e.t!r} is not a scene time")
    for where, text in _strings(state.model_dump(include={"conversation", "memories", "director", "flags", "ended"})):
        if any("\ud800" <= ch <= "\udfff" for ch in text):
            issues.append(f"{where}: holds a lone surrogate (not valid Unicode; it cannot be saved)")
            break
    for cid in state.memories:
        if cid not in speakers - {PLAYER}:
            issues.append(f"memories.{cid}: unknown character '{cid}'")
    return issues


def _strings(value: object, where: str = "") -> list[tuple[str, str]]:
    """(field path, text) of every string in a dumped state, keys included."""
    out: list[tuple[str, str]] = []
    stack = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            out.append((path or "(root)", item))
        elif isinstance(item, dict):
            stack += [(f"{path}.{k}" if path else str(k), v) for k, v in item.items()]
            out += [(path or "(root)", k) for k in item if isinstance(k, str)]
        elif isinstance(item, list | tuple):
            stack += [(f"{path}[{i}]", v) for i, v in enumerate(item)]
    return out


def check_state(scene: Scene, state, source: str = "save") -> None:
    """Raise ``SaveError`` naming ``source`` and every problem of ``state`` for ``scene``."""
    issues = state_issues(scene, state)
    if issues:
        shown = "; ".join(issues[:20]) + (f"; and {len(issues) - 20} more" if len(issues) > 20 else "")
        raise SaveError(f"{source}: does not fit scene '{scene.scene.id}': {shown}")
