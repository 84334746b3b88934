"""Turn bookkeeping: folds the session's events into one ``TurnRecord`` per exchange, with the
timestamp of every stage (end of speech, transcript, first token, first sentence, first audio)."""

from __future__ import annotations

from xrstory.playthrough.results import TurnRecord


class TurnLedger:
    def __init__(self) -> None:
        self.turns: dict[int, TurnRecord] = {}
        self.line_turn: dict[int, int] = {}  # mixer line id -> turn

    def open(self, turn: int, step_line: int, player_text: str, heard: str, character: str, spoken: bool,
             t_speech_end: float | None, t_heard: float) -> TurnRecord:
        rec = TurnRecord(turn=turn, step_line=step_line, player_text=player_text, heard_text=heard,
                         character=character, spoken=spoken, t_speech_end=t_speech_end, t_heard=t_heard)
        self.turns[turn] = rec
        return rec

    def get(self, turn: int) -> TurnRecord | None:
        return self.turns.get(turn)

    def latest(self) -> TurnRecord | None:
        return self.turns[max(self.turns)] if self.turns else None

    def ordered(self) -> list[TurnRecord]:
        return [self.turns[k] for k in sorted(self.turns)]
