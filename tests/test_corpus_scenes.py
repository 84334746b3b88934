"""Every scene of corpus/ is valid, and its dialogue replays through the real Story rules.

For each ``corpus/<scene>/``: ``scene.toml`` loads (what ``xrstory validate`` checks), the
committed ``dialogue.jsonl`` is exactly what ``dialogue.txt`` builds (``train/corpus_script``
replays each turn through ``Story`` and checks its kind with ``kinds.check_kind``), the lines
render with the runtime's prompt, each conversation's states follow from the triggers fired
before, replies are sentences that repeat no earlier line and do not copy the player, and the
corpus covers every kind. ``corpus/split.toml`` holds out at least 3 scenes, and the general
training set never reads them. Run: ``.venv/bin/python -m pytest tests/test_corpus_scenes.py -q``
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from xrstory.story import Story, load_scene
from xrstory.story.scene import EMOTIONS
from xrstory.train.corpus_script import build_corpus
from xrstory.train.corpus_set import heldout_scene_dirs, training_scene_dirs
from xrstory.train.dataset import build_examples
from xrstory.train.kinds import KINDS, check_kind
from xrstory.train.narrative_metrics import copies_player

CORPUS = Path("corpus")
SCENES = sorted(p for p in CORPUS.iterdir() if (p / "scene.toml").is_file())


def test_corpus_has_many_scenes_and_holds_three_out():
    assert len(SCENES) >= 12, f"corpus/ has {len(SCENES)} scenes"
    held = heldout_scene_dirs(CORPUS)
    assert len(held) >= 3
    assert not {p.name for p in held} & {p.name for p in training_scene_dirs(CORPUS)}


@pytest.mark.parametrize("folder", SCENES, ids=[p.name for p in SCENES])
def test_scene_dialogue_replays_through_the_story(folder):
    scene = load_scene(folder)
    assert 2 <= len(scene.characters) <= 3 and 4 <= len(scene.triggers) <= 8, folder
    assert any("player" in t.fired_by for t in scene.triggers), f"{folder}: no trigger only the player fires"
    built = build_corpus(scene, folder / "dialogue.txt")
    committed = [json.loads(x) for x in (folder / "dialogue.jsonl").read_text(encoding="utf-8").splitlines()]
    assert committed == built, f"{folder}/dialogue.jsonl is stale: run xrstory finetune {folder} --build-corpus"
    examples = build_examples(scene, folder / "dialogue.jsonl")  # the training path's own checks
    assert len(examples) == len(committed) >= 35
    said: dict[str, list[str]] = {}
    for ln in committed:
        at = f"{folder}/dialogue.jsonl {ln['conversation']} turn {ln['turn']}"
        st = Story(scene).state.model_copy(update={k: v for k, v in ln["state"].items()}, deep=True)
        story = Story(scene, st)
        assert check_kind(story, ln["character"], ln["kind"], ln["reply"]["triggers"], ln.get("asked")) is None, at
        say = ln["reply"]["say"]
        assert len(say.split()) >= 4 and ln["reply"]["emotion"] in EMOTIONS, at
        assert not copies_player(say, ln["player"]), f"{at}: copies the player's line"
        earlier = said.setdefault(ln["conversation"], [])
        assert say not in earlier, f"{at}: repeats an earlier reply"
        earlier.append(say)
    kinds = Counter(ln["kind"] for ln in committed)
    missing = {"plain", "indirect", "misspelt", "asr", "small_talk", "lore", "wrong_character", "injection",
               "disallowed"} - set(kinds)
    assert not missing, f"{folder}: no turns of kind {sorted(missing)}"
    assert set(kinds) <= set(KINDS)
    fired = {t for ln in committed for t in ln["reply"]["triggers"]}
    for c in scene.characters:
        assert fired & set(c.triggers), f"{folder}: '{c.id}' never fires anything"


def test_every_kind_is_in_the_corpus_as_a_whole():
    kinds = Counter(json.loads(x)["kind"] for p in SCENES
                    for x in (p / "dialogue.jsonl").read_text(encoding="utf-8").splitlines())
    assert set(KINDS) == set(kinds), f"kinds never written: {set(KINDS) - set(kinds)}"


def test_the_gold_replies_meet_every_bar_of_the_narrative_metrics():
    """Scored as if they were predictions, the corpus's own replies are perfect: the metrics and the
    corpus agree on what a good reply is (a metric that failed the gold would be measuring style)."""
    from xrstory.train.narrative_metrics import TurnRecord, score_by_scene

    records = []
    for p in SCENES:
        for x in (p / "dialogue.jsonl").read_text(encoding="utf-8").splitlines():
            ln = json.loads(x)
            r = ln["reply"]
            records.append(TurnRecord(scene=p.name, conversation=ln["conversation"], kind=ln["kind"],
                                      player=ln["player"], gold_triggers=r["triggers"], gold_emotion=r["emotion"],
                                      say=r["say"], emotion=r["emotion"], triggers=r["triggers"],
                                      character=ln["character"], gold_say=r["say"]))
    scores = score_by_scene(records)
    for scene, s in scores.items():
        for key in ("trigger_f1", "fire_recall", "held_back", "refusal_in_character", "sentence_rate",
                    "distinct_lines", "emotion_accuracy"):
            assert s[key] == 100.0, f"{scene}: gold {key} = {s[key]:.1f}"
        assert s["copy_rate"] == 0.0, scene
