"""Line numbers for every value of a TOML document, keyed by field path.

``tomllib`` parses but keeps no positions, so author errors could not say where a bad value
is. This scanner walks the same text once (after ``tomllib`` has accepted it, so it may
assume the text is valid TOML) and records the line where each key, table header, inline
table entry and array element starts:

    >>> lines = value_lines('[[beats]]\\nid = "a"\\nallowed = [\\n  "x",\\n  "y",\\n]\\n')
    >>> lines[("beats", 0, "allowed", 1)]
    5

``line_of(lines, path)`` answers for the deepest prefix of ``path`` that the text holds, so a
missing field is placed at its table's header. Paths use str keys and int list indices, the
same shape as pydantic's error ``loc``.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


class _Scanner:
    def __init__(self, text: str):
        self.text = text
        self.i = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.array_tables: dict[Path, int] = {}  # resolved path of a [[table]] -> entries so far

    # -- low-level ------------------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.text[self.i:self.i + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.i, self.i + n)
        self.i += n

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces, tabs, comments and (when ``newlines``) line breaks."""
        while self.i < len(self.text):
            c = self.text[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.text.find("\n", self.i)
                self.advance((end if end >= 0 else len(self.text)) - self.i)
            else:
                return

    def record(self, path: Path, line: int) -> None:
        self.lines.setdefault(path, line)

    # -- keys and strings -------------------------------------------------------------
    def string(self) -> str:
        t = self.text
        for quote in ('"""', "'''"):
            if t.startswith(quote, self.i):
                end = t.find(quote, self.i + 3)
                while t.startswith(quote[0], end + 3):  # up to two quotes may close the body
                    end += 1
                value = t[self.i + 3:end]
                self.advance(end + 3 - self.i)
                return value
        quote = t[self.i]
        j, out = self.i + 1, []
        while t[j] != quote:
            if quote == '"' and t[j] == "\\":
                out.append(_ESCAPES.get(t[j + 1], t[j + 1]))
                j += 2
            else:
                out.append(t[j])
                j += 1
        self.advance(j + 1 - self.i)
        return "".join(out)

    def key(self) -> list[str]:
        parts = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                m = _BARE_KEY.match(self.text, self.i)
                parts.append(m.group(0))
                self.advance(m.end() - self.i)
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    # -- values ---------------------------------------------------------------------------
    def value(self, path: Path) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_blank(newlines=True)
                if self.peek() == "]":
                    self.advance()
                    return
                self.record(path + (index,), self.line)
                self.value(path + (index,))
                index += 1
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.advance()
        elif c == "{":
            self.advance()
            while True:
                self.skip_blank(newlines=False)
                if self.peek() == "}":
                    self.advance()
                    return
                self.key_value(path)
                self.skip_blank(newlines=False)
                if self.peek() == ",":
                    self.advance()
        else:  # number, bool, date: runs to a delimiter
            m = re.compile(r"[^,\]}\n#]*").match(self.text, self.i)
            self.advance(len(m.group(0).rstrip()))

    def key_value(self, table: Path) -> None:
        line = self.line
        keys = self.key()
        for n in range(1, len(keys) + 1):  # dotted keys name each level on this line
            self.record(table + tuple(keys[:n]), line)
        self.skip_blank(newlines=False)
        self.advance()  # '='
        self.skip_blank(newlines=False)
        self.value(table + tuple(keys))

    # -- tables ---------------------------------------------------------------------------
    def resolve(self, keys: list[str]) -> Path:
        """A header's path, with the current index of every array of tables it passes."""
        path: Path = ()
        for k in keys:
            path += (k,)
            if path in self.array_tables:
                path += (self.array_tables[path] - 1,)
        return path

    def document(self) -> dict[Path, int]:
        table: Path = ()
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.text):
                return self.lines
            line = self.line
            if self.peek(2) == "[[":
                self.advance(2)
                keys = self.key()
                self.advance(2)
                base = self.resolve(keys[:-1]) + (keys[-1],)
                self.array_tables[base] = self.array_tables.get(base, 0) + 1
                table = base + (self.array_tables[base] - 1,)
                self.record(base, line)
                self.record(table, line)
            elif self.peek() == "[":
                self.advance()
                keys = self.key()
                self.advance()
                table = self.resolve(keys)
                for n in range(1, len(table) + 1):
                    self.record(table[:n], line)
            else:
                self.key_value(table)


def value_lines(text: str) -> dict[Path, int]:
    """Map every field path in a valid TOML text to the 1-based line where it starts."""
    return _Scanner(text).document()


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of its deepest prefix that the text holds (None if none)."""
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def parse_path(text: str) -> Path:
    """``"beats[2].allowed_triggers[0]"`` -> ``("beats", 2, "allowed_triggers", 0)``."""
    return tuple(int(m.group(2)) if m.group(2) is not None else m.group(1)
                 for m in _PART.finditer(text))


def format_path(path: Path) -> str:
    """The inverse of ``parse_path``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out
