"""Load and check a scene folder: TOML syntax, the models' types, then every reference.

All problems in a file are collected and raised together as one ``SceneError``: when some
items fail their type checks, the rest are still checked for references, so one run shows
both kinds. Every issue carries the line it is on (see ``toml_lines``).

    python -c "from xrstory.story import load_scene; print(load_scene('scenes/lighthouse').scene.title)"
"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

from xrstory.story.checks import LIST_TABLES, SceneTables, check_references
from xrstory.story.errors import SceneError, SceneIssue, closest
from xrstory.story.scene import Mood, Scene, SceneInfo
from xrstory.story.toml_lines import Path as FieldPath
from xrstory.story.toml_lines import format_path, line_of, parse_path, value_lines


def load_scene(folder: str | Path) -> Scene:
    """Read ``folder/scene.toml`` (or a path to the .toml itself) into a checked Scene."""
    path = Path(folder)
    toml_path = path if path.suffix == ".toml" else path / "scene.toml"
    if not toml_path.is_file():
        raise SceneError([SceneIssue(toml_path, "", "scene file not found")])
    try:
        text = toml_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SceneError([SceneIssue(toml_path, "", f"not UTF-8 text: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SceneError([SceneIssue(toml_path, "", f"invalid TOML: {exc}",
                                     line=int(m.group(1)) if m else None)]) from None
    lines = value_lines(text)
    issues: list[SceneIssue] = []
    try:
        scene, tables = Scene.model_validate(data), SceneTables()
    except ValidationError as exc:
        issues += [_type_issue(toml_path, data, err, lines) for err in exc.errors()]
        scene, tables = _partial_scene(data)
    scene.folder = str(toml_path.parent)
    for i in check_references(scene, toml_path, tables):
        issues.append(SceneIssue(i.file, i.path, i.message, line=line_of(lines, parse_path(i.path)),
                                 value=i.value, suggestion=i.suggestion))
    if issues:
        raise SceneError(_dedupe(issues))
    return scene


def _dedupe(issues: list[SceneIssue]) -> list[SceneIssue]:
    seen, out = set(), []
    for i in issues:
        if (i.path, i.message) not in seen:
            seen.add((i.path, i.message))
            out.append(i)
    return sorted(out, key=lambda i: i.line or 0)


# -- type errors -----------------------------------------------------------------------

def _clean_loc(data: object, loc: tuple, kind: str) -> FieldPath:
    """pydantic's ``loc`` without the union/validator tags it adds (e.g. "literal['box']"),
    which are not fields of the file: keep the parts that exist in ``data``."""
    out: list[str | int] = []
    node = data
    for n, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif n == len(loc) - 1 and kind == "missing" and isinstance(part, str):
            pass  # the missing field itself
        else:
            continue
        out.append(part)
    return tuple(out)


def _model_at(loc: FieldPath) -> type[BaseModel] | None:
    """The pydantic model that owns the last field of ``loc`` (for "did you mean" on a field);
    None when the last part is a free dict key (a mood or state name), not a field."""
    model: type[BaseModel] | None = Scene
    dict_key_next = False
    for part in loc[:-1]:
        if dict_key_next or isinstance(part, int):
            dict_key_next = False
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
        if model is None:
            return None
        dict_key_next = typing.get_origin(field.annotation) is dict
    return None if dict_key_next else model


def _model_in(ann) -> type[BaseModel] | None:
    stack = [ann]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
        stack.extend(typing.get_args(a))
    return None


def _type_issue(file: Path, data: dict, err: dict, lines) -> SceneIssue:
    kind = err["type"]
    loc = _clean_loc(data, err["loc"], kind)
    value = err.get("input")
    suggestion = None
    if kind == "extra_forbidden":
        owner = _model_at(loc)
        suggestion = closest(loc[-1], owner.model_fields) if owner else None
        msg, value = f"unknown field '{loc[-1]}'", loc[-1]
    elif kind == "missing":
        msg, value = f"missing required field '{loc[-1]}'", None
    else:
        shown = repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__
        msg = f"{err['msg']} (got {shown})"
        if kind in ("literal_error", "enum") and isinstance(value, str):
            suggestion = closest(value, re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", "")))
    return SceneIssue(file, format_path(loc), msg, line=line_of(lines, loc), value=value,
                      suggestion=suggestion)


def _partial_scene(data: dict) -> tuple[Scene, SceneTables]:
    """The items that pass their own type checks, so references can still be checked."""
    tables = SceneTables(complete=False)
    fields: dict[str, object] = {}
    for table in LIST_TABLES:
        item_model = _model_in(Scene.model_fields[table].annotation)
        raw = data.get(table, [])
        kept, tables.indices[table], tables.dropped_ids[table] = [], [], set()
        for i, item in enumerate(raw if isinstance(raw, list) else []):
            try:
                kept.append(item_model.model_validate(item))
                tables.indices[table].append(i)
            except ValidationError:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    tables.dropped_ids[table].add(item["id"])
        fields[table] = kept
    raw_moods = data.get("moods", {"default": {}})
    moods, tables.dropped_ids["moods"] = {}, set()
    for name, mood in (raw_moods.items() if isinstance(raw_moods, dict) else []):
        try:
            moods[name] = Mood.model_validate(mood)
        except ValidationError:
            tables.dropped_ids["moods"].add(name)
    fields["moods"] = moods
    try:
        fields["scene"] = SceneInfo.model_validate(data.get("scene"))
    except ValidationError:
        tables.scene_info_ok = False
    return Scene.model_construct(**fields), tables
