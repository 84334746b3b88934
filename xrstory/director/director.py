"""The Director: pacing, the player's profile and recommendations for one story session.

The runtime feeds it what happened (player lines, character lines, barge-ins, gaze dwell,
fired triggers, time passing) and asks it for the beat's goal, the prompt hints for a
character, nudges, and a recommendation of side content. It never fires a trigger: the
story's rules stay in ``Story.apply``; a recommendation only becomes a hint ("If it fits,
offer this: ...") and its reward is the engagement that follows.

    with ProfileStore(ProfileConfig(data_dir=d)) as store:
        director = Director(story, store, "ada", embed=minilm.encode)
        nudge = director.on_player_line("what's for dinner?", addressed="maren")
        rec = director.recommend()
        hints = director.prompt_hints("maren")  # goal-free profile lines + rec.hint
        director.end_session()
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from xrstory.director.bandit import LinUCB
from xrstory.director.candidates import Arm, candidate_arms
from xrstory.director.config import BanditConfig, PacingConfig
from xrstory.director.pacing import Nudge, Pacer
from xrstory.director.profile import context_vector, profile_hints, taste
from xrstory.director.store import Feature, ProfileStore, check_player_id
from xrstory.director.text import (
    INTERESTS,
    Embed,
    SentimentScorer,
    content_stems,
    interest_scores,
    lexical_relevance,
    lexical_sentiment,
    words,
)
from xrstory.story import Story, TriggerResult

log = logging.getLogger("xrstory.director")
BANDIT_MODEL = "recommend.linucb.v1"


@dataclass
class Recommendation:
    decision_id: int | None  # row in the profile's decisions table (None without a store)
    arm: Arm
    explanation: dict
    x: np.ndarray  # (DIM,) joint features, for the update when the reward is known
    turns_left: int  # player turns until its engagement is scored
    engagement: float = 0.0

    @property
    def character_id(self) -> str:
        return self.arm.character_id

    @property
    def hint(self) -> str:
        return self.arm.hint


class Director:
    """``state`` is the dict where the director keeps what must survive a save (pacing counters,
    lore already offered). By default it is the story's own ``story.state.director``: fine when
    one thread does everything (tools, tests). The runtime runs the director on its brain thread
    while the frame loop copies and saves the story, so it passes a private dict instead (a deep
    copy of ``story.state.director``, which is how a resumed save restores the counters) and
    moves ``snapshot()`` copies into the story on the frame loop's thread: then no dict is ever
    written by one thread while another reads it."""

    def __init__(self, story: Story, store: ProfileStore | None = None, player_id: str | None = None,
                 embed: Embed | None = None, sentiment: SentimentScorer | None = None,
                 pacing: PacingConfig | None = None, bandit: BanditConfig | None = None,
                 clock: Callable[[], float] = time.time, engagement_turns: int = 3,
                 state: dict | None = None):
        if (store is None) != (player_id is None):
            raise ValueError("pass both a profile store and a player id, or neither (no profile)")
        self.story = story
        self.store = store
        self.player_id = check_player_id(player_id) if player_id is not None else None
        self.embed = embed
        self.sentiment = sentiment or lexical_sentiment
        self.clock = clock
        self.engagement_turns = engagement_turns
        self._state = state
        self.pacer = Pacer(story, pacing, embed, state=state)
        cfg = bandit or BanditConfig()
        saved = store.load_bandit(self.player_id, BANDIT_MODEL) if store is not None and \
            store.has_player(self.player_id) else None
        self.bandit = LinUCB.from_state(saved) if saved else LinUCB(cfg.alpha, cfg.ridge, cfg.seed)
        self.session_id = store.start_session(self.player_id, story.scene.scene.id, now=clock()) \
            if store is not None else None
        self.pending: Recommendation | None = None
        self._memory_features: dict[str, Feature] = {}  # used only without a store

    @property
    def state(self) -> dict:
        """The dict this director writes (see the class docstring)."""
        return self._state if self._state is not None else self.story.state.director

    def snapshot(self) -> dict:
        """A deep copy of ``state``, for the owner of the story to put in ``story.state.director``."""
        return copy.deepcopy(self.state)

    # -- what the characters' prompts get ---------------------------------------------------
    def goal(self) -> str:
        return self.story.scene.beat(self.story.state.beat).goal

    def features(self) -> dict[str, Feature]:
        if self.store is None:
            return dict(self._memory_features)
        return self.store.features(self.player_id, now=self.clock())

    def prompt_hints(self, character_id: str) -> list[str]:
        """Profile lines (tone, verbosity, favourites) plus this character's recommendation."""
        hints = profile_hints(self.features(), self.story.scene, character_id)
        if self.pending is not None and self.pending.character_id == character_id:
            hints.append(self.pending.hint)
        return hints

    # -- events from the runtime ----------------------------------------------------------
    def on_player_line(self, text: str, addressed: str | None = None) -> Nudge | None:
        judged = self.pacer.on_player_line(text, addressed)
        interests = interest_scores(text, self.embed)
        feats = {f"interest.{k}": v for k, v in interests.items()}
        feats["words_per_line"] = float(len(words(text)))
        feats["sentiment"] = float(self.sentiment(text))
        if addressed:
            feats[f"talk.{addressed}"] = 1.0
        for topic in self._topics(text):
            feats[f"topic.{topic}"] = 1.0
        self._record("line", addressed or "", judged.relevance,
                     {"on_topic": judged.on_topic, "interests": interests}, feats)
        if self.store is not None:
            self.store.add_transcript(self.player_id, "player", text, self.session_id, now=self.clock())
        self._engage_line(text)
        if judged.nudge is not None:
            log.info("nudge by %s (%s)", judged.nudge.character_id, judged.nudge.reason)
        return judged.nudge

    def on_character_line(self, character_id: str, text: str) -> None:
        self._record("character_line", character_id, 1.0, None, {"character_line": 1.0})
        if self.store is not None:
            self.store.add_transcript(self.player_id, character_id, text, self.session_id, now=self.clock())

    def on_interruption(self, character_id: str) -> None:
        self._record("interrupt", character_id, 1.0, None, {"interrupt": 1.0})
        if self.pending is not None and self.pending.character_id == character_id:
            self.pending.engagement -= 0.5

    def on_time(self, dt: float, someone_speaking: bool = False) -> Nudge | None:
        return self.pacer.on_time(dt, someone_speaking)

    def on_gaze(self, dwell: Mapping[str, float]) -> None:
        """Seconds looked at each target ('prop.<id>' / 'character.<id>', see gaze.py)."""
        feats: dict[str, float] = {}
        for target, seconds in dwell.items():
            if seconds <= 0:
                continue
            feats[f"gaze.{target}"] = float(seconds)
            kind, _, ident = target.partition(".")
            # looking at a character is attention to talk; at a prop, to doing
            feats["interest.lore" if kind == "character" else "interest.action"] = \
                feats.get("interest.lore" if kind == "character" else "interest.action", 0.0) + seconds / 10.0
            arm = self.pending.arm if self.pending is not None else None
            if arm is not None and ident in (arm.character_id, arm.trigger_id):
                self.pending.engagement += min(0.5, seconds / 10.0)
        if feats:
            self._record("gaze", "", float(sum(dwell.values())), dict(dwell), feats)

    def on_trigger(self, result: TriggerResult) -> None:
        """After ``story.apply``: remember the choice; credit a recommendation it fulfils."""
        if not result.fired:
            return
        desc = self.story.scene.trigger(result.trigger).description
        feats = {f"interest.{k}": v for k, v in interest_scores(desc, self.embed).items() if k != "lore"}
        feats[f"choice.{result.trigger}"] = 1.0
        self._record("choice", result.trigger, 1.0, {"by": result.by, "beat_after": result.beat_after}, feats)
        if self.pending is not None and self.pending.arm.trigger_id == result.trigger:
            self.pending.engagement += 1.0
            self._resolve()
        if result.ended is not None:
            self.end_session(result.ended)

    # -- recommendation ---------------------------------------------------------------------
    def recommend(self) -> Recommendation | None:
        """Choose side content for a character to offer; scores the previous one first."""
        if self.pending is not None:
            self._resolve()
        arms = candidate_arms(self.story, self._told(), self.pacer.counters.get("last_addressed"), self.embed)
        if not arms:
            return None
        context = context_vector(taste(self.features()))
        choice = self.bandit.choose([a.id for a in arms], np.array([a.vector() for a in arms]), context)
        arm = arms[choice.index]
        explanation = {**choice.explanation, "character": arm.character_id, "hint": arm.hint,
                       "beat": self.story.state.beat}
        decision_id = None
        if self.store is not None:
            decision_id = self.store.log_decision(self.player_id, arm.id, explanation, self.session_id,
                                                  now=self.clock())
        log.info("recommend %s to %s: %s; drivers %s", arm.id, arm.character_id, explanation["why"],
                 explanation["drivers"])
        self.pending = Recommendation(decision_id, arm, explanation, choice.x, self.engagement_turns)
        if arm.kind == "lore":
            self.state.setdefault("recommend", {})["told"] = sorted(self._told() | {arm.id})
        return self.pending

    def _told(self) -> set[str]:
        """Lore arms already offered this story (kept in the save, so not offered twice)."""
        return set(self.state.get("recommend", {}).get("told", []))

    def _engage_line(self, text: str) -> None:
        rec = self.pending
        if rec is None:
            return
        if lexical_relevance(text, [rec.arm.text]) >= 0.25 or self._embed_close(text, rec.arm.text):
            rec.engagement += 0.5
        rec.turns_left -= 1
        if rec.turns_left <= 0:
            self._resolve()

    def _embed_close(self, text: str, target: str) -> bool:
        if self.embed is None:
            return False
        v = np.asarray(self.embed([text, target]))
        return float(v[0] @ v[1] / max(1e-12, np.linalg.norm(v[0]) * np.linalg.norm(v[1]))) >= 0.45

    def _resolve(self) -> float | None:
        rec, self.pending = self.pending, None
        if rec is None:
            return None
        reward = float(np.clip(rec.engagement, 0.0, 1.0))
        self.bandit.update(rec.x, reward)
        if self.store is not None:
            if rec.decision_id is not None:
                self.store.set_reward(rec.decision_id, reward)
            self.store.save_bandit(self.player_id, BANDIT_MODEL, self.bandit.to_state(), now=self.clock())
        log.info("recommendation %s scored %.2f", rec.arm.id, reward)
        return reward

    def end_session(self, ending: str | None = None) -> None:
        self._resolve()
        if self.store is not None and self.session_id is not None:
            self.store.end_session(self.session_id, ending, now=self.clock())
            self.session_id = None

    # -- helpers ----------------------------------------------------------------------------
    def _topics(self, text: str) -> list[str]:
        """Props and characters the line names (by id or by a word of their name)."""
        stems = set(content_stems(text))
        found = []
        for p in self.story.scene.props:
            if stems & set(content_stems(f"{p.id.replace('_', ' ')} {p.name}")):
                found.append(p.id)
        for c in self.story.scene.characters:
            if stems & set(content_stems(c.name)):
                found.append(c.id)
        return found

    def _record(self, kind: str, subject: str, value: float, detail: dict | None,
                feats: dict[str, float]) -> None:
        if self.store is not None:
            self.store.record_event(self.player_id, kind, subject, value, detail, self.session_id,
                                    feats, now=self.clock())
            return
        for name, x in feats.items():  # no profile: keep this session's taste in memory only
            f = self._memory_features.get(name, Feature(0.0, 0.0))
            self._memory_features[name] = Feature(f.value + x, f.weight + 1.0)


__all__ = ["Director", "Recommendation", "INTERESTS"]
