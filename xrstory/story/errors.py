"""Author-facing errors: each names the file, the line where we can find it, the field
path and the bad value, and suggests the closest valid name for a misspelt reference."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SceneIssue:
    file: Path
    path: str  # field path, e.g. "beats[2].allowed_triggers[0]"; "" for the whole file
    message: str
    line: int | None = None
    value: object = None
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        text = f"{where}: {self.path + ': ' if self.path else ''}{self.message}"
        if self.suggestion:
            text += f" — did you mean '{self.suggestion}'?"
        return text


class SceneError(Exception):
    """All problems found in one scene, reported together."""

    def __init__(self, issues: list[SceneIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def closest(name: str, candidates) -> str | None:
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return matches[0] if matches else None


_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")


def locate_line(text: str, path: str, value: object = None) -> int | None:
    """Best-effort line number of a field path in a TOML text.

    tomllib gives no positions, so we walk the text: ``[[table]]`` headers are counted to
    find the n-th array entry, then the first key of the path's remaining parts (or the bad
    value itself) is searched within that entry's block.
    """
    lines = text.splitlines()
    parts = [m.groups() for m in _PATH_PART.finditer(path)]
    if not parts:
        return None
    start, end = 0, len(lines)
    first, index = parts[0]
    rest = parts[1:]
    if index is not None:
        header = re.compile(rf"^\s*\[\[\s*{re.escape(first)}\s*\]\]")
        hits = [i for i, line in enumerate(lines) if header.match(line)]
        if int(index) < len(hits):
            start = hits[int(index)]
            later = [i for i in range(start + 1, len(lines)) if re.match(r"^\s*\[", lines[i])
                     and not re.match(rf"^\s*\[+\s*{re.escape(first)}\.", lines[i])]
            end = later[0] if later else len(lines)
        else:
            return None
    else:
        rest = parts
    # search deepest key first, then the value, within the block
    needles = []
    if value is not None and isinstance(value, str | int | float) and str(value):
        needles.append(re.compile(rf"['\"]?{re.escape(str(value))}['\"]?"))
    for key, _ in reversed(rest):
        needles.append(re.compile(rf"(^|[\s{{,.])\b{re.escape(key)}\s*="))
        needles.append(re.compile(rf"^\s*\[+[^\]]*\b{re.escape(key)}\b"))
    for needle in needles:
        for i in range(start, end):
            if needle.search(lines[i]):
                return i + 1
    return start + 1 if index is not None else None
