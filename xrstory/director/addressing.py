"""Who the player is talking to: the vocative first, then a name in the line, then gaze.

"Tobias, ask Maren to light the stove" is said to Tobias: a name that opens the line (after
an interjection such as "hey" or "okay") or closes it after a comma ("Is it ready, Maren?")
is a vocative and wins over a name mentioned inside the line. Names match whole words only,
case-insensitively ("tobiasaurus" is nobody; "Maren's" is Maren). With no vocative the first
character named anywhere in the line is addressed, then the character the player looks at,
then the last one spoken to, then the scene's first character.

A pure function of its arguments (the runtime passes the gaze target and the last speaker),
so its rules are tested without a session: tests/test_hardening_addressing.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+")
# words a player puts before a vocative ("Hey Tobias, ...", "Okay Maren, ...")
_INTERJECTIONS = frozenset({"hey", "hi", "hello", "oh", "ok", "okay", "so", "well", "and", "now", "please",
                            "excuse", "me", "sorry", "listen", "look", "um", "uh", "ah", "dear", "yo"})


def _words(text: str) -> list[re.Match]:
    return list(_WORD.finditer(text.lower()))


def _name_at(words: list[str], i: int, names: list[tuple[str, list[str]]]) -> str | None:
    """The character whose name (or id) is the words starting at ``i``, longest name first."""
    for cid, name_words in names:
        if name_words and words[i:i + len(name_words)] == name_words:
            return cid
    return None


def addressee(text: str, characters: Sequence[tuple[str, str]], looked_at: str | None = None,
              last_speaker: str | None = None) -> str:
    """The id of the character ``text`` is said to.

    ``characters``: (id, display name) pairs in scene order (at least one); ``looked_at``: the
    gaze target ("character.<id>" or any other target id, or None); ``last_speaker``: the
    character spoken to last, or None.
    """
    if not characters:
        raise ValueError("addressee: the scene has no characters")
    names: list[tuple[str, list[str]]] = []
    for cid, name in characters:
        for label in {name, cid, cid.replace("_", " ")}:
            names.append((cid, [m.group() for m in _words(label)]))
    names.sort(key=lambda n: -len(n[1]))  # "Old Tobias" before "Tobias"
    matches = _words(text)
    words = [m.group() for m in matches]
    # 1. a vocative opening the line, after any interjections
    start = 0
    while start < len(words) and words[start] in _INTERJECTIONS and _name_at(words, start, names) is None:
        start += 1
    if start < len(words) and (who := _name_at(words, start, names)):
        return who
    # 2. a vocative closing the line after a comma: "..., Maren?"
    for cid, name_words in names:
        n = len(name_words)
        if n and len(words) > n and words[-n:] == name_words:
            between = text[matches[-n - 1].end():matches[-n].start()]
            if "," in between:
                return cid
    # 3. the first character named anywhere, whole words only
    for i in range(len(words)):
        if who := _name_at(words, i, names):
            return who
    # 4. gaze, then the last one spoken to, then the scene's first character
    ids = {cid for cid, _ in characters}
    looked = (looked_at or "").removeprefix("character.")
    if looked_at and looked_at.startswith("character.") and looked in ids:
        return looked
    if last_speaker in ids:
        return last_speaker
    return characters[0][0]
