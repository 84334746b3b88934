"""Cross-reference checks that types alone cannot express: unique ids, every reference
resolves (with a suggestion when misspelt), prop states exist, and every beat reachable
from the start can still reach an ending (no cycle without an exit)."""

from __future__ import annotations

from pathlib import Path

from xrstory.story.errors import SceneIssue, closest
from xrstory.story.scene import PLAYER, Effects, Scene


def check_references(scene: Scene, file: Path) -> list[SceneIssue]:
    issues: list[SceneIssue] = []

    def bad(path: str, kind: str, value: str, valid) -> None:
        issues.append(SceneIssue(file, path, f"unknown {kind} '{value}'", value=value,
                                 suggestion=closest(value, valid)))

    for table in ("props", "lights", "characters", "triggers", "beats", "viewpoints"):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(scene, table)):
            if item.id in seen:
                issues.append(SceneIssue(file, f"{table}[{i}].id",
                                         f"duplicate id '{item.id}' (first used at {table}[{seen[item.id]}])",
                                         value=item.id))
            else:
                seen[item.id] = i
    props = {p.id: p for p in scene.props}
    characters = {c.id for c in scene.characters}
    triggers = {t.id for t in scene.triggers}
    beats = {b.id for b in scene.beats}
    lights = {li.id for li in scene.lights}
    moods = set(scene.moods)
    if PLAYER in characters:
        issues.append(SceneIssue(file, "characters", f"'{PLAYER}' is reserved for the player", value=PLAYER))

    if scene.scene.start_beat not in beats:
        bad("scene.start_beat", "beat", scene.scene.start_beat, beats)
    if scene.scene.mood not in moods:
        bad("scene.mood", "mood", scene.scene.mood, moods)
    if not scene.beats:
        issues.append(SceneIssue(file, "beats", "a scene needs at least one beat"))

    for i, p in enumerate(scene.props):
        if (p.shape is None) == (p.mesh is None):
            issues.append(SceneIssue(file, f"props[{i}]", "give exactly one of 'shape' or 'mesh'", value=p.id))
        if p.mesh and scene.folder and not (Path(scene.folder) / p.mesh).is_file():
            issues.append(SceneIssue(file, f"props[{i}].mesh", f"mesh file not found: {p.mesh}", value=p.mesh))
        if p.initial_state is not None and p.initial_state not in p.states:
            bad(f"props[{i}].initial_state", f"state of prop '{p.id}'", p.initial_state, p.states)

    def check_effects(path: str, fx: Effects) -> None:
        for j, f in enumerate(fx.prop_states):
            if f not in props:
                bad(f"{path}.prop_states.{f}", "prop", f, props)
            elif fx.prop_states[f] not in props[f].states:
                bad(f"{path}.prop_states.{f}", f"state of prop '{f}'", fx.prop_states[f], props[f].states)
        for li in fx.lights:
            if li not in lights:
                bad(f"{path}.lights.{li}", "light", li, lights)
        if fx.mood is not None and fx.mood not in moods:
            bad(f"{path}.mood", "mood", fx.mood, moods)
        if fx.enter_beat is not None and fx.enter_beat not in beats:
            bad(f"{path}.enter_beat", "beat", fx.enter_beat, beats)

    for i, c in enumerate(scene.characters):
        for j, t in enumerate(c.triggers):
            if t not in triggers:
                bad(f"characters[{i}].triggers[{j}]", "trigger", t, triggers)
    for i, t in enumerate(scene.triggers):
        for j, who in enumerate(t.fired_by):
            if who != PLAYER and who not in characters:
                bad(f"triggers[{i}].fired_by[{j}]", "character", who, characters | {PLAYER})
        req = t.requires
        for j, b in enumerate(req.beats):
            if b not in beats:
                bad(f"triggers[{i}].requires.beats[{j}]", "beat", b, beats)
        for pid, st in req.prop_states.items():
            if pid not in props:
                bad(f"triggers[{i}].requires.prop_states.{pid}", "prop", pid, props)
            elif st not in props[pid].states:
                bad(f"triggers[{i}].requires.prop_states.{pid}", f"state of prop '{pid}'", st, props[pid].states)
        check_effects(f"triggers[{i}].effects", t.effects)
    for i, b in enumerate(scene.beats):
        for j, t in enumerate(b.allowed_triggers):
            if t not in triggers:
                bad(f"beats[{i}].allowed_triggers[{j}]", "trigger", t, triggers)
        for j, tr in enumerate(b.transitions):
            if tr.to not in beats:
                bad(f"beats[{i}].transitions[{j}].to", "beat", tr.to, beats)
        check_effects(f"beats[{i}].entry_effects", b.entry_effects)

    # A character listed as able to fire a trigger should appear in the trigger's fired_by
    # (either list may be written; we keep them consistent rather than guess).
    for i, c in enumerate(scene.characters):
        for j, t in enumerate(c.triggers):
            if t in triggers:
                trig = scene.trigger(t)
                if trig.fired_by and c.id not in trig.fired_by:
                    issues.append(SceneIssue(file, f"characters[{i}].triggers[{j}]",
                                             f"character '{c.id}' lists trigger '{t}' but the trigger's fired_by does not include it",
                                             value=t))
    if not issues:
        issues.extend(_check_beat_graph(scene, file))
    return issues


def beat_edges(scene: Scene) -> dict[str, set[str]]:
    """beat -> beats it can lead to (its transitions, and triggers allowed in it that enter a beat)."""
    edges: dict[str, set[str]] = {b.id: set() for b in scene.beats}
    for b in scene.beats:
        edges[b.id].update(tr.to for tr in b.transitions)
        for t in b.allowed_triggers:
            trig = scene.trigger(t)
            if trig.effects.enter_beat:
                edges[b.id].add(trig.effects.enter_beat)
        if b.entry_effects.enter_beat:
            edges[b.id].add(b.entry_effects.enter_beat)
    return edges


def _ends(scene: Scene, beat_id: str) -> bool:
    b = scene.beat(beat_id)
    return b.ending or any(scene.trigger(t).effects.end_story for t in b.allowed_triggers)


def _check_beat_graph(scene: Scene, file: Path) -> list[SceneIssue]:
    edges = beat_edges(scene)
    reachable, stack = set(), [scene.scene.start_beat]
    while stack:
        b = stack.pop()
        if b in reachable:
            continue
        reachable.add(b)
        stack.extend(edges[b])
    # beats that can reach an ending: fixpoint backwards
    can_end = {b for b in edges if _ends(scene, b)}
    changed = True
    while changed:
        changed = False
        for b, outs in edges.items():
            if b not in can_end and outs & can_end:
                can_end.add(b)
                changed = True
    issues = []
    if not any(_ends(scene, b) for b in reachable):
        issues.append(SceneIssue(file, "beats", "no ending is reachable from the start beat",
                                 value=scene.scene.start_beat))
    for i, b in enumerate(scene.beats):
        if b.id in reachable and b.id not in can_end:
            issues.append(SceneIssue(file, f"beats[{i}]",
                                     f"beat '{b.id}' can never reach an ending (a cycle with no exit?)",
                                     value=b.id))
        elif b.id not in reachable:
            issues.append(SceneIssue(file, f"beats[{i}]",
                                     f"beat '{b.id}' is unreachable from start beat '{scene.scene.start_beat}'",
                                     value=b.id))
    return issues
