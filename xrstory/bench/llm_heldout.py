"""The held-out test turns of the demo's corpus through the runtime's reply path on one engine:
trigger decisions against the gold ones and how repetitive ``say`` is (distinct-2), so engines,
repetition settings and prompt layouts can be compared on the same turns.

    from xrstory.bench.llm_heldout import heldout_replies
    heldout_replies(load_engine(EngineSpec(engine="llamacpp")), Path("scenes/lighthouse"))

``distinct_2``: distinct word bigrams / all word bigrams over every reply's ``say`` (higher:
less repetitive); ``within_reply_repeats``: replies that repeat one of their own bigrams.
"""

from __future__ import annotations

import time
from pathlib import Path

from xrstory.mind.engine import Engine


def _bigrams(text: str) -> list[tuple[str, str]]:
    words = [w.strip(".,!?;:\"'").lower() for w in text.split()]
    words = [w for w in words if w]
    return list(zip(words, words[1:], strict=False))


def distinct_2(texts: list[str]) -> float:
    grams = [g for t in texts for g in _bigrams(t)]
    return round(len(set(grams)) / len(grams), 3) if grams else 0.0


def heldout_replies(engine: Engine, scene_dir: Path, max_new_tokens: int = 120, seed: int = 1234,
                    limit: int | None = None, sampling=None) -> dict:
    from xrstory.mind.mind import CharacterMind, MindConfig
    from xrstory.story import Story, load_scene
    from xrstory.story.state import StoryState
    from xrstory.train.dataset import load_splits

    scene = load_scene(scene_dir)
    test = load_splits(scene, seed=seed).test[:limit]
    cfg = MindConfig(max_new_tokens=max_new_tokens)
    mind = CharacterMind(engine, scene, cfg if sampling is None else MindConfig(max_new_tokens, sampling=sampling))
    rows, t0 = [], time.perf_counter()
    for ex in test:
        story = Story(scene, StoryState.model_validate_json(ex.state_json))
        out = mind.ask(story, ex.character, ex.player, history=ex.history)
        rows.append({"character": ex.character, "player": ex.player, "gold": sorted(ex.triggers),
                     "triggers": sorted(out.reply.triggers), "say": out.reply.say, "fallback": out.reply.fallback,
                     "first_token_ms": round(out.timings.first_token_ms, 1),
                     "prompt_tokens": out.timings.prompt_tokens, "cached": out.timings.cached_prompt_tokens})
    says = [r["say"] for r in rows]
    return {"engine": engine.name, "turns": len(rows),
            "trigger_exact": sum(r["gold"] == r["triggers"] for r in rows),
            "distinct_2": distinct_2(says),
            "within_reply_repeats": sum(len(set(g)) < len(g) for g in map(_bigrams, says)),
            "fallbacks": sum(r["fallback"] for r in rows), "seconds": round(time.perf_counter() - t0, 1),
            "rows": rows}
