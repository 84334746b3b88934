"""Training examples from a scene's dialogue corpus, in exactly the runtime's prompt format.

Each corpus line (docs/CONTRACTS.md) becomes one example: the chat messages the runtime would
build for that state (``mind.prompt.build_messages``, including the triggers allowed at that
moment) and the canonical reply JSON as the target. Lines are checked first; every problem is
reported with the file and line. Splits are by conversation, with a fixed seed, so no
conversation leaks between train, validation and test.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xrstory.mind.prompt import HistoryLine, build_messages
from xrstory.mind.reply import Reply, reply_to_json
from xrstory.story.scene import EMOTIONS, PLAYER, Scene
from xrstory.story.state import Story


class DatasetError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _LineState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    beat: str
    flags: list[str] = Field(default_factory=list)
    prop_states: dict[str, str] = Field(default_factory=dict)
    # optional: the triggers fired so far in the story (corpus/ and curriculum lines carry it, so a
    # conversation may open mid-story and a player's own presses count); without it, the
    # triggers named by this conversation's earlier replies
    fired: list[str] | None = None


class _LineReply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    say: str
    emotion: str
    triggers: list[str] = Field(default_factory=list)


class DialogueLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation: str
    turn: int = Field(ge=0)
    character: str
    state: _LineState
    player: str
    reply: _LineReply
    # optional labels (corpus/ and the curriculum): the kind of turn (xrstory.train.kinds) and,
    # for a turn that must not fire, the trigger the player asked for ("" for none of the story's)
    kind: str | None = None
    asked: str | None = None


@dataclass
class Example:
    source: str  # "file:line"
    conversation: str
    character: str
    messages: list[dict]
    target: str  # canonical reply JSON
    allowed: list[str]
    triggers: list[str]  # the gold triggers
    say: str
    player: str
    # kept so evaluation can rebuild the runtime state of this turn
    state_json: str = ""
    history: list[dict] = field(default_factory=list)
    emotion: str = ""
    kind: str | None = None  # xrstory.train.kinds, when the line carries one
    asked: str | None = None
    scene_id: str = ""


@dataclass
class Splits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    # turns of scenes never trained on (corpus/split.toml ``validation``): the trainer keeps the
    # checkpoint that decides them best (fire vs hold back), not the one of lowest loss
    selection: list[Example] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        sizes = {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}
        return sizes | ({"selection": len(self.selection)} if self.selection else {})


def read_dialogue(path: Path) -> list[tuple[int, DialogueLine]]:
    """Parse every line; collect all problems, then raise them together."""
    problems, lines = [], []
    if not path.is_file():
        raise DatasetError([f"{path}: dialogue file not found"])
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            problems.append(f"{path}:{n}: empty line")
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{n}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        try:
            lines.append((n, DialogueLine.model_validate(data)))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.append(f"{path}:{n}: {where}: {err['msg']}")
    if problems:
        raise DatasetError(problems)
    return lines


def build_examples(scene: Scene, path: Path) -> list[Example]:
    """Check the corpus against the scene and render every line into an Example."""
    return render_lines(scene, [(f"{path}:{n}", line) for n, line in read_dialogue(path)])


def render_lines(scene: Scene, lines: list[tuple[str, DialogueLine]]) -> list[Example]:
    """Check parsed lines (``("file:line", line)``) against the scene and render each into an Example.

    Lines of one conversation must come in turn order: earlier lines are the later ones' history.
    """
    problems: list[str] = []
    examples: list[Example] = []
    convo_history: dict[str, list[HistoryLine]] = {}
    convo_fired: dict[str, list[str]] = {}
    triggers = {t.id for t in scene.triggers}
    characters = {c.id for c in scene.characters}
    beats = {b.id for b in scene.beats}
    for where, line in lines:
        bad = False
        if line.character not in characters:
            problems.append(f"{where}: unknown character '{line.character}'")
            bad = True
        if line.state.beat not in beats:
            problems.append(f"{where}: unknown beat '{line.state.beat}'")
            bad = True
        for t in line.reply.triggers:
            if t not in triggers:
                problems.append(f"{where}: reply names unknown trigger '{t}'")
                bad = True
        if not line.player.strip():
            problems.append(f"{where}: empty player line")
            bad = True
        if not line.reply.say.strip():
            problems.append(f"{where}: empty reply 'say'")
            bad = True
        if line.reply.emotion not in EMOTIONS:
            problems.append(f"{where}: emotion '{line.reply.emotion}' is not one of {', '.join(EMOTIONS)}")
            bad = True
        if bad:
            continue
        story = Story(scene)
        st = story.state
        st.beat = line.state.beat
        st.flags = list(line.state.flags)
        st.prop_states.update(line.state.prop_states)
        st.fired = list(line.state.fired if line.state.fired is not None
                        else convo_fired.get(line.conversation, []))
        allowed = story.allowed_triggers(line.character)
        for t in line.reply.triggers:
            if t not in allowed:
                problems.append(f"{where}: reply names trigger '{t}' which is not allowed for "
                                f"'{line.character}' in that state ({story.refusal(t, line.character)})")
                bad = True
        if bad:
            continue
        history = convo_history.setdefault(line.conversation, [])
        messages = build_messages(scene, st, line.character, line.player, history=list(history),
                                  allowed_triggers=allowed)
        reply = Reply(line.character, line.reply.say, line.reply.emotion, tuple(line.reply.triggers))
        examples.append(Example(source=where, conversation=line.conversation, character=line.character,
                                messages=messages, target=reply_to_json(reply), allowed=allowed,
                                triggers=list(line.reply.triggers), say=line.reply.say, player=line.player,
                                state_json=st.model_dump_json(),
                                history=[h.__dict__ for h in history], emotion=line.reply.emotion,
                                kind=line.kind, asked=line.asked, scene_id=scene.scene.id))
        history.append(HistoryLine(PLAYER, line.player))
        history.append(HistoryLine(line.character, line.reply.say))
        convo_fired.setdefault(line.conversation, []).extend(line.reply.triggers)
    if problems:
        raise DatasetError(problems)
    return examples


def split_examples(examples: list[Example], seed: int = 1234, fractions=(0.8, 0.1, 0.1)) -> Splits:
    """Split by conversation (never inside one), shuffled with a fixed seed."""
    convos = sorted({e.conversation for e in examples})
    random.Random(seed).shuffle(convos)
    n = len(convos)
    n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
    n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
    test = set(convos[:n_test])
    val = set(convos[n_test:n_test + n_val])
    return Splits(
        train=[e for e in examples if e.conversation not in test | val],
        validation=[e for e in examples if e.conversation in val],
        test=[e for e in examples if e.conversation in test],
    )


def load_splits(scene: Scene, seed: int = 1234, transcripts: list[Path] | tuple = ()) -> Splits:
    """The scene's ``dialogue.jsonl`` plus any playthrough transcripts, split by conversation."""
    from xrstory.train.transcripts import read_transcript

    lines = [(f"{p}:{n}", line) for p in [Path(scene.folder) / "dialogue.jsonl"] for n, line in read_dialogue(p)]
    for t in transcripts:
        lines += read_transcript(Path(t))[0]
    return split_examples(render_lines(scene, lines), seed=seed)
