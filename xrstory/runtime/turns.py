"""Turn bookkeeping: folds the session's events into one ``TurnRecord`` per exchange, with the
timestamp of every stage (end of speech, transcript, first token, first sentence, first audio).

A nudge turn (the director's, no player line) is a record whose ``player_text`` starts with
``NUDGE_PREFIX`` and whose ``t_heard`` is None: nothing the player said starts its clock, so it
has no voice-to-voice figure (its model timings are in the ``MindTimings`` event)."""

from __future__ import annotations

from xrstory.runtime.records import TurnRecord

NUDGE_PREFIX = "(nudge: "  # player_text of a nudge turn: "(nudge: <director's reason>)"
NUDGE_STAND_IN = "(The player says nothing for a while.)"  # the model's "player line" in a nudge turn


def is_nudge(rec: TurnRecord) -> bool:
    """A nudge turn, not a typed line that happens to start with the prefix (those have t_heard)."""
    return rec.t_heard is None and rec.player_text.startswith(NUDGE_PREFIX)


class TurnLedger:
    def __init__(self) -> None:
        self.turns: dict[int, TurnRecord] = {}
        self.line_turn: dict[int, int] = {}  # mixer line id -> turn

    def open(self, turn: int, step_line: int, player_text: str, heard: str, character: str, spoken: bool,
             t_speech_end: float | None, t_heard: float | None, t_endpoint: float | None = None) -> TurnRecord:
        rec = TurnRecord(turn=turn, step_line=step_line, player_text=player_text, heard_text=heard,
                         character=character, spoken=spoken, t_speech_end=t_speech_end, t_heard=t_heard,
                         t_endpoint=t_endpoint)
        self.turns[turn] = rec
        return rec

    def open_nudge(self, turn: int, character: str, reason: str) -> TurnRecord:
        return self.open(turn, 0, f"{NUDGE_PREFIX}{reason})", NUDGE_STAND_IN, character, False, None, None)

    def get(self, turn: int) -> TurnRecord | None:
        return self.turns.get(turn)

    def latest(self) -> TurnRecord | None:
        return self.turns[max(self.turns)] if self.turns else None

    def ordered(self) -> list[TurnRecord]:
        return [self.turns[k] for k in sorted(self.turns)]
