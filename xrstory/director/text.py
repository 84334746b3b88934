"""Text measures the director needs: relevance of a line to a topic, interests, sentiment.

Each measure uses an injected ``embed(texts) -> (n, d) array`` when the caller has one (the
runtime passes all-MiniLM-L6-v2, see ENVIRONMENT.md) and a lexical fallback when not, so
the director works without torch (the Monado root, a bare CI step). Sentiment takes an
injected ``score(text) -> [-1, 1]``; the fallback is a small valence lexicon with negation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, d) float32
SentimentScorer = Callable[[str], float]  # text -> valence in [-1, 1]

# The axes of a player's taste that the director learns and the recommender uses.
INTERESTS = ("lore", "action", "comfort")

# Prototype sentences per interest (embedding route) and keyword stems (lexical route).
INTEREST_PROTOTYPES = {
    "lore": "Tell me a story about the past, the history, legends and the lives of the people here.",
    "action": "Let's do something: open it, light it, fetch it, fire it, ring it, press it, use the machine.",
    "comfort": "Warmth, rest, hot tea and food, kindness, how everyone is feeling.",
}
INTEREST_KEYWORDS = {
    "lore": {"stori", "tell", "histori", "past", "legend", "husband", "year", "life", "lives", "rememb",
             "built", "who", "why", "old", "tale", "captain", "crew", "famili", "learn", "know", "strike",
             "struck", "ship", "mate"},
    "action": {"open", "light", "fetch", "fire", "flare", "ring", "press", "bell", "carri", "lit",
               "push", "pull", "climb", "radio", "call", "door", "cellar", "oil", "lamp", "go", "let",
               "do", "try", "signal", "switch", "lever"},
    "comfort": {"tea", "warm", "drink", "cold", "rest", "sit", "kind", "feel", "okay", "safe",
                "blanket", "food", "eat", "hot", "comfort", "pour", "cup", "fine", "cosi", "cozi"},
}

_STOP = set("""a an the and or but if then so of to in on at by for with from into onto up down out
over under is are was were be been being am do does did have has had i you he she it we they me him
her us them my your his its our their this that these those there here what which who whom can could
will would shall should may might must not no yes just very too also please oh ah um uh well now""".split())
_WORD = re.compile(r"[a-z']+")

_POSITIVE = {"love", "lovely", "great", "good", "wonderful", "beautiful", "amazing", "like", "enjoy",
             "thank", "thanks", "happy", "glad", "fun", "cool", "nice", "brilliant", "fantastic",
             "interesting", "awesome", "perfect", "cozy", "cosy", "excellent", "yes", "wow", "sure"}
_NEGATIVE = {"hate", "boring", "bored", "bad", "awful", "terrible", "annoying", "stupid", "dull", "no",
             "stop", "enough", "tired", "ugh", "scared", "sad", "angry", "worst", "pointless", "meh",
             "hurry", "whatever", "slow"}
_NEGATORS = {"not", "never", "no", "don't", "dont", "isn't", "isnt", "wasn't", "didn't", "can't", "cannot"}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match 'lighting'/'lights'/'lit'-free variants."""
    w = word.strip("'")
    if w.endswith("'s"):
        w = w[:-2]
    for suffix in ("ing", "ed", "es", "s", "y"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            w = w[: -len(suffix)]
            if suffix == "y":
                w += "i"
            break
    return w


def content_stems(text: str) -> list[str]:
    return [stem(w) for w in words(text) if w not in _STOP and len(w) > 1]


def lexical_relevance(line: str, topics: Sequence[str]) -> float:
    """Share of the line's content words that occur in the topics' vocabulary, in [0, 1]."""
    mine = content_stems(line)
    if not mine:
        return 0.0
    vocab = {s for t in topics for s in content_stems(t)}
    return sum(s in vocab for s in mine) / len(mine)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, d) x (m, d) -> (n, m) cosine similarities."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def embed_relevance(embed: Embed, line: str, topics: Sequence[str]) -> float:
    """Highest cosine similarity of the line to any topic text."""
    vecs = np.asarray(embed([line, *topics]))
    if vecs.ndim != 2 or vecs.shape[0] != len(topics) + 1:
        raise ValueError(f"embed() returned shape {vecs.shape}; expected ({len(topics) + 1}, d)")
    return float(cosine_matrix(vecs[:1], vecs[1:]).max())


def interest_scores(text: str, embed: Embed | None = None) -> dict[str, float]:
    """How much the text is about each interest, each in [0, 1] (not normalised to sum 1)."""
    if embed is not None:
        vecs = np.asarray(embed([text, *INTEREST_PROTOTYPES.values()]))
        sims = cosine_matrix(vecs[:1], vecs[1:])[0]
        # MiniLM: ~0.1 unrelated, ~0.5 close paraphrase; map that band onto [0, 1]
        return {k: float(np.clip((s - 0.1) / 0.4, 0.0, 1.0)) for k, s in zip(INTERESTS, sims, strict=True)}
    stems = content_stems(text)
    if not stems:
        return dict.fromkeys(INTERESTS, 0.0)
    out = {}
    for k in INTERESTS:
        hits = sum(s in INTEREST_KEYWORDS[k] for s in stems)
        out[k] = min(1.0, hits / max(1.0, 0.34 * len(stems)))  # a third of the words -> 1.0
    return out


def lexical_sentiment(text: str) -> float:
    """Valence in [-1, 1] from a small lexicon; a negator flips the next two words."""
    score, n, flip_left = 0.0, 0, 0
    for w in words(text):
        if w in _NEGATORS:
            flip_left = 2
            continue
        sign = -1.0 if flip_left > 0 else 1.0
        flip_left = max(0, flip_left - 1)
        if w in _POSITIVE:
            score, n = score + sign, n + 1
        elif w in _NEGATIVE:
            score, n = score - sign, n + 1
    return 0.0 if n == 0 else max(-1.0, min(1.0, score / n))
