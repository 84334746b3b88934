"""The player's taste, read from their decayed profile features.

Feature names (all decayed accumulators in the store, see store.py):
  ``interest.<lore|action|comfort>``  how much their lines, choices and gaze were about it
  ``words_per_line``                  mean length of what they say (verbosity)
  ``interrupt`` / ``character_line``  barge-ins and character lines heard (their ratio)
  ``sentiment``                       mean valence of what they say, -1..1
  ``talk.<character>``                lines addressed to a character
  ``gaze.character.<id>`` / ``gaze.prop.<id>``  seconds spent looking at it
  ``topic.<prop or character>``       times they asked about it
  ``choice.<trigger>``                triggers fired while they played

``context_vector`` turns them into the bandit's context; ``profile_hints`` into short lines
for a character's prompt ("The player prefers short answers").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xrstory.director.bandit import CONTEXT_FEATURES
from xrstory.director.store import Feature
from xrstory.director.text import INTERESTS
from xrstory.story import Scene

SHORT_WORDS = 6.0  # mean words per line under which the player is a terse speaker
LONG_WORDS = 14.0
INTERRUPT_RATE = 0.3  # barge-ins per character line above which answers are too long
MIN_EVIDENCE = 3.0  # decayed observations needed before a hint is given


@dataclass(frozen=True)
class Taste:
    interests: dict[str, float]  # shares, sum to 1
    short: float  # 0..1, how strongly they prefer short answers
    mood: float  # -1..1
    evidence: float  # decayed number of lines observed


def taste(features: Mapping[str, Feature]) -> Taste:
    raw = {k: max(0.0, features[f"interest.{k}"].value) if f"interest.{k}" in features else 0.0
           for k in INTERESTS}
    total = sum(raw.values())
    shares = {k: (v / total if total > 1e-9 else 1.0 / len(INTERESTS)) for k, v in raw.items()}
    words = features.get("words_per_line")
    interrupts = features.get("interrupt")
    heard = features.get("character_line")
    short = 0.0
    if words is not None and words.weight >= 1:
        short = max(short, min(1.0, max(0.0, (LONG_WORDS - words.mean) / (LONG_WORDS - SHORT_WORDS))))
    if interrupts is not None and heard is not None and heard.value > 1e-9:
        short = max(short, min(1.0, (interrupts.value / heard.value) / INTERRUPT_RATE))
    mood = features["sentiment"].mean if "sentiment" in features else 0.0
    evidence = words.weight if words is not None else 0.0
    return Taste(shares, short, mood, evidence)


def context_vector(t: Taste) -> list[float]:
    values = {"bias": 1.0, **t.interests, "short": t.short, "mood": t.mood}
    return [float(values[name]) for name in CONTEXT_FEATURES]


def _top(features: Mapping[str, Feature], prefix: str) -> tuple[str, float, float] | None:
    """(name, value, share of the prefix's total) of the largest feature under ``prefix``."""
    items = [(k[len(prefix):], f.value) for k, f in features.items() if k.startswith(prefix)]
    total = sum(v for _, v in items)
    if not items or total <= 1e-9:
        return None
    name, value = max(items, key=lambda kv: kv[1])
    return name, value, value / total


def profile_hints(features: Mapping[str, Feature], scene: Scene, character_id: str | None = None) -> list[str]:
    """Short lines about the player for a character's prompt; empty until there is evidence."""
    t = taste(features)
    hints: list[str] = []
    if t.evidence < MIN_EVIDENCE:
        return hints
    if t.short >= 0.6:
        hints.append("The player prefers short answers: one or two sentences.")
    elif "words_per_line" in features and features["words_per_line"].mean >= LONG_WORDS and t.short < 0.2:
        hints.append("The player enjoys detail: fuller, vivid answers are welcome.")
    if t.mood <= -0.25:
        hints.append("The player seems impatient: be direct and keep things moving.")
    elif t.mood >= 0.3:
        hints.append("The player is enjoying themselves: keep the warm, lively tone.")
    best = max(t.interests, key=t.interests.get)
    if t.interests[best] >= 0.45:
        hints.append({"lore": "The player loves stories and background: share lore when it fits.",
                      "action": "The player likes doing things: offer hands-on actions.",
                      "comfort": "The player cares about the people here: warmth and kindness land well."}[best])
    names = {c.id: c.name for c in scene.characters}
    fav = _favourite_character(features)
    if fav is not None and fav in names:
        what = "stories" if best == "lore" else "company"
        who = "your" if fav == character_id else f"{names[fav]}'s"
        hints.append(f"The player enjoys {who} {what}.")
    prop = _top(features, "gaze.prop.")
    if prop is not None and prop[1] >= 5.0:
        try:
            label = scene.prop(prop[0]).name or prop[0]
        except StopIteration:
            label = prop[0]
        label = label if label.lower().startswith(("the ", "a ", "an ")) else f"the {label}"
        hints.append(f"The player keeps looking at {label}.")
    return hints


def _favourite_character(features: Mapping[str, Feature]) -> str | None:
    # lines addressed count most; ten seconds of looking counts like one line
    score: dict[str, float] = {}
    for k, f in features.items():
        if k.startswith("talk."):
            score[k[5:]] = score.get(k[5:], 0.0) + f.value
        elif k.startswith("gaze.character."):
            score[k[15:]] = score.get(k[15:], 0.0) + f.value / 10.0
    total = sum(score.values())
    if total < MIN_EVIDENCE:
        return None
    fav = max(score, key=score.get)
    return fav if score[fav] / total >= 0.6 else None
