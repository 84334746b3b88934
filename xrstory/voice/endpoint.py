"""End of turn: does the transcript of the player's speech so far read as a finished turn?

The VAD closes a segment after a long silence (``VADConfig.min_silence_ms``); the Ear may close it
after a short one (``VADConfig.early_silence_ms``) when the transcript of the speech up to that
silence looks finished. Whisper punctuates what it hears: a full stop, question or exclamation
mark after a clause that does not end on a word that needs a continuation ("the", "and", "to")
is taken as the end of the turn, if Whisper was fairly sure of it (a misheard fragment, "Could
you" heard as "God you.", came with confidence 0.46; the scripted sentences with 0.58-0.90); an
ellipsis or a dash is not. A turn that does not look finished
waits for the long silence, so a player who pauses mid-sentence is not cut off.
"""

from __future__ import annotations

import re

# words a finished English clause does not end on (articles, conjunctions, prepositions, "my")
CONTINUES = frozenset("""
a an the and or but so because if then than that which who whose whom where when while as
to of in on at by for from with into onto about over under after before between through
my your his her its our their this these those is are was were be been am can could would
should will shall may might must do does did have has had not very please
""".split())
# "Could you ..." / "Will we ...": a question that stops at its auxiliary and subject has its verb to come
_AUX = frozenset("can could would will do did does shall should may might must".split())
_SUBJECT = frozenset("i you we he she they it".split())
# "Maren, I think ..." / "I wonder ...": a subject and a verb that takes a clause, the clause to come
_CLAUSE_VERBS = frozenset("think guess mean suppose believe wonder hope wish want need feel reckon".split())
_END = re.compile(r"[.?!]['\")\]]*$")


def looks_finished(text: str, confidence: float = 1.0, min_words: int = 2, min_confidence: float = 0.5) -> bool:
    """True when ``text`` (a Whisper transcript, ``confidence`` its Transcript.confidence) ends
    like a complete turn."""
    t = text.strip()
    if confidence < min_confidence or not t or t.endswith(("...", "…", "-", "—", ",")) or not _END.search(t):
        return False
    words = re.findall(r"[a-z']+", t.lower())
    if len(words) < min_words or words[-1] in CONTINUES:
        return False
    return not ((words[-1] in _SUBJECT and words[-2] in _AUX) or (words[-1] in _CLAUSE_VERBS and words[-2] in _SUBJECT))
