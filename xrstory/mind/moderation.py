"""Moderation of generated lines before they reach TTS and subtitles.

Two checks, both configurable per scene (``scenes/<name>/moderation.toml``) and per user
(e.g. a stricter profile for children), layered with ``ModerationConfig.merged``:

1. Word lists by category, matched on whole words after normalisation, so obfuscations are
   caught and innocent words are not: case and accents are folded (``FÜCK``), leetspeak is
   read as letters (``sh1t``, ``$hit``, ``a$$hole``), interior masking counts (``f*ck``),
   stretched letters (``fuuuck``) and spelt-out letters with one separator (``f u c k``,
   ``f.u.c.k``) are joined; but ``Scunthorpe``, ``cockpit`` or ``class`` pass because a match
   must start and end on a word boundary. An ``allowed`` list exempts words a scene wants
   (a salty sailor's ``bastard``).
2. A packaged classifier: ``alt-profanity-check`` (PyPI), a linear SVM over TF-IDF trained on
   offensive-language data whose ~1 MB weights ship inside the wheel (no hub download). It
   catches insults that no list names ("you stupid idiot": 1.00) but is trigger-happy on mild
   salt ("Bloody hell, the lamp is out!": 0.92), so the default threshold is high (0.98) and a
   scene or user can move it or switch it off. Larger packaged transformer classifiers were
   not found: ``detoxify`` downloads its weights from a hub at run time, which is impossible
   here.

``moderate_turn`` wraps a mind's event stream (``ReplyStarted``/``Sentence``/``Reply``): the
first refused sentence is never released; the turn ends with the character's fallback line
(``Reply.fallback=True``), and the refusal is logged on ``xrstory.mind.moderation``.
"""

from __future__ import annotations

import logging
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xrstory.mind.fallback import fallback_reply
from xrstory.mind.reply import Reply, Sentence, TurnTimings
from xrstory.story.scene import Character

log = logging.getLogger("xrstory.mind.moderation")

# Built-in lists. An entry ending in "*" also matches common endings (fucking, shits, bitchy).
# Deliberately short and unambiguous: words with innocent senses in stories ("ass" the animal,
# "chink" of light, "damn", "hell") are left to scenes and to the classifier.
BUILTIN_BLOCKED: dict[str, tuple[str, ...]] = {
    "profanity": (
        "fuck*", "motherfuck*", "shit*", "bullshit*", "horseshit", "cunt*", "bitch*", "bastard*",
        "asshole*", "arsehole*", "dick", "dickhead*", "cock", "cocksuck*", "pussy", "wank*",
        "twat*", "bollocks", "prick*", "slut*", "whore*", "dumbass", "jackass",
    ),
    "slur": (
        "nigger*", "nigga*", "faggot*", "fag", "fags", "retard*", "kike*", "spic", "spics",
        "tranny", "trannies",
    ),
}
_SUFFIXES = ("s", "es", "ed", "er", "ers", "ing", "in", "y", "ty", "ting", "head", "heads")

# Leetspeak and look-alike characters each letter may be written with.
_LEET = {"a": "a4@", "b": "b8", "e": "e3", "g": "g9", "i": "i1!|", "l": "l1|", "o": "o0",
         "s": "s5$", "t": "t7+", "z": "z2"}
_SEPARATOR = r"[ ._\-~]"  # between spelt-out letters: f u c k, f.u.c.k, f-u-c-k
_MASK = "*#"  # masking characters allowed for interior letters: f*ck, sh#t


class ModerationError(ValueError):
    """A moderation config file is wrong; the message names the file and the field."""


class ModerationConfig(BaseModel):
    """What to block. Lists add up when configs are merged; scalars of the later one win."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    builtin_lists: bool = Field(True, description="include BUILTIN_BLOCKED")
    blocked: dict[str, list[str]] = Field(
        default_factory=dict, description="category -> extra words or phrases ('word*' adds endings)")
    allowed: list[str] = Field(default_factory=list, description="words never blocked by the lists")
    classifier: bool = Field(True, description="use the packaged alt-profanity-check classifier")
    classifier_threshold: float = Field(0.98, gt=0.0, le=1.0, description="probability that blocks")

    def merged(self, other: ModerationConfig) -> ModerationConfig:
        """``self`` overlaid with ``other`` (scene, then user): lists are united, and the
        scalars ``other`` set explicitly replace ours."""
        data = self.model_dump()
        for cat, words in other.blocked.items():
            data["blocked"].setdefault(cat, [])
            data["blocked"][cat] += [w for w in words if w not in data["blocked"][cat]]
        data["allowed"] += [w for w in other.allowed if w not in data["allowed"]]
        for name in other.model_fields_set - {"blocked", "allowed"}:
            data[name] = getattr(other, name)
        return ModerationConfig(**data)

    @classmethod
    def load(cls, path: str | Path) -> ModerationConfig:
        """Read a TOML file: its top level, or its ``[moderation]`` table, holds the fields."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModerationError(f"{path}: moderation config not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ModerationError(f"{path}: not valid TOML ({exc})") from None
        data = data.get("moderation", data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"field '{'.'.join(map(str, e['loc']))}': {e['msg']} "
                                 f"(got {e.get('input')!r})" for e in exc.errors())
            raise ModerationError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class ModerationVerdict:
    allowed: bool
    reason: str = ""  # human-readable, for the log
    category: str = ""  # "profanity", "slur", a scene's own category, or "classifier"
    matched: str = ""  # the text that matched (as written), empty for the classifier
    score: float | None = None  # classifier probability, when it ran


