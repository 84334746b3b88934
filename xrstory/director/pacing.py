"""Pacing: notice when the player stalls in a beat and decide that a character nudges.

The story's rules (beats entered and left by triggers, endings) live in ``Story.apply``;
this module only watches. Per beat it counts the player's off-topic turns (a line whose
relevance to the beat's goal and allowed triggers is under a threshold — embedding cosine
when an ``embed`` callable is given, word overlap otherwise) and the seconds of silence.
When either passes its limit it returns a ``Nudge``; the runtime turns that into a model
turn with the nudge's hint (the model still writes the words). The counters live in
``["pacing"]`` of the director's state dict (``StoryState.director`` unless the caller gives
the pacer a dict of its own, see ``Director``) so they survive a save.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xrstory.director.config import PacingConfig
from xrstory.director.text import Embed, cosine_matrix, lexical_relevance
from xrstory.story import Story
from xrstory.story.scene import PLAYER


@dataclass(frozen=True)
class Nudge:
    """A decision that ``character_id`` speaks up to steer the player toward ``goal``."""

    character_id: str
    reason: str  # "silence" or "off_topic", with the numbers, for the log
    goal: str

    @property
    def hint(self) -> str:
        """A line for the character's prompt (the model phrases it in character)."""
        return f"The player seems unsure what to do. Gently steer them, in your own words, toward: {self.goal}"


@dataclass(frozen=True)
class TurnJudgement:
    relevance: float
    on_topic: bool
    off_topic_turns: int
    nudge: Nudge | None


def _fresh(beat: str) -> dict:
    return {"beat": beat, "turns": 0, "off_topic": 0, "silence_s": 0.0, "cooldown": 0, "nudges": 0,
            "last_addressed": None}


class Pacer:
    """Pacing counters for one story; reads and writes ``state['pacing']``, where ``state`` is
    the dict given (the runtime's private copy) or, by default, ``story.state.director``."""

    def __init__(self, story: Story, config: PacingConfig | None = None, embed: Embed | None = None,
                 state: dict | None = None):
        self.story = story
        self.config = config or PacingConfig()
        self.embed = embed
        self._state = state
        self._topic_cache: tuple[tuple[str, ...], np.ndarray] | None = None

    @property
    def counters(self) -> dict:
        st = self.story.state
        own = self._state if self._state is not None else st.director
        pacing = own.setdefault("pacing", _fresh(st.beat))
        if pacing.get("beat") != st.beat:  # a trigger moved the story on: the new beat starts fresh
            pacing.clear()
            pacing.update(_fresh(st.beat))
        return pacing

    def beat_topics(self) -> list[str]:
        """What counts as on topic now: the beat's goal and its allowed triggers' descriptions."""
        beat = self.story.scene.beat(self.story.state.beat)
        topics = [beat.goal]
        for tid in beat.allowed_triggers:
            topics.append(self.story.scene.trigger(tid).description)
        return topics

    def relevance(self, line: str) -> float:
        topics = self.beat_topics()
        if self.embed is None:
            return lexical_relevance(line, topics)
        key = tuple(topics)
        if self._topic_cache is None or self._topic_cache[0] != key:
            self._topic_cache = (key, np.asarray(self.embed(list(topics))))
        line_vec = np.asarray(self.embed([line]))  # (1, d)
        return float(cosine_matrix(line_vec, self._topic_cache[1]).max())

    def threshold(self) -> float:
        return self.config.embed_on_topic if self.embed is not None else self.config.lexical_on_topic

    # -- events ----------------------------------------------------------------------------
    def on_player_line(self, text: str, addressed: str | None = None) -> TurnJudgement:
        c = self.counters
        c["turns"] += 1
        c["silence_s"] = 0.0
        if addressed and addressed != PLAYER:
            c["last_addressed"] = addressed
        score = self.relevance(text)
        on_topic = score >= self.threshold()
        c["off_topic"] = 0 if on_topic else c["off_topic"] + 1
        if c["cooldown"] > 0:
            c["cooldown"] -= 1
        nudge = None
        limit = self.story.scene.beat(self.story.state.beat).nudge_after_turns
        if c["off_topic"] >= limit and c["cooldown"] == 0:
            nudge = self._nudge(f"off_topic: {c['off_topic']} turns in a row under relevance "
                                f"{self.threshold():.2f} (last {score:.2f})")
        return TurnJudgement(score, on_topic, c["off_topic"] if nudge is None else 0, nudge)

    def on_time(self, dt: float, someone_speaking: bool = False) -> Nudge | None:
        """Advance the silence clock by ``dt`` seconds (not while a character talks)."""
        if dt < 0:
            raise ValueError(f"dt must be >= 0 seconds, got {dt}")
        c = self.counters
        if someone_speaking:
            c["silence_s"] = 0.0
            return None
        c["silence_s"] += dt
        if c["silence_s"] >= self.config.silence_nudge_s:
            return self._nudge(f"silence: {c['silence_s']:.0f} s without the player speaking")
        return None

    def _nudge(self, reason: str) -> Nudge | None:
        st = self.story.state
        beat = self.story.scene.beat(st.beat)
        if st.ended is not None or beat.ending:
            return None
        who = self._nudger()
        if who is None:
            return None
        c = self.counters
        c["off_topic"], c["silence_s"] = 0, 0.0
        c["cooldown"] = self.config.nudge_cooldown_turns
        c["nudges"] += 1
        return Nudge(who, reason, beat.goal)

    def _nudger(self) -> str | None:
        """Who speaks up: a character who can move the beat on now, else the one last
        addressed, else the scene's first character."""
        chars = [ch.id for ch in self.story.scene.characters]
        for cid in chars:
            if self.story.allowed_triggers(cid):
                return cid
        last = self.counters.get("last_addressed")
        if last in chars:
            return last
        return chars[0] if chars else None
