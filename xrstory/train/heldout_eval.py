"""Predicted replies on held-out scenes, through the runtime's own path, scored by narrative metrics.

``predict(engine, examples_by_scene)`` answers every held-out turn with ``CharacterMind.ask``
(prompt, constrained decoding to the triggers allowed in that turn's state, as in play) and
pairs each answer with its gold labels (``narrative_metrics.TurnRecord``). ``evaluate_heldout``
does that for each side (the base model; the general adapter; each scene's own adapter, trained on
its curriculum alone) and returns the per-scene and overall ``narrative_scores`` side by side with
the records; ``heldout_report.write_heldout_report`` draws them.

    xrstory eval corpus --heldout --adapter assets/adapters/general --scene-adapters runs/heldout-scene \
        --engine llamacpp --out reports/heldout
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


def predict(engine, by_scene: list[tuple[object, list[Example]]], limit: int | None = None,
            max_new_tokens: int = 96, on_turn: Callable[[int], None] | None = None) -> list[TurnRecord]:
    """``engine``: an ``Engine`` or a loaded ``loader.LanguageModel`` (run on the torch engine)."""
    from xrstory.mind.mind import CharacterMind, MindConfig

    records: list[TurnRecord] = []
    for scene, examples in by_scene:
        mind = CharacterMind(engine, scene, MindConfig(max_new_tokens=max_new_tokens))
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


def side_adapters(heldout: list[str], general: str | None, scene_adapters: Path | None) -> dict[str, dict]:
    """{side: {scene_id: adapter path or None}}: ``base`` everywhere; ``general`` (one adapter for every
    scene) when given; ``scene`` where ``scene_adapters/<scene_id>/`` holds an adapter for that scene
    (trained on its curriculum alone: its dialogue is the test). Missing scene adapters are left out."""
    sides: dict[str, dict] = {"base": dict.fromkeys(heldout)}
    if general:
        sides["general"] = dict.fromkeys(heldout, general)
    if scene_adapters is not None:
        own = {s: str(scene_adapters / s) for s in heldout if (scene_adapters / s / "adapter_config.json").is_file()}
        if own:
            sides["scene"] = own
    return sides


def _load(engine: str, model: str | None, adapter: str | None, device: str, chat_template: str | None = None):
    """The engine the replies decode on: torch (the trained weights as PEFT holds them) or llama.cpp (as
    players run them, the adapter converted to a GGUF LoRA)."""
    from xrstory.mind.engine import EngineSpec, load_engine

    return load_engine(EngineSpec(engine=engine, model=model, adapter=adapter, device=device,
                                  chat_template=chat_template))


def evaluate_heldout(corpus_dir: Path, adapter: str | None, model: str | None = None, device: str = "auto",
                     limit: int | None = None, on_turn: Callable[[str, int], None] | None = None,
                     persona: bool = True, engine: str = "torch", scene_adapters: Path | None = None,
                     chat_template: str | None = None) -> dict:
    """{"sides": {side: scores}, "base": ..., "adapter": ... (the general side, or None), "records": {side: [...]}}.

    Sides: ``side_adapters``. Scores are ``score_by_scene`` plus ``persona_similarity``
    (all-MiniLM-L6-v2) when ``persona``; a side with scene adapters scores only the scenes it has
    one for, and its "overall" is over those scenes.
    """
    from dataclasses import asdict

    embedder = None  # loaded after the first engine: a model that cannot load fails before it
    by_scene = heldout_by_scene(corpus_dir)
    sides = side_adapters([sc.scene.id for sc, _ in by_scene], adapter, scene_adapters)
    result: dict = {"sides": {}, "records": {}, "adapter_path": adapter, "engine": engine,
                    "adapters": sides}
    for side, per_scene in sides.items():
        recs: list[TurnRecord] = []
        for path in dict.fromkeys(per_scene.values()):  # load each adapter once
            scenes = [(sc, ex) for sc, ex in by_scene if sc.scene.id in per_scene and per_scene[sc.scene.id] == path]
            eng = _load(engine, model, path, device, chat_template)
            try:
                recs += predict(eng, scenes, limit,
                                on_turn=(lambda n, s=side, k=len(recs): on_turn(s, k + n)) if on_turn else None)
            finally:
                eng.close()
        scores = score_by_scene(recs)
        if persona and embedder is None:
            from xrstory.train.evaluate import load_embedder

            embedder = load_embedder()
        if embedder is not None:
            for key, sim in persona_scores(recs, embedder).items():
                scores[key]["persona_similarity"] = sim
        result["sides"][side] = scores
        result["records"][side] = [asdict(r) for r in recs]
    result["base"] = result["sides"]["base"]
    result["adapter"] = result["sides"].get("general")
    return result
