"""Author-facing errors: each names the file, the line, the field path and the bad value,
and suggests the closest valid name for a misspelt reference.

``SceneError`` carries every ``SceneIssue`` found in one file, so an author fixes them all
in one pass rather than one per run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SceneIssue:
    file: Path
    path: str  # field path, e.g. "beats[2].allowed_triggers[0]"; "" for the whole file
    message: str
    line: int | None = None  # 1-based line in ``file``
    value: object = None  # the offending value as written (None when it is missing)
    suggestion: str | None = None  # the closest valid name, for a misspelt reference

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


def closest(name: object, candidates: Iterable[object]) -> str | None:
    """The valid name nearest to a misspelt ``name``, or None when nothing is close."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return matches[0] if matches else None


class SaveError(ValueError):
    """A save that cannot be read or used: missing, torn, invalid, from a newer xrstory, or not
    fitting the scene (unknown beat, prop, state; out-of-range values)."""
