"""The llama.cpp engine's thread count, 1 against 2 (or any list), on the demo's real prompts.

Per thread count, one engine load each:
- ``prefill_tokens_per_s``, ``tokens_per_s`` (decode), first token cold/cached: ``llm_engines.engine_reply``
  (the runtime's constrained reply path);
- ``heard_to_first_token_ms``: what a session's turn costs from the heard line to the first token,
  ``CharacterMind`` with ``prime`` on (as sessions run it) over the typed demo arc's player lines
  (prompt building + prefill of the turn's own part + the first token), median and each turn.

The figures are only worth choosing ``engine_llamacpp.DEFAULT_THREADS`` from on a quiet machine
(the load average is recorded beside them). Frame p99 busy/idle with the renderer beside the
engine is ``xrstory bench --threads N`` (its playthrough part runs the engine with N threads).

Run:  PYTHONPATH=$PWD .venv/bin/python -m xrstory.bench.llm_threads --threads 1 2 [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from xrstory.bench.llm_engines import demo_turns, engine_reply
from xrstory.bench.options import DEFAULT_SCENE

# the typed demo arc (scenes/lighthouse/playthroughs/full_arc.play): (character, line, who fires what after it)
ARC = [("maren", "Maren, Tobias is freezing. Please light the iron stove.", [("light_stove", "maren"),
                                                                            ("open_cellar", "player")]),
       ("tobias", "Tobias, please fetch the oil from the cellar.", [("fetch_oil", "tobias")]),
       ("maren", "Maren, we have the oil now. Please light up the lamp.", [("light_lamp", "maren")]),
       ("tobias", "Tobias, call the Marigold on the radio.", [("radio_ship", "tobias")]),
       ("maren", "Maren, guide the ship home.", [])]


def heard_to_first_token(engine, scene_dir: Path) -> dict:
    """The arc's turns through ``CharacterMind`` (primed), the conversation noted as the runtime does."""
    from xrstory.mind.mind import CharacterMind, MindConfig
    from xrstory.mind.prompt import HistoryLine
    from xrstory.story import Story, load_scene
    from xrstory.story.scene import PLAYER

    scene = load_scene(scene_dir)
    mind = CharacterMind(engine, scene, MindConfig(prime=True))
    story, history, turns = Story(scene), [], []
    for character, line, fired in ARC:
        out = mind.ask(story, character, line, history=list(history))
        t = out.timings
        turns.append({"character": character, "first_token_ms": round(t.first_token_ms, 1),
                      "new_prompt_tokens": t.prompt_tokens - t.cached_prompt_tokens,
                      "prefill_ms": round(t.prefill_ms, 1)})
        history += [HistoryLine(PLAYER, line), HistoryLine(character, out.reply.say)]
        for trigger, by in fired:  # the arc's story, whatever the model decided (the prompts stay comparable)
            story.apply(trigger, by=by)
    return {"heard_to_first_token_ms": round(statistics.median(t["first_token_ms"] for t in turns), 1),
            "turns": turns}


def measure(threads: int, scene_dir: Path, repeats: int) -> dict:
    from xrstory.mind.defaults import default_llm_path
    from xrstory.mind.engine_llamacpp import LlamaCppEngine

    load_before = os.getloadavg()
    with LlamaCppEngine(default_llm_path(), threads=threads) as engine:
        turns, allowed = demo_turns(scene_dir, engine.count_tokens)
        engine.warm_up(tuple(allowed))
        reply = engine_reply(engine, turns, allowed, repeats)
        engine.forget("bench")  # its slot goes back: each character of the arc gets its own
        arc = heard_to_first_token(engine, scene_dir)
    reply.pop("output", None)
    return {"threads": threads, **{k: reply[k] for k in ("prefill_tokens_per_s", "tokens_per_s",
                                                          "first_token_cold_ms", "first_token_cached_ms")},
            **arc, "load_average": [round(x, 2) for x in load_before], "load_average_after": [
                round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scene", type=Path, default=DEFAULT_SCENE)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    a = ap.parse_args(argv)
    if any(t < 1 for t in a.threads):
        raise SystemExit(f"--threads: each count must be >= 1, got {a.threads}")
    rows = [measure(t, a.scene, a.repeats) for t in a.threads]
    for r in rows:
        print(f"threads {r['threads']}: prefill {r['prefill_tokens_per_s']} tok/s, decode {r['tokens_per_s']} tok/s, "
              f"first token cold {r['first_token_cold_ms']} ms / cached {r['first_token_cached_ms']} ms, "
              f"heard->first token median {r['heard_to_first_token_ms']} ms "
              f"({[t['first_token_ms'] for t in r['turns']]}); load {r['load_average']}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
