"""The JSON Schema a reply must follow, built per turn from the triggers allowed *now*.

Keys are ordered triggers -> say -> emotion: the model decides what it does first, then says
it. A small model fine-tuned with the decision last learnt nothing about deciding (with the gold
``say`` in context, the triggers are trivially predictable) and fired whatever was allowed; with
the decision first, the loss on those few tokens is the decision itself and ``say`` is written
to match it. ``say`` still streams sentence by sentence; it starts 1-3 sampled tokens later.
"""

from __future__ import annotations

from xrstory.story.scene import EMOTIONS

MAX_SAY_CHARS = 400


def reply_schema(allowed_triggers: list[str], max_triggers: int = 2) -> dict:
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
