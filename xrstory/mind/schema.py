"""The JSON Schema a reply must follow, built per turn from the triggers allowed *now*.

Keys are ordered say -> emotion -> triggers so ``say`` can stream before triggers are known.
"""

from __future__ import annotations

from xrstory.story.scene import EMOTIONS

MAX_SAY_CHARS = 400


def reply_schema(allowed_triggers: list[str], max_triggers: int = 2) -> dict:
    """Schema of ``{"say", "emotion", "triggers"}``; with nothing allowed, triggers must be []."""
    triggers: dict = {"type": "array", "maxItems": 0, "items": {"type": "string"}}
    if allowed_triggers:
        triggers = {"type": "array", "items": {"type": "string", "enum": list(allowed_triggers)},
                    "maxItems": min(max_triggers, len(allowed_triggers)), "uniqueItems": True}
    return {
        "type": "object",
        "properties": {
            "say": {"type": "string", "minLength": 1, "maxLength": MAX_SAY_CHARS},
            "emotion": {"type": "string", "enum": list(EMOTIONS)},
            "triggers": triggers,
        },
        "required": ["say", "emotion", "triggers"],
        "additionalProperties": False,
    }
