"""What a character's turn produces: streamed sentences, then one committed ``Reply``.

Triggers are only ever read from a complete ``Reply`` (never from partial tokens); the
story layer checks them again when they are applied.
"""

from __future__ import annotations

import json
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


# The one canonical serialisation of a reply: exactly what the constrained decoder emits
# (keys triggers, say, emotion in that order, see schema.py for why; ", " and ": " separators; UTF-8, not \u escapes).
# Fine-tuning uses it as the assistant target text.
JSON_ITEM_SEPARATOR = ", "
JSON_KEY_SEPARATOR = ": "


def reply_to_json(reply: Reply) -> str:
    return json.dumps({"triggers": list(reply.triggers), "say": reply.say, "emotion": reply.emotion},
                      ensure_ascii=False, separators=(JSON_ITEM_SEPARATOR, JSON_KEY_SEPARATOR))


def reply_from_json(text: str, character: str) -> Reply:
    """Parse the model's complete output; raises ValueError naming what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"reply of '{character}' is not JSON ({exc}): {text[:200]!r}") from None
    if not isinstance(data, dict) or not isinstance(data.get("say"), str):
        raise ValueError(f"reply of '{character}' lacks a string 'say': {text[:200]!r}")
    triggers = data.get("triggers", [])
    if not isinstance(triggers, list) or not all(isinstance(t, str) for t in triggers):
        raise ValueError(f"reply of '{character}': 'triggers' must be a list of ids, got {triggers!r}")
    return Reply(character=character, say=data["say"], emotion=str(data.get("emotion", "neutral")),
                 triggers=tuple(dict.fromkeys(triggers)))  # duplicates dropped, order kept