def normalise(text: str) -> str:
    """Lower case, compatibility forms folded (fullwidth letters), accents stripped."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).lower())
    return "".join(c for c in folded if not unicodedata.combining(c))


def _letter(c: str, interior: bool) -> str:
    chars = _LEET.get(c, c) + (_MASK if interior else "")
    return "[" + re.escape(chars) + "]+" if len(chars) > 1 else re.escape(c) + "+"


def _word_pattern(entry: str) -> re.Pattern[str]:
    """Regex of one list entry: each letter in its leet forms, repeatable; one consistent
    separator between letters; optional endings for 'word*'; word boundaries on both sides."""
    word = normalise(entry.strip())
    with_endings = word.endswith("*")
    word = word.rstrip("*").strip()
    if not word:
        raise ModerationError(f"empty moderation word {entry!r}")
    if " " in word:  # a phrase: words as written (with leet forms), any whitespace between
        body = r"\s+".join("".join(_letter(c, False) for c in part) for part in word.split())
    else:
        letters = [_letter(c, 0 < i < len(word) - 1) for i, c in enumerate(word)]
        body = letters[0] + f"({_SEPARATOR}?)" + r"\1".join(letters[1:]) if len(letters) > 1 else letters[0]
    ending = "(?:" + "|".join(_SUFFIXES) + ")?" if with_endings else ""
    return re.compile(rf"(?<![a-z0-9]){body}{ending}(?![a-z0-9])")


class Moderator:
    """Checks one line at a time; build one per scene (and user) and reuse it."""

    def __init__(self, config: ModerationConfig | None = None):
        self.config = config or ModerationConfig()
        allowed = {normalise(w).rstrip("*") for w in self.config.allowed}
        lists: dict[str, list[str]] = {}
        if self.config.builtin_lists:
            lists = {cat: list(words) for cat, words in BUILTIN_BLOCKED.items()}
        for cat, words in self.config.blocked.items():
            lists.setdefault(cat, []).extend(words)
        self._patterns = [(cat, entry, _word_pattern(entry)) for cat, words in lists.items()
                          for entry in words if normalise(entry).rstrip("*") not in allowed]
        self._allowed = allowed
        self._predict_prob = None
        if self.config.enabled and self.config.classifier:
            from profanity_check import predict_prob  # ~1 s: scikit-learn and the packaged SVM

            self._predict_prob = predict_prob

    @classmethod
    def for_scene(cls, scene_folder: str | Path | None, user: ModerationConfig | None = None) -> Moderator:
        """Defaults, overlaid by ``<scene_folder>/moderation.toml`` if present, then by ``user``."""
        config = ModerationConfig()
        if scene_folder is not None and (Path(scene_folder) / "moderation.toml").is_file():
            config = config.merged(ModerationConfig.load(Path(scene_folder) / "moderation.toml"))
        return cls(config.merged(user) if user is not None else config)

    def check(self, text: str) -> ModerationVerdict:
        if not self.config.enabled or not text.strip():
            return ModerationVerdict(True)
        norm = normalise(text)
        for cat, entry, pattern in self._patterns:
            for m in pattern.finditer(norm):
                if re.sub(_SEPARATOR, "", m.group(0)) in self._allowed:
                    continue
                return ModerationVerdict(False, f"'{m.group(0)}' matches blocked word '{entry}'",
                                         cat, m.group(0))
        if self._predict_prob is not None:
            score = float(self._predict_prob([text])[0])
            if score >= self.config.classifier_threshold:
                return ModerationVerdict(False, f"classifier score {score:.3f} >= threshold "
                                                f"{self.config.classifier_threshold}", "classifier",
                                         score=score)
            return ModerationVerdict(True, score=score)
        return ModerationVerdict(True)

    def filter(self, text: str) -> str | None:
        """``text`` if allowed, else None (logged): the sentence filter shape of
        ``CharacterMind.respond(moderate=...)``."""
        verdict = self.check(text)
        if verdict.allowed:
            return text
        log.warning("line refused by moderation (%s: %s): %r", verdict.category, verdict.reason, text[:200])
        return None


def moderate_turn(events: Iterable[object], moderator: Moderator, character: Character) -> Iterator[object]:
    """Pass a turn's events (``ReplyStarted``, ``Sentence``..., ``Reply``, ``TurnTimings``)
    through, holding back any refused line.

    Sentences are checked before release (so TTS and subtitles never get a refused one); the
    final ``Reply.say`` is checked too (a tail without end punctuation is not a Sentence). On a
    refusal the stream ends with the character's fallback ``Reply`` (``fallback=True``):
    sentences released before it were clean, and a consumer should speak ``Reply.say`` in
    place of the rest. The underlying generator is closed, so a local decoder stops early.
    """
    it = iter(events)
    try:
        for ev in it:
            text = ev.text if isinstance(ev, Sentence) else ev.say if isinstance(ev, Reply) and not ev.fallback else None
            if text is not None:
                verdict = moderator.check(text)
                if not verdict.allowed:
                    log.warning("line of '%s' refused by moderation (%s: %s): %r", character.id,
                                verdict.category, verdict.reason, text[:200])
                    yield fallback_reply(character, f"moderation: {verdict.category} ({verdict.reason})", text)
                    # the stream's own timings are lost with it; TurnTimings still ends the turn
                    yield TurnTimings(extra={"refused_by_moderation": verdict.category})
                    return
            yield ev
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
