"""Benchmark of the mind's decoding, side by side in one run (ratios, medians; not a timed test).

Measures on the same model and the same real prompt (the demo scene's Maren):
- time to first token, cold (prefix prefilled) and with the cached persona/scene prefix;
- our plain decode loop (greedy, our Llama forward with a static KV cache, one-token steps) in
  tokens/s, per CPU variant (fp32, bf16, int8 dynamic quantisation of Linear layers), and the
  same loop through the model's own forward (DynamicCache), to show what our forward buys;
- transformers ``generate`` on the same tokens, and llama.cpp (llama-cpp-python, the ``llama``
  extra) on the same GGUF when it is installed; ratios ours / theirs;
- the constrained reply loop: tokens/s and the grammar's overhead per token (mask ms/token).

Run:  HF_HUB_OFFLINE=1 .venv/bin/python -m xrstory.bench.llm_decode [--tokens 48] [--repeats 3] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from xrstory.mind.decoder import ConstrainedDecoder, Sampling
from xrstory.mind.kv import make_backend
from xrstory.mind.loader import LanguageModel, ModelSpec, load_language_model
from xrstory.mind.prompt import plan_prompt, prompt_token_ids, render_prompt
from xrstory.story import Story, load_scene

DEMO_SCENE = Path(__file__).resolve().parents[2] / "scenes" / "lighthouse"


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 2) if xs else 0.0


def _demo_prompt(lm: LanguageModel, scene_dir: Path) -> tuple[list[int], list[int], list[str]]:
    scene = load_scene(scene_dir)
    story = Story(scene)
    plan = plan_prompt(scene, story.state, "maren", "It's freezing in here. Can you get the stove going?",
                       history=[("tobias", "Please... so cold."), ("player", "Hello? Is anyone here?")])
    pre, suf = prompt_token_ids(lm.tokenizer, *render_prompt(lm.tokenizer, plan.messages))
    return pre, suf, plan.allowed_triggers


def plain_decode(lm: LanguageModel, prompt_ids: list[int], n_tokens: int,
                 own_forward: bool = True) -> tuple[float, float]:
    """Our loop without a grammar: prefill, then greedy one-token steps. (prefill ms, tokens/s)

    ``own_forward``: our Llama forward with a static KV cache (``kv.LlamaRunner``, what the
    decoder uses); False: the model's own forward with a DynamicCache (``kv.HFBackend``)."""
    backend = make_backend(lm.model, lm.device, prefer_runner=own_forward)
    with torch.inference_mode():
        t0 = time.perf_counter()
        backend.start("bench", [])
        logits = backend.feed(prompt_ids)  # (V,)
        t1 = time.perf_counter()
        for _ in range(n_tokens - 1):
            logits = backend.feed([int(torch.argmax(logits))])
        t2 = time.perf_counter()
    return (t1 - t0) * 1000, (n_tokens - 1) / (t2 - t1)


def hf_generate(lm: LanguageModel, prompt_ids: list[int], n_tokens: int) -> float:
    """transformers ``generate``, greedy, exactly n_tokens; tokens/s after the first token."""
    x = torch.tensor([prompt_ids], device=lm.device)
    kw = dict(do_sample=False, pad_token_id=lm.tokenizer.eos_token_id)
    with torch.inference_mode():
        t0 = time.perf_counter()
        lm.model.generate(x, max_new_tokens=1, min_new_tokens=1, **kw)
        t1 = time.perf_counter()
        lm.model.generate(x, max_new_tokens=n_tokens, min_new_tokens=n_tokens, **kw)
        t2 = time.perf_counter()
    # subtract a 1-token run (prefill + first token) to compare decode speed alone
    return (n_tokens - 1) / max((t2 - t1) - (t1 - t0), 1e-6)


