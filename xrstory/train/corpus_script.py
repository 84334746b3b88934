"""Write a dialogue corpus as a short script; the story rules compute every line's state.

A hand-written ``dialogue.jsonl`` line must carry the whole story state before the reply, which
is tedious and easy to get wrong. ``corpus/<scene>/dialogue.txt`` holds only what a writer writes;
``build_corpus`` replays it through ``Story`` and returns the ``dialogue.jsonl`` lines (states,
fired lists, kinds), refusing any turn that breaks the rules (``xrstory.train.kinds.check_kind``).

    # a comment
    == c01                              a conversation (starts at the scene's start)
    == c02 after light_stove open_door  starts mid-story: these fire first, by whoever may
    maren plain | Can you light the stove? | Aye. There she catches, friend. | determined | light_stove
    tobias not_yet fetch_oil | Fetch the oil! | The door's locked, aye! | worried
    @ ring_bell                         the player fires (presses) a trigger between turns

A turn is ``CHARACTER KIND [ASKED] | player line | reply | emotion [| triggers, space-separated]``.
Regenerate a corpus file: ``xrstory finetune corpus/<scene> --build-corpus`` (writes
``dialogue.jsonl`` beside the script and exits).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from xrstory.story.scene import EMOTIONS, PLAYER, Scene
from xrstory.story.state import Story
from xrstory.train.kinds import check_kind


@dataclass
class ScriptError(Exception):
    problems: list[str]

    def __str__(self) -> str:
        return "\n".join(self.problems)


def _fire_anyone(story: Story, trigger_id: str) -> str | None:
    """Fire ``trigger_id`` by the first actor allowed to; the reason when no one may."""
    for by in [c.id for c in story.scene.characters] + [PLAYER]:
        if story.refusal(trigger_id, by) is None:
            story.apply(trigger_id, by)
            return None
    return story.refusal(trigger_id, PLAYER) or "nobody may fire it now"


def _state(story: Story) -> dict:
    st = story.state
    return {"beat": st.beat, "flags": list(st.flags), "prop_states": dict(st.prop_states),
            "fired": list(st.fired)}


def build_corpus(scene: Scene, script: Path) -> list[dict]:
    """The corpus lines of ``script``, each checked against the story; all problems raised together."""
    problems: list[str] = []
    lines: list[dict] = []
    story: Story | None = None
    convo, turn = "", 0
    names = {c.id for c in scene.characters}
    for n, raw in enumerate(script.read_text(encoding="utf-8").splitlines(), start=1):
        at = f"{script}:{n}"
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("=="):
            head = text[2:].split()
            if not head:
                problems.append(f"{at}: '==' needs a conversation id")
                continue
            convo, turn, story = head[0], 0, Story(scene)
            if len(head) > 1 and head[1] != "after":
                problems.append(f"{at}: expected '== ID after TRIGGER ...', got {text!r}")
            for t in head[2:]:
                why = _fire_anyone(story, t)
                if why:
                    problems.append(f"{at}: opening trigger '{t}' cannot fire ({why})")
            continue
        if story is None:
            problems.append(f"{at}: a turn before the first '== conversation' line")
            continue
        if text.startswith("@"):
            t = text[1:].strip()
            if story.refusal(t, PLAYER) is not None:
                problems.append(f"{at}: the player may not fire '{t}' now ({story.refusal(t, PLAYER)})")
            else:
                story.apply(t, PLAYER)
            continue
        parts = [p.strip() for p in text.split("|")]
        if len(parts) not in (4, 5):
            problems.append(f"{at}: expected 'CHARACTER KIND [ASKED] | player | reply | emotion [| triggers]'")
            continue
        head, player, say, emotion = parts[0].split(), parts[1], parts[2], parts[3]
        triggers = parts[4].split() if len(parts) == 5 else []
        if len(head) not in (2, 3) or head[0] not in names:
            problems.append(f"{at}: '{parts[0]}': expected a character ({', '.join(sorted(names))}), "
                            "a kind and maybe the asked trigger")
            continue
        character, kind, asked = head[0], head[1], head[2] if len(head) == 3 else None
        if emotion not in EMOTIONS:
            problems.append(f"{at}: emotion '{emotion}' is not one of {', '.join(EMOTIONS)}")
            continue
        if not player or len(say.split()) < 4:
            problems.append(f"{at}: the player line must not be empty and the reply needs >= 4 words")
        why = check_kind(story, character, kind, triggers, asked)
        if why:
            problems.append(f"{at}: {why}")
            continue
        reply = {"say": say, "emotion": emotion, "triggers": triggers}
        line = {"conversation": convo, "turn": turn, "character": character, "kind": kind}
        if asked is not None:
            line["asked"] = asked
        line |= {"state": _state(story), "player": player, "reply": reply}
        lines.append(line)
        turn += 1
        for t in triggers:
            story.apply(t, character)
    if problems:
        raise ScriptError(problems)
    return lines


def write_corpus(scene: Scene, folder: Path) -> Path:
    """Build ``folder/dialogue.txt`` into ``folder/dialogue.jsonl``; returns the written path."""
    lines = build_corpus(scene, folder / "dialogue.txt")
    out = folder / "dialogue.jsonl"
    out.write_text("".join(json.dumps(ln, ensure_ascii=False) + "\n" for ln in lines), encoding="utf-8")
    return out
