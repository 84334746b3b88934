"""The general-adapter training set and command: every corpus scene but the held-out ones.

``general_splits`` never opens a held-out scene (shown by breaking their files in a copy of the
corpus), ``finetune --dry-run`` prints the counts per kind without a model, bad input exits 2,
and a 2-step ``xrstory finetune corpus --general`` run (real SmolLM2, CPU) writes an adapter.
Run: ``.venv/bin/python -m pytest tests/test_corpus_general.py -q``
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xrstory.train.corpus_set import (
    general_splits,
    heldout_examples,
    split_file,
    training_scene_dirs,
)
from xrstory.train.curriculum import CurriculumConfig
from xrstory.train.dataset import DatasetError

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "xrstory.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_general_splits_never_read_the_held_out_scenes(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    held = split_file(corpus)["held_out"]
    assert sorted(held) == ["clockmaker_shop", "field_hospital", "rain_market"]
    for name in held:
        (corpus / name / "scene.toml").write_text("this is [not toml", encoding="utf-8")
        (corpus / name / "dialogue.jsonl").write_text("{broken\n", encoding="utf-8")
    splits, used = general_splits(corpus, CurriculumConfig(conversations=3))
    assert len(used) == len(training_scene_dirs(corpus)) >= 9
    assert not {"clockmaker_shop", "field_hospital", "rain_market"} & set(used)
    assert splits.train and splits.validation and not splits.test
    assert {e.scene_id for e in splits.train} == set(used)
    kinds = {e.kind for e in splits.train}
    assert {"plain", "not_yet", "wrong_character", "injection"} <= kinds


def test_validation_scenes_are_not_trained_on_and_become_the_selection_turns(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    split = split_file(corpus)
    (corpus / "split.toml").write_text(f"held_out = {json.dumps(split['held_out'])}\n"
                                       'validation = ["night_train"]\n', encoding="utf-8")
    splits, used = general_splits(corpus, CurriculumConfig(conversations=2))
    assert "night_train" not in used and "night_train" not in {e.scene_id for e in splits.train + splits.validation}
    assert {e.scene_id for e in splits.selection} == {"night_train"}
    assert all(e.kind for e in splits.selection) and any(e.triggers for e in splits.selection)
    assert len(splits.selection) == len((corpus / "night_train" / "dialogue.jsonl").read_text().splitlines())
    (corpus / "split.toml").write_text(f"held_out = {json.dumps(split['held_out'])}\n"
                                       f"validation = [{json.dumps(split['held_out'][0])}]\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="both held out and validation"):
        training_scene_dirs(corpus)


def test_heldout_examples_are_the_held_out_dialogue():
    ex = heldout_examples(ROOT / "corpus")
    assert {e.scene_id for e in ex} == {"clockmaker_shop", "field_hospital", "rain_market"}
    assert all(e.kind for e in ex) and len(ex) >= 100


def test_a_bad_split_file_is_named(tmp_path):
    (tmp_path / "split.toml").write_text('held_out = ["nowhere"]\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="held_out names no scene folder"):
        training_scene_dirs(tmp_path)
    r = _cli("finetune", str(tmp_path), "--general", "--dry-run")
    assert r.returncode == 2 and "split.toml" in r.stderr


def test_dry_run_prints_counts_per_kind_without_a_model():
    r = _cli("finetune", "corpus/night_train", "--dry-run", "--conversations", "10")
    assert r.returncode == 0, r.stderr
    for word in ("plain", "wrong_character", "injection", "validation", "test"):
        assert word in r.stdout
    r = _cli("finetune", "corpus/night_train")
    assert r.returncode == 2 and "--out is required" in r.stderr


def _train_counts(stdout: str) -> dict[str, int]:
    """kind -> training examples, from the dry run's table."""
    rows = re.findall(r"^\W*(\w+)\s*\W\s*(\d+)\s*\W", stdout, flags=re.M)
    return {kind: int(n) for kind, n in rows}


def test_fire_share_thins_the_holding_kinds_and_keeps_every_firing_turn():
    """--fire-share raises the firing turns' share by dropping holding turns, never firing ones."""
    counts = {}
    for share in ("0.5", "0.7"):
        r = _cli("finetune", "corpus/night_train", "--dry-run", "--conversations", "20", "--no-corpus",
                 "--fire-share", share)
        assert r.returncode == 0, r.stderr
        counts[share] = _train_counts(r.stdout)
    fire = ("plain", "indirect", "misspelt", "asr", "gaze", "redirect")
    for kind in fire:
        assert counts["0.7"].get(kind, 0) == counts["0.5"].get(kind, 0), kind
    assert counts["0.7"]["all"] < counts["0.5"]["all"]
    n_fire = sum(counts["0.7"].get(k, 0) for k in fire)
    assert 0.65 <= n_fire / counts["0.7"]["all"] <= 0.75
    for bad in ("1.5", "1.0", "0"):
        r = _cli("finetune", "corpus/night_train", "--dry-run", "--fire-share", bad)
        assert r.returncode == 2 and "--fire-share" in r.stderr and "Traceback" not in r.stderr, bad


