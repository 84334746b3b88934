"""Playthrough transcripts as extra training data.

A playthrough writes ``transcript.jsonl`` (one event or turn record per line). Lines that look
like a ``TurnRecord`` (``character``, ``say`` and ``player_text`` or ``heard_text``) become
corpus lines, provided they carry a story-state snapshot (``state``: the state *before* the
reply, either a full ``StoryState`` dump or the corpus form ``{beat, flags, prop_states}``).
Turns without a snapshot cannot be rendered in the runtime's prompt format (the allowed
triggers depend on the state), so they are skipped with a warning. Other event lines are
ignored. The resulting lines go through the same checks as ``dialogue.jsonl``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import ValidationError

from xrstory.train.dataset import DatasetError, DialogueLine

log = logging.getLogger(__name__)


def _is_turn(d: object) -> bool:
    return isinstance(d, dict) and "character" in d and "say" in d and ("player_text" in d or "heard_text" in d)


def read_transcript(path: Path) -> tuple[list[tuple[str, DialogueLine]], list[str]]:
    """(lines as ``("file:line", DialogueLine)``, warnings). Raises DatasetError on unreadable lines."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError([f"{path}: transcript file not found"])
    conversation = f"transcript:{path.parent.name}/{path.stem}"  # one playthrough = one conversation
    out: list[tuple[str, DialogueLine]] = []
    warnings: list[str] = []
    problems: list[str] = []
    turn = 0
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path}:{n}"
        if not raw.strip():
            continue  # event logs may end with a blank line; nothing to learn from it
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if not _is_turn(d):
            continue
        state = d.get("state")
        if not isinstance(state, dict) or "beat" not in state:
            warnings.append(f"{where}: turn of '{d.get('character')}' has no story-state snapshot; skipped")
            continue
        if d.get("fallback") or d.get("interrupted"):
            warnings.append(f"{where}: fallback or interrupted reply; skipped (not a model of good behaviour)")
            continue
        line = {
            "conversation": conversation, "turn": turn, "character": d["character"],
            "state": {"beat": state["beat"], "flags": list(state.get("flags", [])),
                      "prop_states": dict(state.get("prop_states", {}))},
            "player": d.get("heard_text") or d.get("player_text", ""),
            # the triggers that actually fired are the ones the story accepted
            "reply": {"say": d["say"], "emotion": d.get("emotion") or "neutral",
                      "triggers": list(d.get("fired", d.get("triggers", [])))},
        }
        try:
            out.append((where, DialogueLine.model_validate(line)))
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{where}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
            continue
        turn += 1
    if problems:
        raise DatasetError(problems)
    for w in warnings:
        log.warning("%s", w)
    return out, warnings
