"""The beat graph: which beat can lead to which, and whether every beat the story can reach
can still reach an ending (a cycle with no exit traps the player for good)."""

from __future__ import annotations

from pathlib import Path

from xrstory.story.errors import SceneIssue
from xrstory.story.scene import Scene


def beat_edges(scene: Scene) -> dict[str, set[str]]:
    """beat -> beats it can lead to: its transitions, triggers allowed in it that enter a
    beat, and its own entry effects. Unknown ids are skipped (the reference checks name them)."""
    beats = {b.id for b in scene.beats}
    triggers = {t.id: t for t in scene.triggers}
    edges: dict[str, set[str]] = {b.id: set() for b in scene.beats}
    for b in scene.beats:
        targets = [tr.to for tr in b.transitions]
        targets += [triggers[t].effects.enter_beat for t in b.allowed_triggers if t in triggers]
        targets.append(b.entry_effects.enter_beat)
        edges[b.id].update(t for t in targets if t in beats)
    return edges


def ends_in(scene: Scene, beat_id: str) -> bool:
    """True when the story can end in this beat (an ending beat, or an ending trigger allowed)."""
    b = scene.beat(beat_id)
    triggers = {t.id: t for t in scene.triggers}
    return b.ending or bool(b.entry_effects.end_story) or any(
        triggers[t].effects.end_story for t in b.allowed_triggers if t in triggers)


def check_beat_graph(scene: Scene, file: Path, index: dict[str, int]) -> list[SceneIssue]:
    """Issues for beats that are unreachable or can never reach an ending.

    ``index`` maps a beat id to its index in the file's ``[[beats]]`` list (for the path).
    The graph is an over-approximation (every edge counts as takeable), so a beat reported
    here is trapped whatever the player does.
    """
    edges = beat_edges(scene)
    start = scene.scene.start_beat
    reachable: set[str] = set()
    stack = [start] if start in edges else []
    while stack:
        b = stack.pop()
        if b not in reachable:
            reachable.add(b)
            stack.extend(edges[b])
    can_end = {b for b in edges if ends_in(scene, b)}
    changed = True
    while changed:  # fixpoint backwards from the endings
        changed = False
        for b, outs in edges.items():
            if b not in can_end and outs & can_end:
                can_end.add(b)
                changed = True
    issues = []
    if not any(ends_in(scene, b) for b in reachable):
        issues.append(SceneIssue(file, "scene.start_beat",
                                 f"no ending is reachable from start beat '{start}' "
                                 "(mark a beat `ending = true` or give a trigger `end_story`)",
                                 value=start))
    for b in scene.beats:
        path = f"beats[{index[b.id]}]"
        if b.id not in reachable:
            issues.append(SceneIssue(file, path, f"beat '{b.id}' is unreachable from start beat '{start}'",
                                     value=b.id))
        elif b.id not in can_end:
            exits = sorted(edges[b.id])
            issues.append(SceneIssue(file, path,
                                     f"beat '{b.id}' can never reach an ending: a cycle with no exit "
                                     + (f"(it leads only to {', '.join(exits)})" if exits else "(it leads nowhere)"), value=b.id))
    return issues
