"""What a playthrough produced: per-turn records, failures, frame times, captures.

Plain dataclasses, written to ``metrics.json`` and ``transcript.jsonl`` and read by the report.
The per-turn record and the capture are the session's own (``runtime.records``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xrstory.runtime.records import Capture, TurnRecord


@dataclass
class Failure:
    step_line: int
    step_text: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"line {self.step_line}: {self.step_text}\n    expected: {self.expected}\n    actual:   {self.actual}"


@dataclass
class PlaythroughResult:
    name: str
    title: str
    script: str
    scene: str
    turns: list[TurnRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    frame_ms_idle: list[float] = field(default_factory=list)
    frame_ms_busy: list[float] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
    audio_path: str | None = None
    ended: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


__all__ = ["Capture", "Failure", "PlaythroughResult", "TurnRecord"]
