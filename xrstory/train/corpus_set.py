"""Training sets from a scene (its corpus plus its curriculum) and from the many-scene corpus.

``scene_splits(scene)``: a scene's ``dialogue.jsonl`` split by conversation as before (its test
split unchanged), with the generated curriculum added to train and validation and the hand-written
training lines counted ``corpus_weight`` times; a scene without ``dialogue.jsonl`` is split from
its curriculum alone. With both, the hand-written validation turns are also the ``selection``: the
checkpoint kept is the one that decides the author's own lines best, not the one of lowest loss on
a validation set that is mostly generated.

``general_splits(corpus_dir)``: every scene of ``corpus/`` except those ``corpus/split.toml`` holds
out, each as above but with no test split (the held-out scenes are the test). The held-out scenes'
folders are never opened here: ``training_scene_dirs`` drops them by name before anything loads.
``heldout_examples(corpus_dir)`` is the other side: all their lines, labelled, for evaluation.

``corpus/split.toml`` may also name ``validation`` scenes: never trained on either, their
hand-written lines become ``Splits.selection``, on which the trainer chooses the checkpoint (how
well it decides fire vs hold back on a story it has not seen), so the held-out scenes stay a test
that no training choice was tuned on.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import replace
from pathlib import Path

from xrstory.story import load_scene
from xrstory.story.scene import Scene
from xrstory.train.curriculum import CurriculumConfig, curriculum_examples
from xrstory.train.dataset import (
    DatasetError,
    Example,
    Splits,
    build_examples,
    read_dialogue,
    render_lines,
    split_examples,
)


def split_file(corpus_dir: Path) -> dict:
    path = Path(corpus_dir) / "split.toml"
    if not path.is_file():
        raise DatasetError([f"{path}: not found (it lists the held-out scenes: held_out = [...])"])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DatasetError([f"{path}: {exc}"]) from None
    for key in ("held_out", "validation"):
        names = data.get(key, [] if key == "validation" else None)
        if not isinstance(names, list) or not all(isinstance(h, str) for h in names):
            raise DatasetError([f"{path}: {key} must be a list of scene folder names"])
    both = set(data["held_out"]) & set(data.get("validation", []))
    if both:
        raise DatasetError([f"{path}: {sorted(both)} both held out and validation: a scene is one or the other"])
    return data


def _scene_dirs(corpus_dir: Path) -> list[Path]:
    return sorted(p for p in Path(corpus_dir).iterdir() if (p / "scene.toml").is_file())


def training_scene_dirs(corpus_dir: Path) -> list[Path]:
    split = split_file(corpus_dir)
    names = {p.name for p in _scene_dirs(corpus_dir)}
    for key in ("held_out", "validation"):
        unknown = set(split.get(key, [])) - names
        if unknown:
            raise DatasetError([f"{Path(corpus_dir) / 'split.toml'}: {key} names no scene folder: {sorted(unknown)}"])
    kept_out = set(split["held_out"]) | set(split.get("validation", []))
    return [p for p in _scene_dirs(corpus_dir) if p.name not in kept_out]


def validation_scene_dirs(corpus_dir: Path) -> list[Path]:
    names = set(split_file(corpus_dir).get("validation", []))
    return [p for p in _scene_dirs(corpus_dir) if p.name in names]


def heldout_scene_dirs(corpus_dir: Path) -> list[Path]:
    held = set(split_file(corpus_dir)["held_out"])
    return [p for p in _scene_dirs(corpus_dir) if p.name in held]


def _curriculum_split(examples: list[Example], seed: int) -> tuple[list[Example], list[Example], list[Example]]:
    s = split_examples(examples, seed=seed)
    return s.train, s.validation, s.test


def scene_splits(scene: Scene, curriculum: CurriculumConfig | None = CurriculumConfig(), corpus_weight: int = 2,
                 seed: int = 1234, with_test: bool = True, transcripts: list[Path] | tuple = (),
                 use_corpus: bool = True) -> Splits:
    """The scene's corpus (if any, with playthrough ``transcripts``) plus its curriculum; see the module docstring.

    With no curriculum and ``corpus_weight`` 1 this is exactly ``dataset.load_splits`` (same
    lines, same order), so earlier adapters' commands still reproduce them.
    """
    from xrstory.train.transcripts import read_transcript

    corpus = Path(scene.folder) / "dialogue.jsonl"
    gen = curriculum_examples(scene, curriculum) if curriculum is not None else []
    g_train, g_val, g_test = _curriculum_split(gen, seed) if gen else ([], [], [])
    # use_corpus=False: the curriculum alone, as for a scene with no corpus (a held-out scene's
    # dialogue is its test, so its own adapter must never see it)
    lines = [(f"{corpus}:{n}", ln) for n, ln in read_dialogue(corpus)] if use_corpus and corpus.is_file() else []
    for t in transcripts:
        lines += read_transcript(Path(t))[0]
    if lines:
        hand = render_lines(scene, lines)
        if with_test:
            s = split_examples(hand, seed=seed)
        else:
            s = split_examples(hand, seed=seed, fractions=(0.9, 0.1, 0.0))
            s = Splits(train=s.train + s.test, validation=s.validation, test=[])
        if not gen:
            return Splits(train=s.train * max(1, corpus_weight), validation=s.validation, test=s.test)
        train = s.train * max(1, corpus_weight) + g_train + g_test
        return Splits(train=_shuffled(train, seed), validation=s.validation + g_val, test=s.test,
                      selection=list(s.validation))
    if not gen:
        raise DatasetError([f"{corpus}: no dialogue and the curriculum is off: nothing to train on"])
    return Splits(train=_shuffled(g_train, seed), validation=g_val, test=g_test if with_test else [])


def general_splits(corpus_dir: Path, curriculum: CurriculumConfig | None = CurriculumConfig(),
                   corpus_weight: int = 2, seed: int = 1234) -> tuple[Splits, list[str]]:
    """All training scenes of the corpus together; returns the splits and the scene ids used."""
    train, val, used = [], [], []
    for i, folder in enumerate(training_scene_dirs(corpus_dir)):
        scene = load_scene(folder)
        cur = replace(curriculum, seed=curriculum.seed + i) if curriculum is not None else None
        s = scene_splits(scene, cur, corpus_weight, seed, with_test=False)
        train += s.train
        val += s.validation
        used.append(scene.scene.id)
    selection = [e for folder in validation_scene_dirs(corpus_dir)
                 for e in build_examples(load_scene(folder), folder / "dialogue.jsonl")]
    # validation shuffled too: --limit-eval takes its first N, which must not all be one scene
    return Splits(train=_shuffled(train, seed), validation=_shuffled(val, seed + 1), test=[],
                  selection=selection), used


def heldout_examples(corpus_dir: Path) -> list[Example]:
    """Every line of every held-out scene, labelled with its kind and scene: the test set."""
    out: list[Example] = []
    for folder in heldout_scene_dirs(corpus_dir):
        out += build_examples(load_scene(folder), folder / "dialogue.jsonl")
    return out


def _shuffled(items: list[Example], seed: int) -> list[Example]:
    items = list(items)
    random.Random(seed).shuffle(items)
    return items
