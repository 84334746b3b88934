"""Load and check a scene folder: TOML syntax, the models' types, then every reference.

All problems in a file are collected and raised together as one ``SceneError``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pydantic import ValidationError

from xrstory.story.checks import check_references
from xrstory.story.errors import SceneError, SceneIssue, closest, locate_line
from xrstory.story.scene import Scene


def _loc_to_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: tuple):
    """The pydantic model class that owns the last field of ``loc`` (for suggestions)."""
    model = Scene
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        model = _unwrap_model(ann)
    return model


def _unwrap_model(ann):
    from pydantic import BaseModel

    stack = [ann]
    while stack:
        a = stack.pop()
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
        stack.extend(getattr(a, "__args__", ()) or ())
    return None


def load_scene(folder: str | Path) -> Scene:
    """Read ``folder/scene.toml`` (or a path to the .toml itself) into a checked Scene."""
    path = Path(folder)
    toml_path = path if path.suffix == ".toml" else path / "scene.toml"
    if not toml_path.is_file():
        raise SceneError([SceneIssue(toml_path, "", "scene file not found")])
    text = toml_path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SceneError(
            [SceneIssue(toml_path, "", f"invalid TOML: {exc}", line=int(m.group(1)) if m else None)]
        ) from None
    try:
        scene = Scene.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = err["loc"]
            fpath = _loc_to_path(loc)
            value = err.get("input")
            suggestion = None
            if err["type"] == "extra_forbidden":
                owner = _model_at(loc)
                if owner is not None:
                    suggestion = closest(loc[-1], owner.model_fields)
                msg = "unknown field"
                value = loc[-1]
            elif err["type"] == "missing":
                msg = "missing required field"
                value = None
            else:
                shown = value if isinstance(value, str | int | float | bool) else None
                msg = err["msg"] + (f" (got {shown!r})" if shown is not None else "")
            line = locate_line(text, fpath if err["type"] != "missing" else _loc_to_path(loc[:-1]),
                               value if isinstance(value, str) else None)
            issues.append(SceneIssue(toml_path, fpath, msg, line=line, value=value,
                                     suggestion=suggestion))
        raise SceneError(issues) from None
    scene.folder = str(toml_path.parent)
    problems = check_references(scene, toml_path)
    if problems:
        raise SceneError([
            SceneIssue(i.file, i.path, i.message, line=locate_line(text, i.path, i.value),
                       value=i.value, suggestion=i.suggestion)
            for i in problems
        ])
    return scene
