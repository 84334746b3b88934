"""Playthrough scripts: a plain-text test plan for a scene (in the spirit of Yarn Spinner's).

One step per line; ``#`` starts a comment; blank lines are ignored. Example::

    # Warm the sailor, then ask for the lamp too early.
    seed 7
    look maren
    say to maren: It's freezing in here. Could you light the stove?
    expect reply from maren
    expect fired light_stove
    expect beat lamp_dark
    type to maren: Light the great lamp now!
    expect not fired light_lamp
    press cellar_door
    expect prop cellar_door open
    wait 1.5

Steps
  scene DIR                   the scene folder, relative to the script (default: the folder
                              above playthroughs/, or the script's own folder)
  seed N                      sampling seed for the model (default 0: greedy decoding)
  start SAVE.json             start from a save (path relative to the script)
  look TARGET | look X Y Z    turn the head to a prop or character, or a point (metres)
  say [to CHARACTER:] TEXT    spoken by the player voice through TTS, then real VAD and ASR
  type [to CHARACTER:] TEXT   the text-only variant (skips speech)
  audio FILE [to CHARACTER]   a recorded utterance (WAV/FLAC), through VAD and ASR
  interrupt [after S:] TEXT   speak S seconds (default 0.8) into the next character line
  press PROP                  point at a prop and press select (fires the player's trigger)
  wait SECONDS                let scene time pass
  expect reply [from CH] [matching /REGEX/]
  expect [not] fired TRIGGER | expect refused TRIGGER
  expect beat BEAT | expect [not] flag FLAG | expect prop PROP STATE
  expect ended | expect interrupted CHARACTER | expect no moderation
  expect [not] nudge [from CH] a nudge turn (the director's, no player line) happened since the
                              previous expectation (since the start when there is none)

Expectations check the most recent turn (reply, triggers) or the story state now.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TurnMark:
    """The newest turn number when an expectation was checked. The expectation before an
    ``expect nudge`` carries one in ``args["mark"]`` (written when it is checked) and the nudge
    expectation reads it as ``args["since"]``: the script runs in order, so it is always fresh."""

    turn: int = 0


class PlaythroughSyntaxError(Exception):
    def __init__(self, file: Path, line: int, message: str):
        self.file, self.line = file, line
        super().__init__(f"{file}:{line}: {message}")


@dataclass(frozen=True)
class Step:
    kind: str  # seed, start, look, say, type, audio, interrupt, press, wait, expect
    line: int  # 1-based line in the script
    text: str  # the source line, for reports
    args: dict = field(default_factory=dict)


@dataclass
class Playthrough:
    path: Path
    scene_dir: Path
    steps: list[Step]
    title: str = ""

    @property
    def name(self) -> str:
        return self.path.stem


_TO = re.compile(r"^to\s+([A-Za-z_][\w-]*)\s*:\s*(.+)$", re.S)
_EXPECT_KINDS = {"reply", "fired", "refused", "beat", "flag", "prop", "ended", "interrupted", "no", "nudge"}


def _parse_expect(words: str, file: Path, n: int) -> dict:
    negate = False
    rest = words.strip()
    if rest.startswith("not "):
        negate, rest = True, rest[4:].strip()
    head, _, tail = rest.partition(" ")
    tail = tail.strip()
    if head not in _EXPECT_KINDS:
        raise PlaythroughSyntaxError(file, n, f"unknown expectation '{head}' (one of: {', '.join(sorted(_EXPECT_KINDS))})")
    if head == "reply":
        m = re.fullmatch(r"(?:from\s+(?P<ch>[\w-]+))?\s*(?:matching\s+/(?P<re>.*)/(?P<flags>i?))?", tail)
        if not m:
            raise PlaythroughSyntaxError(file, n, "expected 'expect reply [from CHARACTER] [matching /REGEX/]'")
        pattern = None
        if m.group("re") is not None:
            try:
                pattern = re.compile(m.group("re"), re.I if m.group("flags") else 0)
            except re.error as exc:
                raise PlaythroughSyntaxError(file, n, f"bad regular expression: {exc}") from None
        return {"what": "reply", "negate": negate, "character": m.group("ch"), "pattern": pattern}
    if head in ("fired", "refused", "beat", "flag", "interrupted"):
        if not tail or " " in tail:
            raise PlaythroughSyntaxError(file, n, f"'expect {head}' takes exactly one id")
        return {"what": head, "negate": negate, "id": tail}
    if head == "prop":
        parts = tail.split()
        if len(parts) != 2:
            raise PlaythroughSyntaxError(file, n, "expected 'expect prop PROP STATE'")
        return {"what": "prop", "negate": negate, "id": parts[0], "state": parts[1]}
    if head == "ended":
        return {"what": "ended", "negate": negate}
    if head == "nudge":
        m = re.fullmatch(r"(?:from\s+(?P<ch>[\w-]+))?", tail)
        if not m:
            raise PlaythroughSyntaxError(file, n, f"expected 'expect nudge [from CHARACTER]', got 'expect {rest}'")
        return {"what": "nudge", "negate": negate, "character": m.group("ch"), "since": TurnMark()}
    if tail != "moderation":
        raise PlaythroughSyntaxError(file, n, "expected 'expect no moderation'")
    return {"what": "moderation", "negate": True}


MAX_WAIT_S = 3600.0  # an hour of scene time: anything longer is a typo, not a test
MAX_INTERRUPT_AFTER_S = 60.0
MAX_COORD_M = 1e4  # a look point ten kilometres away is still a point; beyond is a typo
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")


def _number(text: str, what: str, file: Path, n: int, low: float, high: float) -> float:
    """A plain decimal number in [low, high]: "inf", "nan", "1e400" and "1.2.3" are refused."""
    if not _NUMBER.fullmatch(text) or not low <= float(text) <= high:
        raise PlaythroughSyntaxError(file, n, f"{what} (a plain number from {low:g} to {high:g}), got '{text}'")
    return float(text)


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlaythroughSyntaxError(path, 0, "file not found") from None
    except OSError as exc:
        raise PlaythroughSyntaxError(path, 0, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PlaythroughSyntaxError(path, line, f"not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                                                 f"{exc.start})") from None


def check_inputs(pt: Playthrough, scene) -> None:
    """The files a parsed script names, checked before anything loads: each ``start`` save
    against ``scene`` (unknown beat, prop, out-of-range values), each ``audio`` file (its
    header's rate, channels and length, then its samples). ``PlaythroughSyntaxError`` naming the line otherwise."""
    from xrstory.story.saves import SaveError, load_state
    from xrstory.voice.audio import AudioError, read_audio

    for step in pt.steps:
        try:
            if step.kind == "start":
                load_state(step.args["save"], scene)
            elif step.kind == "audio":
                read_audio(step.args["file"])  # header limits first, then the samples
        except (SaveError, AudioError) as exc:
            raise PlaythroughSyntaxError(pt.path, step.line, str(exc)) from None


def parse_playthrough(path: str | Path, scene_dir: str | Path | None = None) -> Playthrough:
    """Parse a script. The scene is the folder above ``playthroughs/`` unless given."""
    path = Path(path)
    lines = _read_lines(path)
    steps: list[Step] = []
    title = ""
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if not title and not steps:
                title = line.lstrip("# ").strip()
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        args: dict
        if kind == "scene":
            if not rest:
                raise PlaythroughSyntaxError(path, n, "scene needs a folder")
            scene_dir = scene_dir or (path.parent / rest).resolve()
            continue
        if kind == "seed":
            if not (rest.isascii() and rest.isdigit()) or len(rest) > 10:
                raise PlaythroughSyntaxError(path, n, f"seed must be a non-negative integer below 10**10, got '{rest}'")
            args = {"seed": int(rest)}
        elif kind == "start":
            if not rest:
                raise PlaythroughSyntaxError(path, n, "start needs a save file")
            args = {"save": (path.parent / rest).resolve()}
        elif kind == "look":
            parts = rest.split()
            if len(parts) == 1:
                args = {"target": parts[0]}
            elif len(parts) == 3:
                args = {"point": tuple(_number(p, f"look takes a target id or X Y Z: {'XYZ'[i]}", path, n, -MAX_COORD_M, MAX_COORD_M)
                                       for i, p in enumerate(parts))}
            else:
                raise PlaythroughSyntaxError(path, n, "look takes a target id or X Y Z")
        elif kind in ("say", "type"):
            m = _TO.match(rest)
            to, text = (m.group(1), m.group(2).strip()) if m else (None, rest)
            if not text:
                raise PlaythroughSyntaxError(path, n, f"'{kind}' needs something to say")
            args = {"text": text, "to": to}
        elif kind == "audio":
            parts = shlex.split(rest)
            if not parts:
                raise PlaythroughSyntaxError(path, n, "audio needs a file")
            to = None
            if len(parts) == 3 and parts[1] == "to":
                to = parts[2]
            elif len(parts) != 1:
                raise PlaythroughSyntaxError(path, n, "expected 'audio FILE [to CHARACTER]'")
            args = {"file": (path.parent / parts[0]).resolve(), "to": to}
        elif kind == "interrupt":
            m = re.match(r"^after\s+(\S*?)\s*:\s*(.*)$", rest, re.S)
            if m:
                delay = _number(m.group(1), "interrupt after takes seconds", path, n, 0, MAX_INTERRUPT_AFTER_S)
                text = m.group(2).strip()
            elif re.match(r"^after\b", rest):
                raise PlaythroughSyntaxError(path, n, f"expected 'interrupt after SECONDS: TEXT', got 'interrupt {rest}'")
            else:
                delay, text = 0.8, rest
            if not text:
                raise PlaythroughSyntaxError(path, n, "interrupt needs something to say")
            args = {"text": text, "after_s": delay}
        elif kind == "press":
            if not rest or " " in rest:
                raise PlaythroughSyntaxError(path, n, "press takes one prop id")
            args = {"target": rest}
        elif kind == "wait":
            args = {"seconds": _number(rest, "wait takes seconds", path, n, 0, MAX_WAIT_S)}
        elif kind == "expect":
            args = _parse_expect(rest, path, n)
            if args["what"] == "nudge":
                previous = next((s for s in reversed(steps) if s.kind == "expect"), None)
                if previous is not None:
                    previous.args["mark"] = args["since"]
        else:
            raise PlaythroughSyntaxError(
                path, n, f"unknown step '{kind}' (steps: seed, start, look, say, type, audio, "
                         "interrupt, press, wait, expect, scene)")
        steps.append(Step(kind, n, line, args))
    if not any(s.kind in ("say", "type", "audio", "press") for s in steps):
        raise PlaythroughSyntaxError(path, 0, "a playthrough needs at least one say, type, audio or press step")
    scene = Path(scene_dir) if scene_dir else (path.parent.parent if path.parent.name == "playthroughs" else path.parent)
    return Playthrough(path=path, scene_dir=scene, steps=steps, title=title)
