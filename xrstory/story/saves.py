"""Atomic, versioned saves of a ``StoryState``.

A save is written to a temporary file in the same folder, flushed and fsync'd, renamed
over the old one, and the folder fsync'd: a process killed at any point leaves either the
previous save or the new one, never a torn file. Newer versions are refused; older ones
are migrated step by step.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from xrstory.story.state import SAVE_VERSION, StoryState


class SaveError(Exception):
    pass


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_state(state: StoryState, path: str | Path) -> None:
    write_atomic(path, state.to_json())


def _migrate_1_to_2(data: dict) -> dict:
    # v1 (pre-release) kept flags as {name: bool} and had no mood or light levels.
    flags = data.get("flags", {})
    if isinstance(flags, dict):
        data["flags"] = [k for k, v in flags.items() if v]
    data.setdefault("mood", "default")
    data.setdefault("light_levels", {})
    data["version"] = 2
    return data


MIGRATIONS = {1: _migrate_1_to_2}


def load_state(path: str | Path) -> StoryState:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SaveError(f"{path}: save file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SaveError(f"{path}: not a valid save ({exc})") from None
    version = data.get("version")
    if not isinstance(version, int):
        raise SaveError(f"{path}: 'version' is missing or not an integer")
    if version > SAVE_VERSION:
        raise SaveError(f"{path}: save format version {version} is newer than this xrstory "
                        f"understands ({SAVE_VERSION}); upgrade xrstory to load it")
    while version < SAVE_VERSION:
        data = MIGRATIONS[version](data)
        version = data["version"]
    try:
        return StoryState.model_validate(data)
    except Exception as exc:
        raise SaveError(f"{path}: invalid save: {exc}") from None
