"""Benchmark part "llm": our decode vs transformers ``generate`` vs llama.cpp, same model, same
prompt (the demo scene's Maren), plus the constrained reply loop. Built on the mind layer's own
bench functions (``xrstory.bench.llm_decode``); this part adds per-repeat spread and the model spec
the runtime really uses (``ModelSpec()`` defaults: fp32 on CPU, bf16/fp16 on CUDA).

Run alone:  python -m xrstory.bench.worker llm   (see worker.py)
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import torch

from xrstory.bench.options import BenchOptions
from xrstory.bench.stats import ratio, spread


def run_llm_part(opts: BenchOptions, deadline: float | None = None) -> dict:
    """Required figures first (ours, generate, constrained, llama.cpp), then the optional CPU
    variants while they fit before ``deadline`` (``time.time()``)."""
    from xrstory.bench.llm_decode import (
        _demo_prompt,
        constrained,
        hf_generate,
        llama_cpp,
        plain_decode,
    )
    from xrstory.mind.loader import ModelSpec, load_language_model

    n, repeats = opts.llm_tokens, opts.repeats
    t0 = time.time()
    with load_language_model(ModelSpec(source=opts.model)) as lm:
        prefix, suffix, allowed = _demo_prompt(lm, opts.scene_dir)
        prompt = prefix + suffix  # token ids
        plain_decode(lm, prompt, 4)  # warm-up: first-call allocations are not decode speed
        ours = [plain_decode(lm, prompt, n) for _ in range(repeats)]  # [(prefill ms, tokens/s)]
        generate = [hf_generate(lm, prompt, n) for _ in range(repeats)]  # [tokens/s]
        cons = constrained(lm, prefix, suffix, allowed, repeats)
        source, device, dtype = lm.source, lm.device, lm.dtype

    # llama.cpp runs on the GGUF file itself, on the CPU; only a baseline when installed
    gguf = Path(source)
    lc = llama_cpp(gguf, prompt, n, torch.get_num_threads(), repeats) if gguf.suffix == ".gguf" else None

    # each variant costs about what loading and decoding the default model did (x1.5 for margin)
    variant_s = 1.5 * (time.time() - t0) / 3
    variants, skipped = {}, []
    for variant in opts.llm_variants if device == "cpu" else ():
        if deadline is not None and time.time() + variant_s > deadline:
            skipped.append(variant)
            continue
        spec = ModelSpec(source=opts.model, dtype="float32" if variant == "int8" else variant,
                         int8_cpu=variant == "int8")
        with load_language_model(spec) as lm:
            plain_decode(lm, prompt, 4)
            variants[variant] = spread([plain_decode(lm, prompt, n)[1] for _ in range(repeats)])

    tps = spread([r[1] for r in ours])
    gen = spread(generate)
    lc_tps = lc["tokens_per_s"] if lc else None
    return {
        "model": source, "device": device, "dtype": dtype, "prompt_tokens": len(prompt),
        "prefix_tokens": len(prefix), "tokens": n, "repeats": repeats,
        "tokens_per_s": tps["median"],
        "prefill_ms": spread([r[0] for r in ours])["median"],
        "ttft_cold_ms": cons["first_token_cold_ms"],
        "ttft_cached_ms": cons["first_token_cached_ms"],
        "generate_tokens_per_s": gen["median"],
        "ratio_vs_generate": ratio(tps["median"], gen["median"], 2),
        "llamacpp_installed": importlib.util.find_spec("llama_cpp") is not None,
        "llamacpp_tokens_per_s": lc_tps,
        "ratio_vs_llamacpp": ratio(tps["median"], lc_tps, 2),
        "llamacpp_ttft_cold_ms": lc["first_token_cold_ms"] if lc else None,
        "llamacpp_ttft_cached_ms": lc["first_token_cached_ms"] if lc else None,
        "constrained_tokens_per_s": cons["tokens_per_s"],
        "constrained_overhead_ms_per_token": cons["mask_ms_per_token"],
        "constrained_forward_ms_per_token": cons["forward_ms_per_token"],
        "spread": {"tokens_per_s": tps, "generate_tokens_per_s": gen},
        "variants_tokens_per_s": variants,
        "variants_skipped_for_time": skipped,
        "sample_output": cons["output"],
    }
