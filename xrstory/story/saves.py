"""Atomic, versioned saves of a ``StoryState``.

A save is written to a temporary file in the same folder, flushed and fsync'd, renamed
over the old one, and the folder fsync'd: a process killed at any point leaves either the
previous save or the new one, never a torn file (tests/test_story_state.py kills a writer
mid-save many times to check). A temporary file left by a killed writer carries its pid in
its name and is removed by the next save once that process is gone.

Newer format versions are refused with a clear message; older ones are migrated step by
step (``MIGRATIONS``).

    from xrstory.story import save_state, load_state
    save_state(story.state, "saves/slot1.json"); state = load_state("saves/slot1.json")
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from xrstory.story.errors import SaveError
from xrstory.story.save_checks import check_state
from xrstory.story.state import SAVE_VERSION, StoryState


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files of ``path`` whose writer process no longer exists."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
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


MIGRATIONS = {1: _migrate_1_to_2}  # version n -> function returning the dict at version n+1


def load_state(path: str | Path, scene=None) -> StoryState:
    """Read a save, migrating older versions; raises ``SaveError`` naming the file. With
    ``scene``, the save is also checked against it (``save_checks.check_state``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SaveError(f"{path}: save file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SaveError(f"{path}: not a valid save ({exc})") from None
    except RecursionError:
        raise SaveError(f"{path}: not a valid save (nested too deeply)") from None
    except OSError as exc:
        raise SaveError(f"{path}: cannot read the save ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise SaveError(f"{path}: not a valid save (expected a JSON object, got {type(data).__name__})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SaveError(f"{path}: 'version' is missing or not a positive integer (got {version!r})")
    if version > SAVE_VERSION:
        raise SaveError(f"{path}: save format version {version} is newer than this xrstory "
                        f"understands ({SAVE_VERSION}); upgrade xrstory to load it")
    try:
        while version < SAVE_VERSION:
            data = MIGRATIONS[version](data)
            version = data["version"]
    except (AttributeError, TypeError, KeyError) as exc:  # a v1 save with the wrong shapes
        raise SaveError(f"{path}: invalid save of version {version} ({exc})") from None
    try:
        state = StoryState.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:20])
        raise SaveError(f"{path}: invalid save: {where}") from None
    if scene is not None:
        check_state(scene, state, str(path))
    return state
