"""What a character's turn produces: streamed sentences, then one committed ``Reply``.

Triggers are only ever read from a complete ``Reply`` (never from partial tokens); the
story layer checks them again when they are applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    character: str
    say: str
    emotion: str = "neutral"
    triggers: tuple[str, ...] = ()
    fallback: bool = False  # True when the model's output was replaced by an in-character line
    fallback_reason: str = ""  # why (cut at the token limit, empty say, moderation, ...)


@dataclass(frozen=True)
class ReplyStarted:
    character: str
    t: float  # time.monotonic() of the first generated token


@dataclass(frozen=True)
class Sentence:
    """A complete sentence of ``say``, released while the rest is still being generated."""

    character: str
    text: str
    index: int
    t: float


@dataclass
class TurnTimings:
    """Milliseconds from the start of the turn (prompt handed to the model)."""

    prefill_ms: float = 0.0
    first_token_ms: float = 0.0
    first_sentence_ms: float = 0.0
    total_ms: float = 0.0
    tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    extra: dict = field(default_factory=dict)