@pytest.mark.slow
def test_two_step_general_finetune_writes_an_adapter(tmp_path):
    out = tmp_path / "general"
    r = _cli("finetune", "corpus", "--general", "--out", str(out), "--max-steps", "2", "--batch-size", "1",
             "--grad-accum", "1", "--limit-train", "2", "--limit-eval", "2", "--lora-layers", "2",
             "--eval-every", "2", "--conversations", "2", "--limit-selection", "4")
    assert r.returncode == 0, r.stderr[-2000:]
    said = " ".join(r.stderr.split())
    n_train = len(training_scene_dirs(ROOT / "corpus"))
    assert f"general: {n_train} scenes" in said and "held-out scenes not read" in said
    validation = split_file(ROOT / "corpus").get("validation", [])
    assert validation and f"checkpoint chosen on the unseen scenes {', '.join(sorted(validation))}" in said
    history = json.loads((out / "history.json").read_text())
    # steps 0 and 2 scored on 4 turns of the unseen scenes, the checkpoint kept by that decision
    assert history["selection_examples"] == 4 and len(history["sel_decision"]) == 2
    assert all(0.0 <= d <= 1.0 for d in history["sel_decision"])
    for name in ("adapter_model.safetensors", "adapter_config.json", "train_config.json", "history.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["extra"]["general"] is True and cfg["extra"]["scene"] == "corpus"


@pytest.mark.slow
def test_heldout_eval_scores_predicted_replies_per_scene(tmp_path):
    r = _cli("eval", "corpus", "--heldout", "--limit", "2", "--json", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert result["adapter"] is None
    scores = result["base"]
    assert set(scores) == {"overall", "clockmaker_shop", "field_hospital", "rain_market"}
    assert scores["overall"]["n_turns"] == 6.0
    for key in ("trigger_f1", "fire_recall", "held_back", "refusal_in_character", "sentence_rate",
                "distinct_lines", "copy_rate", "emotion_accuracy", "persona_similarity"):
        assert key in scores["overall"]
    assert -1.0 <= scores["rain_market"]["persona_similarity"] <= 1.0
    records = json.loads((tmp_path / "heldout.json").read_text())["records"]["base"]
    assert len(records) == 6 and all(isinstance(x["say"], str) for x in records)
    for name in ("report.html", "heldout_overall.png", "heldout_scenes.png"):
        assert (tmp_path / name).stat().st_size > 1000, name


@pytest.mark.slow
def test_heldout_eval_scores_three_sides_on_llamacpp(tmp_path):
    """base, the general adapter and one scene's own adapter, side by side, decoded on llama.cpp; the
    lighthouse adapter stands in for both adapters (any PEFT adapter of the base model will do)."""
    own = tmp_path / "own"
    own.mkdir()
    shutil.copytree(ROOT / "assets/adapters/lighthouse", own / "rain_market")
    out = tmp_path / "out"
    r = _cli("eval", "corpus", "--heldout", "--limit", "2", "--engine", "llamacpp", "--adapter",
             str(ROOT / "assets/adapters/lighthouse"), "--scene-adapters", str(own), "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((out / "heldout.json").read_text())
    assert list(result["sides"]) == ["base", "general", "scene"] and result["engine"] == "llamacpp"
    assert set(result["sides"]["scene"]) == {"overall", "rain_market"}  # only the scene with its own adapter
    assert result["sides"]["general"]["overall"]["n_turns"] == 6.0
    assert result["sides"]["scene"]["overall"]["n_turns"] == 2.0
    page = (out / "report.html").read_text()
    assert "heldout_overall.png" in page and "<th>scene</th>" in page
    assert "rain_market" in r.stdout and "general" in r.stdout


def test_scene_splits_keep_the_test_split_and_reproduce_the_old_split_without_curriculum():
    from xrstory.story import load_scene
    from xrstory.train.corpus_set import scene_splits
    from xrstory.train.dataset import load_splits

    scene = load_scene(ROOT / "scenes" / "lighthouse")
    old = load_splits(scene)
    plain = scene_splits(scene, None, corpus_weight=1)
    for part in ("train", "validation", "test"):
        assert [e.source for e in getattr(plain, part)] == [e.source for e in getattr(old, part)], part
    mixed = scene_splits(scene, CurriculumConfig(conversations=10), corpus_weight=2)
    assert [e.source for e in mixed.test] == [e.source for e in old.test]  # the held-out turns never move
    hand = [e for e in mixed.train if not e.source.startswith("curriculum:")]
    assert len(hand) == 2 * len(old.train)
    assert any(e.source.startswith("curriculum:") for e in mixed.validation)
    # the checkpoint is chosen on the author's own validation lines, never on generated ones
    assert [e.source for e in mixed.selection] == [e.source for e in old.validation]
    assert not plain.selection  # without a curriculum: chosen by loss, as the shipped adapter was


def test_eval_of_a_scene_without_dialogue_tests_on_unseen_curriculum_turns(tmp_path):
    from xrstory.cli.train import _scene_and_splits

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "train_config.json").write_text(json.dumps({"seed": 5, "extra": {"curriculum_conversations": 12}}))
    scene, splits = _scene_and_splits(ROOT / "scenes" / "harbour", 1234, [], adapter)
    assert splits.test and all(e.kind and e.scene_id == "harbour" for e in splits.test)
    train_convos = {e.conversation for e in splits.train}
    assert not train_convos & {e.conversation for e in splits.test}
    # the same curriculum the adapter was trained on: 12 conversations, seed 5
    assert len(train_convos | {e.conversation for e in splits.validation} | {e.conversation for e in splits.test}) == 12


def test_no_corpus_trains_a_held_out_scene_on_its_curriculum_alone():
    """--no-corpus: a held-out scene's own adapter never sees its dialogue.jsonl (the test)."""
    from xrstory.story import load_scene
    from xrstory.train.corpus_set import scene_splits

    scene = load_scene(ROOT / "corpus" / "rain_market")
    s = scene_splits(scene, CurriculumConfig(conversations=6), use_corpus=False)
    every = s.train + s.validation + s.test
    assert every and all(e.source.startswith("curriculum:") for e in every)
    gold = {json.loads(ln)["player"] for ln in (ROOT / "corpus/rain_market/dialogue.jsonl").read_text().splitlines()}
    assert not gold & {e.player for e in every}
