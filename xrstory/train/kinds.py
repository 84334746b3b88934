"""The kinds of turn a narrative corpus teaches, and what each kind demands of a reply.

Every line of ``corpus/*/dialogue.jsonl`` and every curriculum turn carries one ``kind``; the
story rules check it (``check_kind``) and the narrative metrics group by it
(``xrstory.train.narrative_metrics``).

- FIRE kinds: the player asks for something the story allows this character now; the reply names
  it. ``plain`` ("Can you light the stove?"), ``indirect`` ("He's freezing..."), ``misspelt``
  ("lite the stove"), ``asr`` (what Whisper makes of speech: "like the stove"), ``gaze`` (no name
  said; the character the player looks at answers), ``redirect`` ("never mind the tea, light the
  stove": fires the second, not the ``asked`` first, though both are allowed).
- HOLD kinds: nothing may fire although something is allowed. ``small_talk``, ``lore`` (a
  question the character's knowledge answers), ``prop_state`` (about a prop and how it is now),
  ``not_yet`` (asks for a trigger of this character whose time has not come), ``negation``
  ("wait, don't light it yet": the asked trigger IS allowed), ``wrong_character`` (asks this
  character for what only another may do).
- REFUSE kinds: ``disallowed`` (something the story has no trigger for, or one already done)
  and ``injection`` (words that try to change the rules); refused in character.
- ``reaction``: the story moved (a trigger fired, an ending came); the character answers how it
  feels, nothing fires.
"""

from __future__ import annotations

from xrstory.story.scene import PLAYER
from xrstory.story.state import Story

FIRE_KINDS = ("plain", "indirect", "misspelt", "asr", "gaze", "redirect")
HOLD_KINDS = ("small_talk", "lore", "prop_state", "not_yet", "negation", "wrong_character")
REFUSE_KINDS = ("disallowed", "injection")
OTHER_KINDS = ("reaction",)
KINDS = FIRE_KINDS + HOLD_KINDS + REFUSE_KINDS + OTHER_KINDS
# the kinds the "held back" rate is measured on
HELD_BACK_KINDS = ("small_talk", "not_yet", "wrong_character", "negation", "lore", "prop_state")


def check_kind(story: Story, character: str, kind: str, triggers: list[str], asked: str | None) -> str | None:
    """Why a turn of ``kind`` with these reply ``triggers`` breaks the story rules, or None.

    ``story`` is in the state before the reply. ``asked`` is the trigger the player asked for
    in a not-firing turn ("" or None when it is none of the story's).
    """
    allowed = story.allowed_triggers(character)
    if kind not in KINDS:
        return f"unknown kind '{kind}' (one of {', '.join(KINDS)})"
    bad = [t for t in triggers if t not in allowed]
    if bad:
        return f"fires {bad}, not allowed for '{character}' now ({story.refusal(bad[0], character)})"
    if kind == "redirect":
        if not asked or asked in triggers or asked not in allowed:
            return f"a redirect names the allowed trigger it turns away from ('asked', not fired); got {asked!r}"
    if kind in FIRE_KINDS:
        return None if triggers else f"a '{kind}' turn must fire a trigger"
    if triggers:
        return f"a '{kind}' turn must not fire, but fires {triggers}"
    if kind in ("negation", "not_yet", "wrong_character") and not asked:
        return f"a '{kind}' turn must say which trigger was asked for ('asked')"
    if asked:
        try:
            trig = story.scene.trigger(asked)
        except KeyError:
            return f"asked for unknown trigger '{asked}'"
        reason = story.refusal(asked, character)
        may = character in trig.fired_by if trig.fired_by else asked in story.scene.character(character).triggers
        if kind == "negation" and reason is not None:
            return f"negation of '{asked}', which is not allowed anyway ({reason}): nothing to hold back"
        if kind == "not_yet" and (reason is None or not may):
            return f"not_yet for '{asked}', but {'it is allowed now' if reason is None else reason}"
        if kind == "wrong_character" and (may or not _someone_else_may(story, asked, character)):
            return f"wrong_character for '{asked}', but '{character}' may fire it or nobody else can"
        if kind == "disallowed" and reason is None:
            return f"disallowed request for '{asked}', which is allowed now"
    return None


def _someone_else_may(story: Story, trigger_id: str, character: str) -> bool:
    trig = story.scene.trigger(trigger_id)
    others = [c.id for c in story.scene.characters if c.id != character and trigger_id in c.triggers]
    return bool(others) or PLAYER in trig.fired_by
