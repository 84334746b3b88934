"""Cross-reference checks that types alone cannot express: unique ids, every reference
resolves (with a suggestion when misspelt), prop states and flags exist, every trigger can
be fired by someone somewhere, and the beat graph has no trap (see ``beat_graph``).

The loader also runs these on a partial scene (the items that passed type checks) so type
errors and reference errors are reported together; ``SceneTables`` says which file index
each kept item had and which ids the dropped items declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xrstory.story.beat_graph import check_beat_graph
from xrstory.story.errors import SceneIssue, closest
from xrstory.story.scene import PLAYER, Effects, Prop, Scene
from xrstory.story.validate_model import check_character_model

LIST_TABLES = ("viewpoints", "props", "lights", "characters", "triggers", "beats")
MESH_SUFFIXES = (".gltf", ".glb")


@dataclass
class SceneTables:
    """How a (possibly partial) scene maps back to the file."""

    # table -> file index of each kept item, in order (missing table: kept items are all)
    indices: dict[str, list[int]] = field(default_factory=dict)
    # table -> ids declared by items dropped for type errors (references to them are fine)
    dropped_ids: dict[str, set[str]] = field(default_factory=dict)
    scene_info_ok: bool = True  # the [scene] table passed type checks
    complete: bool = True  # nothing was dropped

    def enumerate(self, scene: Scene, table: str):
        """(file index, item) for each kept item of a list table."""
        items = getattr(scene, table)
        return zip(self.indices.get(table, range(len(items))), items, strict=True)


def check_references(scene: Scene, file: Path, tables: SceneTables | None = None) -> list[SceneIssue]:
    tables = tables or SceneTables()
    issues: list[SceneIssue] = []
    graph_refs_ok = True

    def bad(path: str, kind: str, value: str, valid, owner: str = "") -> None:
        nonlocal graph_refs_ok
        graph_refs_ok = graph_refs_ok and kind not in ("beat", "trigger")
        issues.append(SceneIssue(file, path, f"unknown {kind} '{value}'{owner}", value=value,
                                 suggestion=closest(value, valid)))

    def ids(table: str) -> set[str]:
        return {item.id for item in getattr(scene, table)} | tables.dropped_ids.get(table, set())

    for table in LIST_TABLES:
        seen: dict[str, int] = {}
        for i, item in tables.enumerate(scene, table):
            if item.id in seen:
                issues.append(SceneIssue(file, f"{table}[{i}].id",
                                         f"duplicate id '{item.id}' (first used at {table}[{seen[item.id]}])",
                                         value=item.id))
            else:
                seen[item.id] = i
    props: dict[str, Prop] = {}
    for p in scene.props:
        props.setdefault(p.id, p)  # a duplicate id is reported above; the first one counts
    prop_ids, characters, triggers = ids("props"), ids("characters"), ids("triggers")
    beats, lights, moods = ids("beats"), ids("lights"), set(scene.moods) | tables.dropped_ids.get("moods", set())

    for i, c in tables.enumerate(scene, "characters"):
        if c.id == PLAYER:
            issues.append(SceneIssue(file, f"characters[{i}].id",
                                     f"'{PLAYER}' is reserved for the player; choose another id", value=c.id))
    if tables.scene_info_ok:
        if scene.scene.start_beat not in beats:
            bad("scene.start_beat", "beat", scene.scene.start_beat, beats)
        if scene.scene.mood not in moods:
            bad("scene.mood", "mood", scene.scene.mood, moods)
    if not beats:
        issues.append(SceneIssue(file, "beats", "a scene needs at least one [[beats]] entry"))
    if not characters:
        issues.append(SceneIssue(file, "characters", "a scene needs at least one [[characters]] entry "
                                                     "(someone for the player to talk to)"))

    def outside(rel: str) -> bool:
        """A path that leaves the scene folder (absolute, or through '..' or a link)."""
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            return True
        if scene.folder:
            root = Path(scene.folder).resolve()
            return not (root / rel).resolve().is_relative_to(root)
        return False

    def check_file(path: str, rel: str, suffixes: tuple[str, ...]) -> None:
        if outside(rel):
            issues.append(SceneIssue(file, path, f"'{rel}' is outside the scene folder (give a path "
                                                 f"relative to it, without '..')", value=rel))
        elif not rel.lower().endswith(suffixes):
            issues.append(SceneIssue(file, path, f"'{rel}' is not a {' or '.join(suffixes)} file", value=rel))
        elif scene.folder and not (Path(scene.folder) / rel).is_file():
            issues.append(SceneIssue(file, path, f"file not found: '{rel}' (relative to {scene.folder})",
                                     value=rel))

    for i, p in tables.enumerate(scene, "props"):
        if (p.shape is None) == (p.mesh is None):
            issues.append(SceneIssue(file, f"props[{i}]", f"prop '{p.id}': give exactly one of 'shape' or 'mesh'",
                                     value=p.id))
        if p.mesh:
            check_file(f"props[{i}].mesh", p.mesh, MESH_SUFFIXES)
        press = p.press_trigger
        if press is not None and press not in triggers:
            bad(f"props[{i}].press_trigger", "trigger", press, triggers)
        if p.initial_state is not None and p.initial_state not in p.states:
            bad(f"props[{i}].initial_state", "state", p.initial_state, p.states, f" of prop '{p.id}'")
        if p.states and p.initial_state is None:
            issues.append(SceneIssue(file, f"props[{i}].initial_state",
                                     f"prop '{p.id}' has states but no initial_state "
                                     f"(one of {sorted(p.states)})", value=None))
    for i, li in tables.enumerate(scene, "lights"):
        if li.kind != "point" and not any(li.direction):
            issues.append(SceneIssue(file, f"lights[{i}].direction",
                                     f"a {li.kind} light needs a non-zero direction", value=str(li.direction)))
    for i, c in tables.enumerate(scene, "characters"):
        if c.appearance.mesh:
            check_file(f"characters[{i}].appearance.mesh", c.appearance.mesh, MESH_SUFFIXES)
        issues += check_character_model(file, scene.folder, i, c)

    def check_prop_state(path: str, pid: str, state: str) -> None:
        if pid not in prop_ids:
            bad(path, "prop", pid, prop_ids)
        elif pid in props and state not in props[pid].states:
            bad(path, "state", state, props[pid].states, f" of prop '{pid}'")

    def check_effects(path: str, fx: Effects) -> None:
        for pid, state in fx.prop_states.items():
            check_prop_state(f"{path}.prop_states.{pid}", pid, state)
        for li in fx.lights:
            if li not in lights:
                bad(f"{path}.lights.{li}", "light", li, lights)
        if fx.mood is not None and fx.mood not in moods:
            bad(f"{path}.mood", "mood", fx.mood, moods)
        if fx.enter_beat is not None and fx.enter_beat not in beats:
            bad(f"{path}.enter_beat", "beat", fx.enter_beat, beats)

    for i, c in tables.enumerate(scene, "characters"):
        for j, t in enumerate(c.triggers):
            if t not in triggers:
                bad(f"characters[{i}].triggers[{j}]", "trigger", t, triggers)
    for i, t in tables.enumerate(scene, "triggers"):
        for j, who in enumerate(t.fired_by):
            if who != PLAYER and who not in characters:
                bad(f"triggers[{i}].fired_by[{j}]", "character", who, characters | {PLAYER})
        for j, b in enumerate(t.requires.beats):
            if b not in beats:
                bad(f"triggers[{i}].requires.beats[{j}]", "beat", b, beats)
        for pid, state in t.requires.prop_states.items():
            check_prop_state(f"triggers[{i}].requires.prop_states.{pid}", pid, state)
        check_effects(f"triggers[{i}].effects", t.effects)
    for i, b in tables.enumerate(scene, "beats"):
        for j, t in enumerate(b.allowed_triggers):
            if t not in triggers:
                bad(f"beats[{i}].allowed_triggers[{j}]", "trigger", t, triggers)
        for j, tr in enumerate(b.transitions):
            if tr.to not in beats:
                bad(f"beats[{i}].transitions[{j}].to", "beat", tr.to, beats)
        check_effects(f"beats[{i}].entry_effects", b.entry_effects)

    if tables.complete:
        issues += _check_permissions(scene, file)
        issues += _check_flags(scene, file)
        if graph_refs_ok and tables.scene_info_ok:
            issues += check_beat_graph(scene, file, {b.id: i for i, b in enumerate(scene.beats)})
    return issues


def _check_permissions(scene: Scene, file: Path) -> list[SceneIssue]:
    """Who may fire what: ``Story.refusal`` needs the character to list the trigger and (when
    the trigger has ``fired_by``) to be listed there too; a trigger nobody may fire, or no
    beat allows, is dead text."""
    issues = []
    by_id = {t.id: t for t in scene.triggers}
    character_ids = {c.id for c in scene.characters}
    listed_by = {t.id: set() for t in scene.triggers}
    for i, c in enumerate(scene.characters):
        for j, tid in enumerate(c.triggers):
            trig = by_id.get(tid)
            if trig is None:
                continue  # reported by the reference checks
            listed_by[tid].add(c.id)
            if any(w != PLAYER and w not in character_ids for w in trig.fired_by):
                continue  # a misspelt fired_by is reported by the reference checks
            if trig.fired_by and c.id not in trig.fired_by:
                issues.append(SceneIssue(file, f"characters[{i}].triggers[{j}]",
                                         f"character '{c.id}' lists trigger '{tid}' but the trigger's "
                                         f"fired_by {trig.fired_by} does not include '{c.id}'", value=tid))
    for i, p in enumerate(scene.props):
        trig = by_id.get(p.press_trigger)
        if trig is not None and PLAYER not in trig.fired_by:
            issues.append(SceneIssue(file, f"props[{i}].press_trigger",
                                     f"pressing prop '{p.id}' fires '{trig.id}' as the player, but the "
                                     f"trigger's fired_by {trig.fired_by} does not include '{PLAYER}'",
                                     value=trig.id))
    allowed_somewhere = {t for b in scene.beats for t in b.allowed_triggers}
    for i, t in enumerate(scene.triggers):
        for j, who in enumerate(t.fired_by):
            if who in character_ids and who not in listed_by[t.id]:
                issues.append(SceneIssue(file, f"triggers[{i}].fired_by[{j}]",
                                         f"trigger '{t.id}' names '{who}' in fired_by, but character "
                                         f"'{who}' does not list it in its triggers", value=who))
        if not listed_by[t.id] and PLAYER not in t.fired_by:
            issues.append(SceneIssue(file, f"triggers[{i}]",
                                     f"nobody can fire trigger '{t.id}': no character lists it and "
                                     f"fired_by does not include '{PLAYER}'", value=t.id))
        if t.id not in allowed_somewhere:
            issues.append(SceneIssue(file, f"triggers[{i}]",
                                     f"trigger '{t.id}' is in no beat's allowed_triggers, so it can never fire",
                                     value=t.id))
    return issues


def _check_flags(scene: Scene, file: Path) -> list[SceneIssue]:
    """Flags exist by being set: a flag tested or cleared that nothing sets is a misspelling."""
    effects = [(f"triggers[{i}].effects", t.effects) for i, t in enumerate(scene.triggers)]
    effects += [(f"beats[{i}].entry_effects", b.entry_effects) for i, b in enumerate(scene.beats)]
    set_somewhere = {f for _, fx in effects for f in fx.set_flags}
    uses = [(f"{p}.clear_flags[{j}]", f) for p, fx in effects for j, f in enumerate(fx.clear_flags)]
    for i, t in enumerate(scene.triggers):
        for key in ("flags_set", "flags_unset"):
            uses += [(f"triggers[{i}].requires.{key}[{j}]", f)
                     for j, f in enumerate(getattr(t.requires, key))]
    for i, b in enumerate(scene.beats):
        for k, tr in enumerate(b.transitions):
            uses += [(f"beats[{i}].transitions[{k}].when_flags[{j}]", f) for j, f in enumerate(tr.when_flags)]
    return [SceneIssue(file, path, f"unknown flag '{flag}': no trigger or beat sets it", value=flag,
                       suggestion=closest(flag, set_somewhere))
            for path, flag in uses if flag not in set_somewhere]
