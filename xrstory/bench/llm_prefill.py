"""Where a primed turn's prefill time goes on the llama.cpp engine, variant by variant.

A turn in a session is primed (``CharacterMind.prime``): the character's slot already holds the
prompt up to "The player says:", so the turn prefills only the player's line and the end of the
chat template (20-60 tokens). This bench primes Maren's slot with the demo's real prompt and then
sends turns with player lines of different lengths, on the same warm slot, under:

- ``base``: the base GGUF, no grammar, no penalties;
- ``grammar``: + the reply grammar (``schema.reply_lark``; LLGuidance compiles it per request);
- ``sampling``: + the runtime's samplers (DRY, frequency/presence penalties; ``engine.Sampling``);
- ``lora``: + the shipped adapter as a runtime GGUF LoRA (extra matmuls on every token);
- ``merged``: the adapter folded into the weights (``gguf_adapter.merged_gguf_for``), with grammar
  and samplers: what ``auto`` runs;

and reports per variant the turn's new prompt tokens, llama.cpp's ``prompt_ms`` (its prefill),
the wall time from the request to the first streamed token (what a player waits: prefill +
grammar setup + the first sampled token) and the decode tokens/s. The load average is recorded.

Run:  PYTHONPATH=$PWD .venv/bin/python -m xrstory.bench.llm_prefill [--variants base grammar ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from xrstory.bench.options import DEFAULT_SCENE
from xrstory.mind.engine import DecodeRequest, Sampling

VARIANTS = ("base", "grammar", "sampling", "lora", "merged")
# player lines of the arc and longer ones: a turn's suffix of ~20 to ~60 tokens
LINES = ("Maren, Tobias is freezing. Please light the iron stove.",
         "Is there any tea left in the kettle, or did the storm take that too?",
         "Maren, listen to me. The ship is out there in the dark and the lamp has gone out, and Tobias says "
         "the oil is down in the cellar, so what do we do first, and can you help me with it right now?")
PLAIN = Sampling(frequency_penalty=0.0, llamacpp_frequency_penalty=0.0, llamacpp_presence_penalty=0.0,
                 dry_multiplier=0.0)


def _engine(variant: str, threads: int, model: Path | None = None):
    from xrstory.mind.defaults import default_llm_path
    from xrstory.mind.engine_llamacpp import LlamaCppEngine

    base = model or default_llm_path()
    adapter = DEFAULT_SCENE.parents[1] / "assets" / "adapters" / "lighthouse"
    if variant == "lora":
        return LlamaCppEngine(base, adapter=adapter, threads=threads, adapter_mode="lora")
    if variant == "merged":
        return LlamaCppEngine(base, adapter=adapter, threads=threads, adapter_mode="merged")
    return LlamaCppEngine(base, threads=threads)


def _turn(engine, messages: list[dict], lark: str | None, sampling: Sampling) -> dict:
    req = DecodeRequest("maren", messages, lark=lark, max_tokens=60, say_tokens=0 if lark is None else 40,
                        sampling=sampling)
    t0 = time.perf_counter()
    first = None
    stamps = []
    res = None
    for delta, step in engine.stream(req):
        res = step
        if delta:
            now = time.perf_counter()
            first = first or now
            stamps.append(now)
    assert res is not None
    n = len(stamps)
    return {"new_tokens": res.prompt_tokens - res.cached_prompt_tokens, "cached": res.cached_prompt_tokens,
            "prompt_ms": round(res.prefill_ms, 1), "first_token_wall_ms": round((first - t0) * 1000, 1) if first else None,
            "decode_tokens_per_s": round((n - 1) / (stamps[-1] - stamps[0]), 1) if n > 2 else None}


def measure(variant: str, threads: int, repeats: int, model: Path | None = None) -> dict:
    from xrstory.mind.prompt import cache_messages, plan_prompt
    from xrstory.mind.schema import reply_lark
    from xrstory.story import Story, load_scene

    scene = load_scene(DEFAULT_SCENE)
    story = Story(scene)
    allowed = story.allowed_triggers("maren")
    lark = None if variant == "base" else reply_lark(allowed)
    sampling = PLAIN if variant in ("base", "grammar") else Sampling()
    load = [round(x, 2) for x in os.getloadavg()]
    t_load = time.perf_counter()
    with _engine(variant, threads, model) as engine:
        load_s = round(time.perf_counter() - t_load, 2)
        engine.warm_up(tuple(allowed))
        turns = []
        for rep in range(repeats):
            for line in LINES:
                plan = plan_prompt(scene, story.state, "maren", line, [], allowed_triggers=allowed,
                                   count_tokens=engine.count_tokens)
                prime = engine.prefill("maren", cache_messages(scene, plan))  # as CharacterMind.prime does
                r = _turn(engine, plan.messages, lark, sampling)
                r["prime_new_tokens"] = prime.prompt_tokens - prime.cached_prompt_tokens
                r["repeat"] = rep
                turns.append(r)
    per_token = [t["prompt_ms"] / t["new_tokens"] for t in turns if t["new_tokens"]]
    return {"variant": variant, "model": str(model or "default"), "threads": threads, "load_s": load_s,
            "prompt_ms_median": round(statistics.median(t["prompt_ms"] for t in turns), 1),
            "prompt_ms_per_token": round(statistics.median(per_token), 2) if per_token else None,
            "first_token_wall_ms_median": round(statistics.median(t["first_token_wall_ms"] for t in turns), 1),
            "decode_tokens_per_s_median": round(statistics.median(
                t["decode_tokens_per_s"] for t in turns if t["decode_tokens_per_s"]), 1),
            "turns": turns, "load_average": load, "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", type=Path, default=None, help="another base GGUF (default: the shipped one)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    a = ap.parse_args(argv)
    rows = [measure(v, a.threads, a.repeats, a.model) for v in a.variants]
    for r in rows:
        print(f"{r['variant']:9s} prompt_ms median {r['prompt_ms_median']:7.1f} ({r['prompt_ms_per_token']} ms/token), "
              f"first token (wall) {r['first_token_wall_ms_median']:7.1f} ms, decode {r['decode_tokens_per_s_median']} tok/s, "
              f"new tokens {[t['new_tokens'] for t in r['turns'][:len(LINES)]]}, load {r['load_average']}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
