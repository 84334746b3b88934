"""Turning whatever a model produced into a ``Reply`` that cannot break a session.

A local constrained decoder should always produce valid JSON, but a turn can still be cut at
the token limit, and a remote server may ignore the schema altogether (unknown triggers,
prose instead of JSON, an empty ``say``). ``validate_reply`` is the single gate every model
output passes before anything downstream (TTS, subtitles, ``story.apply``) sees it:

- triggers that are unknown to the character or not allowed now are dropped, one log entry
  each (``story.apply`` would refuse them too; dropping them here keeps the Reply honest);
- empty, cut, or non-JSON output is replaced by one of the character's own
  ``fallback_lines`` from the scene file, chosen deterministically from the output, so the
  same bad output gives the same line in a replayed session;
- it never raises on model output; every replacement is logged on ``xrstory.mind.fallback``.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Sequence

from xrstory.mind.reply import Reply
from xrstory.mind.schema import MAX_SAY_CHARS
from xrstory.story.scene import EMOTIONS, Character

log = logging.getLogger("xrstory.mind.fallback")

# Used only when a scene gives a character no fallback_lines (``xrstory validate`` could warn).
GENERIC_FALLBACK = "Sorry, say that again?"

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")


def fallback_line(character: Character, key: str) -> str:
    """One of the character's fallback lines, the same one for the same ``key`` (a stable hash,
    unlike ``hash()``, which changes between processes)."""
    lines = [line for line in character.fallback_lines if line.strip()]
    if not lines:
        log.warning("character '%s' has no fallback_lines in its scene; using a generic line",
                    character.id)
        return GENERIC_FALLBACK
    # surrogatepass: the key may be output holding a lone surrogate, which plain UTF-8 refuses
    return lines[zlib.crc32(f"{character.id}|{key}".encode("utf-8", "surrogatepass")) % len(lines)]


def fallback_reply(character: Character, reason: str, key: str = "") -> Reply:
    """The in-character replacement for a reply that cannot be used, logged with its reason."""
    line = fallback_line(character, key or reason)
    log.warning("reply of '%s' replaced by a fallback line (%s): %r", character.id, reason, line)
    return Reply(character=character.id, say=line, emotion="neutral", triggers=(),
                 fallback=True, fallback_reason=reason)


def _looks_cut(text: str, exc: json.JSONDecodeError) -> bool:
    # A JSON object that simply stops: it never closes, a string runs off the end, or the
    # decoder fails at the very end of the text.
    body = text.strip()
    return body.startswith("{") and (not body.endswith("}") or exc.msg.startswith("Unterminated")
                                     or exc.pos >= len(body) - 1)


def _trim_say(say: str) -> str:
    """Cut an over-long ``say`` at the last sentence end within the limit (else at a word)."""
    head = say[:MAX_SAY_CHARS]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends:
        return head[: ends[-1]]
    return head.rsplit(" ", 1)[0] if " " in head else head


def _check_triggers(raw: object, allowed: Sequence[str], character: Character,
                    max_triggers: int) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        log.warning("reply of '%s': 'triggers' is %s, not a list; no trigger fires: %r",
                    character.id, type(raw).__name__, raw)
        return ()
    kept: list[str] = []
    for trig in raw:
        if not isinstance(trig, str):
            log.warning("reply of '%s': dropped trigger %r (not a string)", character.id, trig)
        elif trig not in character.triggers:
            log.warning("reply of '%s': dropped unknown trigger '%s' (not one of the character's "
                        "triggers %s)", character.id, trig, list(character.triggers))
        elif trig not in allowed:
            log.warning("reply of '%s': dropped trigger '%s' (not allowed now; allowed: %s)",
                        character.id, trig, list(allowed))
        elif trig in kept:
            log.info("reply of '%s': dropped repeated trigger '%s'", character.id, trig)
        else:
            kept.append(trig)
    if len(kept) > max_triggers:  # the schema's maxItems: the first ones named stand, as decoded
        log.warning("reply of '%s': dropped triggers %s (at most %d per reply)", character.id,
                    kept[max_triggers:], max_triggers)
        kept = kept[:max_triggers]
    return tuple(kept)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``object_pairs_hook``: a key given twice is refused (the first "say" spoken and the last
    committed is what ``json.loads`` would do otherwise)."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def has_lone_surrogate(text: str) -> bool:
    """True if ``text`` holds a UTF-16 surrogate (a "\\udc00" escape): not valid Unicode, and it
    would break the save and the transcript (UTF-8 cannot encode it)."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def validate_reply(raw_json_text: str | None, allowed_triggers: Sequence[str], character: Character,
                   *, finish_reason: str | None = None, max_triggers: int = 2) -> Reply:
    """The usable ``Reply`` in ``raw_json_text``, or an in-character fallback; never raises.

    ``finish_reason`` is the server's or decoder's reason for stopping (``"length"`` means the
    token limit was hit); it only sharpens the logged reason. ``max_triggers`` is the schema's
    ``maxItems`` (``schema.reply_schema``): only the first that many usable triggers stand. Duplicate keys and
    invalid Unicode (lone surrogates) make the output unusable: the fallback line.
    """
    text = raw_json_text if isinstance(raw_json_text, str) else ""
    key = text or "empty"
    if not text.strip():
        return fallback_reply(character, "empty output", key)
    fenced = _FENCE.match(text)
    if fenced:
        log.info("reply of '%s' was wrapped in a code fence; reading the JSON inside", character.id)
        text = fenced.group(1)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        return fallback_reply(character, f"output gives the key {exc.args[0]!r} twice: {text[:80]!r}", key)
    except RecursionError:
        return fallback_reply(character, f"output nests too deeply: {text[:80]!r}", key)
    except json.JSONDecodeError as exc:
        if finish_reason == "length" or _looks_cut(text, exc):
            return fallback_reply(character, f"output cut at the token limit after {len(text)} "
                                             f"characters: {text[-60:]!r}", key)
        return fallback_reply(character, f"output is not JSON ({exc.msg} at {exc.pos}): {text[:80]!r}", key)
    if not isinstance(data, dict):
        return fallback_reply(character, f"output is JSON {type(data).__name__}, not an object: "
                                         f"{text[:80]!r}", key)
    if any(has_lone_surrogate(x) for x in _strings(data)):
        return fallback_reply(character, f"output is not valid Unicode (a lone surrogate escape): "
                                         f"{text[:80]!r}", key)
    say = data.get("say")
    if not isinstance(say, str) or not say.strip():
        return fallback_reply(character, f"empty or missing 'say' ({say!r})", key)
    say = " ".join(say.split())  # newlines and runs of spaces are not speech
    if len(say) > MAX_SAY_CHARS:
        log.warning("reply of '%s': 'say' of %d characters cut to the limit of %d", character.id,
                    len(say), MAX_SAY_CHARS)
        say = _trim_say(say)
    emotion = data.get("emotion")
    if emotion not in EMOTIONS:
        log.warning("reply of '%s': emotion %r is not one of %s; using 'neutral'", character.id,
                    emotion, list(EMOTIONS))
        emotion = "neutral"
    extra = sorted(set(data) - {"say", "emotion", "triggers"})
    if extra:
        log.info("reply of '%s': ignored extra keys %s", character.id, extra)
    triggers = _check_triggers(data.get("triggers"), allowed_triggers, character, max_triggers)
    return Reply(character=character.id, say=say, emotion=emotion, triggers=triggers)
