"""Incremental extraction of ``say`` from a reply's JSON while it is generated, split into sentences.

The decoder feeds text deltas of ``{"triggers": [...], "say": "...", "emotion": ...}``; ``SayStream.feed`` returns
the sentences of ``say`` that are complete so far, so TTS can start on the first sentence while
the model is still writing the second. JSON string escapes (\\n, \\", \\u plus four hex digits, surrogate pairs)
are decoded as they arrive.

``first_clause_words`` (the runtime's ``CharacterMind`` sets 4): a long first sentence is released
from its first clause, at a comma, semicolon, colon or dash followed by a space, once that clause
has that many words, so TTS starts sooner; later text is released by whole sentences as before.
"""

from __future__ import annotations

import re

_SAY_OPEN = re.compile(r'"say"\s*:\s*"')  # a trigger id is never followed by ':', so this is the key
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_SENTENCE_END = ".!?…"
_CLOSERS = "\"')]”’"  # may follow the end mark and belong to the sentence: 'Go!' she said
_CLAUSE_END = ",;:—–"  # and " - ": a hyphen between spaces (never "c-cold")


class SayStream:
    """Feed JSON text deltas; get complete sentences of the ``say`` value back."""

    def __init__(self, min_sentence_chars: int = 2, first_clause_words: int = 0):
        self._raw = ""  # JSON text not yet consumed
        self._state = "before"  # before -> in_say -> after
        self._escape = ""  # a pending escape sequence, e.g. "\\u00"
        self._high_surrogate: int | None = None
        self.say = ""  # decoded characters of say so far
        self._released = 0  # characters of self.say already released as sentences
        self._min = min_sentence_chars
        self._clause_words = first_clause_words  # 0: whole sentences only

    @property
    def closed(self) -> bool:
        """True once the closing quote of ``say`` has been seen."""
        return self._state == "after"

    @property
    def in_say(self) -> bool:
        return self._state == "in_say"

    @property
    def at_sentence_end(self) -> bool:
        """The unreleased text ends with a sentence mark (released once whitespace follows)."""
        tail = self.say[self._released:].rstrip(_CLOSERS).rstrip()
        return len(tail) >= self._min and tail[-1] in _SENTENCE_END

    def feed(self, delta: str) -> list[str]:
        self._raw += delta
        if self._state == "before":
            m = _SAY_OPEN.search(self._raw)
            if not m:
                return []
            self._raw = self._raw[m.end():]
            self._state = "in_say"
        if self._state == "in_say":
            self._consume_string()
        return self._complete_sentences(final=self._state == "after")

    def rest(self) -> str | None:
        """The unreleased tail of ``say`` once it is closed (a last sentence without an end mark)."""
        tail = self.say[self._released:].strip()
        self._released = len(self.say)
        return tail or None

    def _consume_string(self) -> None:
        raw, i = self._raw, 0
        while i < len(raw):
            c = raw[i]
            if self._escape:
                self._escape += c
                i += 1
                if self._escape_done():
                    continue
                continue
            if c == "\\":
                self._escape = c
            elif c == '"':
                self._state = "after"
                i += 1
                break
            else:
                self.say += c
            i += 1
        self._raw = raw[i:]

    def _escape_done(self) -> bool:
        esc = self._escape
        if len(esc) == 2 and esc[1] != "u":
            self.say += _ESCAPES.get(esc[1], esc[1])
            self._escape = ""
            return True
        if len(esc) == 6:  # a \u escape with its four hex digits
            code = int(esc[2:], 16)
            self._escape = ""
            if 0xD800 <= code < 0xDC00:
                self._high_surrogate = code
            elif 0xDC00 <= code < 0xE000 and self._high_surrogate is not None:
                self.say += chr(0x10000 + ((self._high_surrogate - 0xD800) << 10) + (code - 0xDC00))
                self._high_surrogate = None
            else:
                self.say += chr(code)
            return True
        return False

    def _complete_sentences(self, final: bool) -> list[str]:
        out = []
        text = self.say
        start = self._released
        i = start
        while i < len(text):
            if self._clause_words and self._released == 0 and self._clause_at(text, i):
                out.append(text[:i + 1].strip())
                start = self._released = i + 1
                i += 1
                continue
            if text[i] in _SENTENCE_END:
                j = i + 1
                while j < len(text) and (text[j] in _SENTENCE_END or text[j] in _CLOSERS):
                    j += 1
                # a sentence ends at its mark only when whitespace follows (or say has closed):
                # "3.5" and "..." mid-token must not split
                if j < len(text) and text[j].isspace() or (j == len(text) and final):
                    sentence = text[start:j].strip()
                    if len(sentence) >= self._min:
                        out.append(sentence)
                        start = j
                        self._released = j
                    i = j
                    continue
            i += 1
        return out

    def _clause_at(self, text: str, i: int) -> bool:
        """A clause mark at ``i``, followed by a space, ending a first clause of enough words."""
        c = text[i]
        if i + 1 >= len(text) or not text[i + 1].isspace():
            return False  # "3,000" and a mark not yet followed by anything wait
        if c not in _CLAUSE_END and not (c == "-" and i > 0 and text[i - 1].isspace()):
            return False
        return len(text[:i].split()) >= self._clause_words
