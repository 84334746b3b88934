"""Benchmark of the decoding engines on the same model and the demo's real prompt, side by side.

- ``engine_reply``: the runtime's path, ``Engine.stream`` with the reply grammar (``schema.reply_lark``)
  as ``CharacterMind`` sends it: tokens/s of the streamed reply measured where our code sees
  the tokens, first token cold (nothing of this prompt cached) and cached (the next turn: one
  more conversation line and a new player line), prefill tokens/s of the cold prompt;
- ``bare_xllamacpp``: the same llama.cpp server object with nothing of ours around it (no
  grammar, no penalties, ``ignore_eos``, exactly n tokens), timed in its own callback.

Tokens/s are (tokens - 1) / (time of the last token - time of the first token): decode speed,
prefill excluded, on both sides. Used by ``part_llm``; run alone:
  PYTHONPATH=$PWD .venv/bin/python -m xrstory.bench.worker llm
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from xrstory.mind.engine import DecodeRequest, Engine, EngineSpec, load_engine
from xrstory.mind.prompt import plan_prompt
from xrstory.mind.schema import reply_lark
from xrstory.story import Story, load_scene

PLAYER_LINES = ("It's freezing in here. Can you get the stove going?", "Is there any tea?")


def demo_turns(scene_dir: Path, count_tokens=None) -> tuple[list[list[dict]], list[str]]:
    """Two consecutive turns of Maren (messages each) and the triggers allowed; the second turn's
    prompt is the first one's with the exchange appended (what a real next turn sends)."""
    scene = load_scene(scene_dir)
    story = Story(scene)
    history = [("tobias", "Please... so cold."), ("player", "Hello? Is anyone here?")]
    allowed = story.allowed_triggers("maren")
    turns = []
    for i, line in enumerate(PLAYER_LINES):
        plan = plan_prompt(scene, story.state, "maren", line, history, allowed_triggers=allowed,
                           count_tokens=count_tokens)
        turns.append(plan.messages)
        history = history + [("player", line), ("maren", "Aye, give me a moment." if i == 0 else "")]
    return turns, allowed


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 2) if xs else None


def _evict(engine: Engine, key: str) -> None:
    """Fill ``key``'s cache with an unrelated prompt, so the next request on it starts cold."""
    req = DecodeRequest(key, [{"role": "system", "content": "Count."}, {"role": "user", "content": "1 2 3"}],
                        max_tokens=2)
    for _ in engine.stream(req):
        pass


def _timed(engine: Engine, req: DecodeRequest) -> dict:
    stamps: list[float] = []
    t0 = time.perf_counter()
    res = None
    for delta, step in engine.stream(req):
        res = step
        if delta:
            stamps.append(time.perf_counter())
    assert res is not None
    n = len(stamps)
    return {"first_token_ms": (stamps[0] - t0) * 1000 if stamps else None,
            "tokens_per_s": (n - 1) / (stamps[-1] - stamps[0]) if n > 2 else None,
            "tokens": res.tokens, "prompt_tokens": res.prompt_tokens, "cached": res.cached_prompt_tokens,
            "prefill_ms": res.prefill_ms, "text": res.text, "complete": res.complete}


def engine_reply(engine: Engine, turns: list[list[dict]], allowed: list[str], repeats: int,
                 max_tokens: int = 160) -> dict:
    """The reply path on ``engine``: cold and cached first token, tokens/s, prefill tokens/s."""
    lark = reply_lark(allowed)
    cold, cached, tps, prefill_tps, prefill_cached_ms = [], [], [], [], []
    last = {}
    for rep in range(repeats):
        engine.forget("bench")
        _evict(engine, "bench")
        # a fresh first line per repeat: llama.cpp also keeps earlier prompts in host RAM and
        # restores a matching one into the slot, which would make the "cold" turn a cached one
        nonce = f"[bench run {time.time_ns()}-{rep}]\n"
        for i, messages in enumerate(turns[:2]):
            messages = [{**messages[0], "content": nonce + messages[0]["content"]}, *messages[1:]]
            req = DecodeRequest("bench", messages, lark=lark, allowed_triggers=tuple(allowed),
                                max_tokens=max_tokens, say_tokens=max_tokens - 48)
            r = _timed(engine, req)
            (cold if i == 0 else cached).append(r["first_token_ms"])
            if r["tokens_per_s"]:
                tps.append(r["tokens_per_s"])
            new = r["prompt_tokens"] - r["cached"]
            if i == 0 and r["prefill_ms"] and new > 0:
                prefill_tps.append(new / (r["prefill_ms"] / 1000))
            if i == 1:
                prefill_cached_ms.append(r["prefill_ms"])
            last = r
    return {"first_token_cold_ms": _median([c for c in cold if c is not None]),
            "first_token_cached_ms": _median([c for c in cached if c is not None]),
            "tokens_per_s": _median(tps), "tokens_per_s_all": [round(t, 1) for t in tps],
            "prefill_tokens_per_s": _median(prefill_tps), "cached_turn_prefill_ms": _median(prefill_cached_ms),
            "cached_turn_prompt_tokens": last.get("prompt_tokens"), "cached_turn_cached_tokens": last.get("cached"),
            "output": last.get("text")}


def bare_xllamacpp(engine, messages: list[dict], n_tokens: int, repeats: int) -> dict:
    """xllamacpp alone on ``engine``'s own server object: no grammar, no penalties, n tokens."""
    server = engine._server  # the same loaded model and threads; nothing of ours in the loop
    tps = []
    for i in range(repeats):
        stamps: list[float] = []

        def on_chunk(chunk: dict, stamps=stamps) -> bool:
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                stamps.append(time.perf_counter())
            return False

        body = {"messages": messages, "stream": True, "max_tokens": n_tokens, "temperature": 0.0,
                "ignore_eos": True, "cache_prompt": True, "id_slot": 0, "seed": i}
        server.handle_chat_completions(body, on_chunk)
        if len(stamps) > 2:
            tps.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {"tokens_per_s": _median(tps), "tokens_per_s_all": [round(t, 1) for t in tps]}


def engine_and_bare(spec: EngineSpec, scene_dir: Path, repeats: int, bare_tokens: int) -> dict:
    """One load of ``spec``: ``engine_reply`` on the demo's turns and ``bare_xllamacpp`` on the
    same server object (so the same weights and threads; with an adapter, the merged file)."""
    with load_engine(spec) as eng:
        turns, allowed = demo_turns(scene_dir, eng.count_tokens)
        eng.warm_up(tuple(allowed))
        return {"reply": engine_reply(eng, turns, allowed, repeats),
                "bare": bare_xllamacpp(eng, turns[0], bare_tokens, repeats),
                "threads": eng.threads, "source": str(eng.weights),
                "prompt_tokens": eng.count_tokens(turns[0][0]["content"])}