def llama_cpp(gguf: Path, prompt_ids: list[int], n_tokens: int, threads: int, repeats: int) -> dict | None:
    """llama.cpp on the GGUF file itself, when llama-cpp-python is installed (else None)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=threads, n_batch=512, verbose=False, seed=0)
    tps, ttft_warm, ttft_cold = [], [], []
    for _ in range(repeats):
        llm.reset()
        t0 = time.perf_counter()
        llm.create_completion(prompt_ids, max_tokens=1, temperature=0.0)
        ttft_cold.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        llm.create_completion(prompt_ids, max_tokens=1, temperature=0.0)  # prompt KV kept: prefix match
        ttft_warm.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        out = llm.create_completion(prompt_ids, max_tokens=n_tokens, temperature=0.0)
        t1 = time.perf_counter()
        made = out["usage"]["completion_tokens"]
        tps.append((made - 1) / max((t1 - t0) - ttft_warm[-1] / 1000, 1e-6))
    return {"tokens_per_s": _median(tps), "first_token_cold_ms": _median(ttft_cold),
            "first_token_cached_ms": _median(ttft_warm)}


def constrained(lm: LanguageModel, prefix: list[int], suffix: list[int], allowed: list[str],
                repeats: int) -> dict:
    """The real reply loop: cold and cached-prefix first token, tokens/s, mask cost per token."""
    decoder = ConstrainedDecoder(lm)
    decoder.grammar.warm_up(allowed or ["a_trigger"])
    cold, warm, tps, mask_per_tok, fwd_per_tok = [], [], [], [], []
    for _ in range(repeats):
        decoder.forget()
        for cached in (False, True):
            *_, (_delta, res) = decoder.stream("maren", prefix, suffix, allowed, max_new_tokens=60,
                                               sampling=Sampling())
            (warm if cached else cold).append(res.first_token_ms)
            sampled = res.tokens - res.forced_tokens
            if cached and sampled > 1:
                tps.append(res.tokens / ((res.total_ms - res.first_token_ms) / 1000))
                mask_per_tok.append(res.mask_ms / max(len(res.steps), 1))
                fwd_per_tok.append(res.forward_ms / max(len(res.steps), 1))
    return {"first_token_cold_ms": _median(cold), "first_token_cached_ms": _median(warm),
            "tokens_per_s": _median(tps), "mask_ms_per_token": round(statistics.median(mask_per_tok), 3),
            "forward_ms_per_token": _median(fwd_per_tok), "prefix_tokens": len(prefix),
            "suffix_tokens": len(suffix), "output": res.text}


def run_benchmark(source: str | None = None, n_tokens: int = 48, repeats: int = 3,
                  variants: tuple[str, ...] = ("float32", "bfloat16", "int8"),
                  scene_dir: Path = DEMO_SCENE) -> dict:
    """All figures as one dict (see the module docstring); ratios are measured in this run."""
    threads = torch.get_num_threads()
    report: dict = {"threads": threads, "n_tokens": n_tokens, "repeats": repeats, "variants": {}}
    base = load_language_model(ModelSpec(source=source))
    report["model"] = base.source
    report["device"] = base.device
    prefix, suffix, allowed = _demo_prompt(base, scene_dir)
    prompt = prefix + suffix
    report["prompt_tokens"] = len(prompt)

    plain_decode(base, prompt, 4)  # warm-up: first-call allocations are not decode speed
    hf_loop = [plain_decode(base, prompt, n_tokens, own_forward=False) for _ in range(repeats)]
    report["hf_forward_loop_tokens_per_s"] = _median([r[1] for r in hf_loop])
    gen = [hf_generate(base, prompt, n_tokens) for _ in range(repeats)]
    report["transformers_generate_tokens_per_s"] = _median(gen)
    report["constrained"] = constrained(base, prefix, suffix, allowed, repeats)
    base.close()

    for variant in variants:
        if base.device != "cpu" and variant == "int8":
            continue
        spec = ModelSpec(source=source, dtype="float32" if variant == "int8" else variant,
                         int8_cpu=variant == "int8")
        with load_language_model(spec) as lm:
            plain_decode(lm, prompt, 4)
            runs = [plain_decode(lm, prompt, n_tokens) for _ in range(repeats)]
        report["variants"][variant] = {"prefill_ms": _median([r[0] for r in runs]),
                                       "tokens_per_s": _median([r[1] for r in runs])}
    best = max(report["variants"].items(), key=lambda kv: kv[1]["tokens_per_s"])
    report["best_variant"] = best[0]
    ours = report["variants"]["float32"]["tokens_per_s"]
    report["ratio_ours_fp32_to_generate"] = round(ours / report["transformers_generate_tokens_per_s"], 2)
    report["ratio_best_to_generate"] = round(best[1]["tokens_per_s"] / report["transformers_generate_tokens_per_s"], 2)
    gguf = Path(report["model"])
    lc = llama_cpp(gguf, prompt, n_tokens, threads, repeats) if gguf.suffix == ".gguf" else None
    report["llama_cpp"] = lc
    if lc:
        report["ratio_best_to_llama_cpp"] = round(best[1]["tokens_per_s"] / lc["tokens_per_s"], 2)
        report["ratio_constrained_to_llama_cpp"] = round(report["constrained"]["tokens_per_s"] / lc["tokens_per_s"], 2)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", default="float32,bfloat16,int8")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    report = run_benchmark(args.model, args.tokens, args.repeats, tuple(args.variants.split(",")))
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
