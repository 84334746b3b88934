"""What the recommender may suggest now: side content and branches the story allows.

Candidates are (1) triggers allowed now for any character or for the player that do not
simply move the current beat on (side content such as ``share_tea`` or ``ring_bell``), plus
branch triggers when the beat offers more than one way on, and (2) lore: lines of a
character's ``knowledge`` not yet shared this story. Each becomes an ``Arm`` with features
(lore, action, comfort, branch) for the bandit and a hint for the character who offers it.
A recommendation is only ever a hint in a prompt, never a fired trigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from xrstory.director.bandit import ARM_FEATURES
from xrstory.director.text import Embed, interest_scores
from xrstory.story import Story
from xrstory.story.scene import PLAYER


@dataclass(frozen=True)
class Arm:
    id: str  # "trigger:share_tea" or "lore:maren:3"
    kind: str  # "trigger" | "lore"
    character_id: str  # who would offer it
    text: str  # what it is, for the hint and for matching the player's follow-up
    features: dict[str, float] = field(default_factory=dict)
    trigger_id: str | None = None

    def vector(self) -> list[float]:
        return [1.0 if name == "bias" else float(self.features.get(name, 0.0)) for name in ARM_FEATURES]

    @property
    def hint(self) -> str:
        if self.kind == "lore":
            return f"If it fits the conversation, share this: {self.text}"
        if self.features.get("by_player"):
            return f"If it fits, suggest the player could try this themselves: {self.text}"
        return f"If it fits and the player agrees, offer this: {self.text}"


def _first_sentence(text: str) -> str:
    parts = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)
    return parts[0] if parts else text


def _progress_flags(story: Story) -> set[str]:
    beat = story.scene.beat(story.state.beat)
    return {f for tr in beat.transitions for f in tr.when_flags}


def _is_branch(story: Story, trigger_id: str) -> bool:
    fx = story.scene.trigger(trigger_id).effects
    return bool(fx.enter_beat or fx.end_story)


def _advances(story: Story, trigger_id: str) -> bool:
    fx = story.scene.trigger(trigger_id).effects
    return _is_branch(story, trigger_id) or bool(set(fx.set_flags) & _progress_flags(story))


def candidate_arms(story: Story, told: set[str] | None = None, default_character: str | None = None,
                   embed: Embed | None = None) -> list[Arm]:
    """Side content, branches (when there is a choice) and untold lore, in scene order."""
    told = told or set()
    scene = story.scene
    if story.state.ended is not None or not scene.characters:
        return []
    fallback = default_character if default_character in {c.id for c in scene.characters} \
        else scene.characters[0].id
    offered_by: dict[str, str] = {}
    for ch in scene.characters:
        for tid in story.allowed_triggers(ch.id):
            offered_by.setdefault(tid, ch.id)
    for tid in story.allowed_triggers(PLAYER):
        offered_by.setdefault(tid, fallback)
    branches = [t for t in offered_by if _is_branch(story, t)]
    arms = []
    for trig in scene.triggers:  # scene order, so the list is stable
        tid = trig.id
        if tid not in offered_by:
            continue
        if _advances(story, tid) and not (_is_branch(story, tid) and len(branches) > 1):
            continue  # the beat's way on: pacing steers toward it, the recommender does not
        feats = interest_scores(trig.description, embed)
        feats["lore"] = 0.0  # a trigger is something done; stories are the lore arms
        feats["branch"] = 1.0 if _is_branch(story, tid) else 0.0
        by_player = PLAYER in trig.fired_by and offered_by[tid] == fallback \
            and tid not in {t for c in scene.characters for t in c.triggers}
        feats["by_player"] = 1.0 if by_player else 0.0
        arms.append(Arm(f"trigger:{tid}", "trigger", offered_by[tid], _first_sentence(trig.description),
                        feats, trigger_id=tid))
    for ch in scene.characters:
        for i, line in enumerate(ch.knowledge):
            arm_id = f"lore:{ch.id}:{i}"
            if arm_id not in told:
                arms.append(Arm(arm_id, "lore", ch.id, line, {"lore": 1.0}))
    return arms
