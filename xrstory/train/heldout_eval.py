"""Predicted replies on held-out scenes, through the runtime's own path, scored by narrative metrics.

``predict(lm, examples_by_scene)`` answers every held-out turn with ``CharacterMind.ask``
(prompt, constrained decoding to the triggers allowed in that turn's state, as in play) and
pairs each answer with its gold labels (``narrative_metrics.TurnRecord``). ``evaluate_heldout``
does that for the base model and, given one, an adapter, and returns the per-scene and overall
``narrative_scores`` of each side by side with the records.

    xrstory eval corpus --heldout --adapter assets/adapters/general --out reports/heldout
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from xrstory.story import load_scene
from xrstory.story.state import Story, StoryState
from xrstory.train.corpus_set import heldout_scene_dirs
from xrstory.train.dataset import Example, build_examples
from xrstory.train.narrative_metrics import TurnRecord, score_by_scene


def heldout_by_scene(corpus_dir: Path) -> list[tuple[object, list[Example]]]:
    """(scene, its labelled examples) for each held-out scene of the corpus."""
    out = []
    for folder in heldout_scene_dirs(corpus_dir):
        scene = load_scene(folder)
        out.append((scene, build_examples(scene, folder / "dialogue.jsonl")))
    return out


def predict(lm, by_scene: list[tuple[object, list[Example]]], limit: int | None = None,
            max_new_tokens: int = 96, on_turn: Callable[[int], None] | None = None) -> list[TurnRecord]:
    from xrstory.mind.mind import CharacterMind, MindConfig

    records: list[TurnRecord] = []
    for scene, examples in by_scene:
        mind = CharacterMind(lm, scene, MindConfig(max_new_tokens=max_new_tokens))
        for ex in examples[:limit] if limit else examples:
            story = Story(scene, StoryState.model_validate_json(ex.state_json))
            reply = mind.ask(story, ex.character, ex.player, history=ex.history).reply
            records.append(TurnRecord(scene=ex.scene_id, conversation=ex.conversation, kind=ex.kind or "",
                                      player=ex.player, gold_triggers=list(ex.triggers), gold_emotion=ex.emotion,
                                      say=reply.say, emotion=reply.emotion, triggers=list(reply.triggers),
                                      character=ex.character, gold_say=ex.say))
            if on_turn is not None:
                on_turn(len(records))
    return records


def persona_scores(records: list[TurnRecord], embedder) -> dict[str, float]:
    """Mean cosine of each predicted ``say`` to its character's centroid, per scene and overall.

    A held-out scene has no training lines, so the centroid is that character's gold lines in the
    scene: how much the reply sounds like the character as the author wrote them.
    """
    import numpy as np

    from xrstory.train.metrics import persona_similarity

    gold: dict[tuple[str, str], list[str]] = {}
    for r in records:
        gold.setdefault((r.scene, r.character), []).append(r.gold_say)
    centroids = {k: embedder.encode(v, normalize_embeddings=True).mean(axis=0) for k, v in gold.items()}
    sims: dict[str, list[float]] = {}
    for r in records:
        sim = persona_similarity(embedder.encode([r.say]), centroids[(r.scene, r.character)])
        sims.setdefault(r.scene, []).append(sim)
        sims.setdefault("overall", []).append(sim)
    return {k: float(np.mean(v)) for k, v in sims.items()}


def evaluate_heldout(corpus_dir: Path, adapter: str | None, model: str | None = None, device: str = "auto",
                     limit: int | None = None, on_turn: Callable[[str, int], None] | None = None,
                     persona: bool = True) -> dict:
    """{"base": scores, "adapter": scores or None, "records": {"base": [...], "adapter": [...]}}.

    Scores are ``score_by_scene`` plus ``persona_similarity`` (all-MiniLM-L6-v2) when ``persona``.
    """
    from dataclasses import asdict

    from xrstory.mind.loader import ModelSpec, load_language_model

    embedder = None
    if persona:
        from xrstory.train.evaluate import load_embedder

        embedder = load_embedder()
    by_scene = heldout_by_scene(corpus_dir)
    result: dict = {"base": None, "adapter": None, "records": {}, "adapter_path": adapter}
    for side, path in (("base", None), ("adapter", adapter)):
        if side == "adapter" and path is None:
            continue
        with load_language_model(ModelSpec(source=model, adapter=path, device=device)) as lm:
            recs = predict(lm, by_scene, limit, on_turn=(lambda n, s=side: on_turn(s, n)) if on_turn else None)
        result[side] = score_by_scene(recs)
        if embedder is not None:
            for key, sim in persona_scores(recs, embedder).items():
                result[side][key]["persona_similarity"] = sim
        result["records"][side] = [asdict(r) for r in recs]
    return result
