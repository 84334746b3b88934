"""The shape of a reply, built per turn from the triggers allowed *now*: ONE source for every engine.

Keys are ordered triggers -> say -> emotion: the model decides what it does first, then says
it. A small model fine-tuned with the decision last learnt nothing about deciding (with the gold
``say`` in context, the triggers are trivially predictable) and fired whatever was allowed; with
the decision first, the loss on those few tokens is the decision itself and ``say`` is written
to match it. ``say`` still streams sentence by sentence; it starts 1-3 sampled tokens later.

Two renderings of the same rules:
- ``reply_lark``: a ``%llguidance`` Lark grammar, what the torch decoder and the llama.cpp
  engine both enforce. It spells out every duplicate-free trigger list up to the cap, so
  ``["a", "a", ...]`` cannot be produced at all (llguidance ignores JSON Schema's
  ``uniqueItems``; the base model otherwise loops on one trigger until the token limit).
- ``reply_schema``: the JSON Schema sent to remote OpenAI-compatible servers (vLLM,
  llama-server), whose structured output speaks JSON Schema; their replies are validated again.
"""

from __future__ import annotations

import json
from itertools import permutations

from xrstory.story.scene import EMOTIONS

MAX_SAY_CHARS = 400
MAX_TRIGGERS = 2


def reply_schema(allowed_triggers: list[str], max_triggers: int = MAX_TRIGGERS) -> dict:
    """Schema of ``{"triggers", "say", "emotion"}``; with nothing allowed, triggers must be []."""
    triggers: dict = {"type": "array", "maxItems": 0, "items": {"type": "string"}}
    if allowed_triggers:
        triggers = {"type": "array", "items": {"type": "string", "enum": list(allowed_triggers)},
                    "maxItems": min(max_triggers, len(allowed_triggers)), "uniqueItems": True}
    return {
        "type": "object",
        "properties": {
            "triggers": triggers,
            "say": {"type": "string", "minLength": 1, "maxLength": MAX_SAY_CHARS},
            "emotion": {"type": "string", "enum": list(EMOTIONS)},
        },
        "required": ["triggers", "say", "emotion"],
        "additionalProperties": False,
    }


def trigger_lists(allowed_triggers: list[str], max_triggers: int = MAX_TRIGGERS) -> list[tuple[str, ...]]:
    """Every list the reply may carry: empty, then each ordered duplicate-free choice up to the cap."""
    out: list[tuple[str, ...]] = [()]
    for n in range(1, min(max_triggers, len(allowed_triggers)) + 1):
        out += list(permutations(dict.fromkeys(allowed_triggers), n))
    return out


def _lit(text: str) -> str:
    """A Lark string literal matching ``text`` exactly (json.dumps escapes quotes and backslashes)."""
    return json.dumps(text)


# what every reply begins with, whatever it decides: the llama.cpp engine writes it into the prompt
# (an assistant prefill) instead of generating it one forced token per decode step
REPLY_OPENING = '{"triggers":'
_START = "start: " + _lit('{"triggers": [')


def split_opening(lark: str) -> tuple[str, str]:
    """(the text every reply of ``lark`` starts with, the grammar of the rest), for a grammar from
    ``reply_lark``; ("", ``lark``) for any other grammar. The rest is the same language without
    its opening, so a reply is ``opening + what the rest's grammar accepts``."""
    head, sep, tail = lark.partition("\n" + _START)
    if not sep:
        return "", lark
    return REPLY_OPENING, head + "\nstart: " + _lit(" [") + tail


def reply_lark(allowed_triggers: list[str], max_triggers: int = MAX_TRIGGERS,
               max_say_chars: int = MAX_SAY_CHARS) -> str:
    """The ``%llguidance`` Lark grammar of a reply, serialised exactly as ``reply.reply_to_json``
    writes it (``", "`` and ``": "`` separators, no free whitespace, keys in schema order)."""
    lists = [", ".join(json.dumps(t) for t in combo) for combo in trigger_lists(allowed_triggers, max_triggers)]
    say = json.dumps({"type": "string", "minLength": 1, "maxLength": max_say_chars})
    return "\n".join([
        "%llguidance {}",
        "start: " + _lit('{"triggers": [') + " triggers " + _lit('], "say": ') + " say "
        + _lit(', "emotion": "') + " emotion " + _lit('"}'),
        "triggers: " + " | ".join(_lit(s) if s else '""' for s in lists),
        f"say: %json {say}",
        "emotion: " + " | ".join(_lit(e) for e in EMOTIONS),
        "",
    ])
