"""Benchmark part "llm", side by side in one run on the same model and prompt (the demo's Maren):
the runtime's default engine on the constrained reply (``tokens_per_s``; llama.cpp on a CPU),
bare xllamacpp (``bare_engine_tokens_per_s``), the torch engine on the same reply
(``torch_tokens_per_s``), first token cold / cached, prefill tokens/s; plus the torch loop
without a grammar, transformers ``generate`` and CPU variants (``llm_decode``, ``llm_engines``).

Run alone:  python -m xrstory.bench.worker llm   (see worker.py)
"""

from __future__ import annotations

import importlib.util
import time

import torch

from xrstory.bench.options import BenchOptions
from xrstory.bench.stats import ratio, spread


def _engines_side_by_side(opts: BenchOptions, adapter: str | None = None) -> dict:
    """llama.cpp engine (our constrained reply path) and bare xllamacpp, one load, same prompt
    (``llm_engines.engine_and_bare``; with ``adapter``: the merged file the runtime runs)."""
    from xrstory.bench.llm_engines import engine_and_bare
    from xrstory.mind.engine import EngineSpec

    spec = EngineSpec(engine="llamacpp", model=opts.model, threads=opts.threads, adapter=adapter)
    return engine_and_bare(spec, opts.scene_dir, opts.repeats, max(opts.llm_tokens, 32))


def _llamacpp_build() -> str | None:
    """llama.cpp's own feature line ("CPU : AVX2 = 1 | ..."): the wheel's build, not the host's."""
    import xllamacpp

    return xllamacpp.get_system_info().strip() or None


def _scene_adapter(opts: BenchOptions) -> str | None:
    """The adapter a session of the bench's scene runs with (runtime.adapter_choice)."""
    from xrstory.runtime.adapter_choice import choose_adapter
    from xrstory.story import load_scene

    return choose_adapter(load_scene(opts.scene_dir)).path


def _torch_reply(lm, opts: BenchOptions) -> dict:
    from xrstory.bench.llm_engines import demo_turns, engine_reply
    from xrstory.mind.engine_torch import TorchEngine

    eng = TorchEngine(lm)
    turns, allowed = demo_turns(opts.scene_dir, eng.count_tokens)
    eng.warm_up(tuple(allowed))
    return engine_reply(eng, turns, allowed, opts.repeats)


def run_llm_part(opts: BenchOptions, deadline: float | None = None) -> dict:
    """Required figures first (the default engine's constrained reply, bare xllamacpp, torch:
    ours, generate, constrained), then the optional CPU variants while they fit before
    ``deadline`` (``time.time()``)."""
    from xrstory.bench.llm_decode import _demo_prompt, hf_generate, plain_decode
    from xrstory.mind.engine import choose_engine
    from xrstory.mind.loader import ModelSpec, load_language_model

    n, repeats = opts.llm_tokens, opts.repeats
    default, why = choose_engine(opts.engine, model=opts.model)
    lc = None
    if importlib.util.find_spec("xllamacpp") is not None and (opts.model is None or str(opts.model).endswith(".gguf")):
        lc = _engines_side_by_side(opts)
    t0 = time.time()
    with load_language_model(ModelSpec(source=opts.model)) as lm:
        prefix, suffix, _allowed = _demo_prompt(lm, opts.scene_dir)
        prompt = prefix + suffix  # token ids
        plain_decode(lm, prompt, 4)  # warm-up: first-call allocations are not decode speed
        ours = [plain_decode(lm, prompt, n) for _ in range(repeats)]  # [(prefill ms, tokens/s)]
        generate = [hf_generate(lm, prompt, n) for _ in range(repeats)]  # [tokens/s]
        torch_reply = _torch_reply(lm, opts)
        torch_threads = torch.get_num_threads()
        # torch again on llama.cpp's thread count: the engines compared on equal cores (the figure
        # above is torch as its engine runs by default, on every core)
        same_n = min(lc["threads"], torch_threads) if lc is not None else torch_threads
        same_threads = torch_reply
        if same_n < torch_threads:
            torch.set_num_threads(same_n)
            try:
                same_threads = _torch_reply(lm, opts)
            finally:
                torch.set_num_threads(torch_threads)
        source, device, dtype = lm.source, lm.device, lm.dtype

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

    # the same pair on what a session of the scene runs: its adapter merged into the weights
    adapter, with_adapter = (_scene_adapter(opts) if lc is not None else None), None
    if adapter and (deadline is None or time.time() + variant_s < deadline):
        with_adapter = _engines_side_by_side(opts, adapter)
    elif adapter:
        skipped.append("adapter")

    plain = spread([r[1] for r in ours])
    gen = spread(generate)
    on_llamacpp = default == "llamacpp" and lc is not None
    main = lc["reply"] if on_llamacpp else torch_reply
    bare = lc["bare"]["tokens_per_s"] if lc else None
    return {
        "engine": default if (on_llamacpp or default != "llamacpp") else "torch", "engine_why": why,
        "model": source, "device": "cpu" if on_llamacpp else device, "dtype": "gguf" if on_llamacpp else dtype,
        "threads": lc["threads"] if on_llamacpp else torch.get_num_threads(),
        "prompt_tokens": len(prompt), "prefix_tokens": len(prefix), "tokens": n, "repeats": repeats,
        # the runtime's default engine, constrained reply, decode tokens/s where our code sees them
        "tokens_per_s": main["tokens_per_s"],
        "bare_engine_tokens_per_s": bare,
        "torch_tokens_per_s": torch_reply["tokens_per_s"],  # the torch engine, same constrained reply
        "torch_plain_tokens_per_s": plain["median"],  # torch, our loop without a grammar
        "ratio_vs_bare_engine": ratio(main["tokens_per_s"], bare, 2),
        "ratio_vs_torch": ratio(main["tokens_per_s"], torch_reply["tokens_per_s"], 2),
        "torch_threads": torch_threads,
        "torch_same_threads": same_n,
        "torch_same_threads_tokens_per_s": same_threads["tokens_per_s"],
        "ratio_vs_torch_same_threads": ratio(main["tokens_per_s"], same_threads["tokens_per_s"], 2),
        "ttft_cold_ms": main["first_token_cold_ms"],
        "ttft_cached_ms": main["first_token_cached_ms"],
        "prefill_tokens_per_s": main["prefill_tokens_per_s"],
        "cached_turn_prefill_ms": main["cached_turn_prefill_ms"],
        "cached_turn_prompt_tokens": main["cached_turn_prompt_tokens"],
        "cached_turn_cached_tokens": main["cached_turn_cached_tokens"],
        "torch_ttft_cold_ms": torch_reply["first_token_cold_ms"],
        "torch_ttft_cached_ms": torch_reply["first_token_cached_ms"],
        "torch_prefill_tokens_per_s": torch_reply["prefill_tokens_per_s"],
        "prefill_ms": spread([r[0] for r in ours])["median"],
        "generate_tokens_per_s": gen["median"],
        "ratio_vs_generate": ratio(main["tokens_per_s"], gen["median"], 2),
        # llama.cpp baseline = xllamacpp alone (llama-cpp-python is no longer needed for it)
        "llamacpp_installed": lc is not None,
        "llamacpp_build": _llamacpp_build() if lc is not None else None,  # the SIMD llama.cpp was built for
        "llamacpp_tokens_per_s": bare,
        "ratio_vs_llamacpp": ratio(main["tokens_per_s"], bare, 2),
        "constrained_tokens_per_s": main["tokens_per_s"],
        "constrained_overhead_ms_per_token": (round(1000 / main["tokens_per_s"] - 1000 / bare, 3)
                                              if on_llamacpp and main["tokens_per_s"] and bare else None),
        "spread": {"tokens_per_s": spread(main["tokens_per_s_all"]),
                   "bare_engine_tokens_per_s": spread(lc["bare"]["tokens_per_s_all"]) if lc else spread([]),
                   "torch_tokens_per_s": spread(torch_reply["tokens_per_s_all"]),
                   "generate_tokens_per_s": gen, "torch_plain_tokens_per_s": plain},
        # the runtime's llama.cpp engine with the scene's adapter (merged GGUF) and bare xllamacpp
        # on that same file: the ratio the session sees; the figures above are on the base model
        "adapter": adapter,
        "adapter_model": with_adapter["source"] if with_adapter else None,
        "adapter_tokens_per_s": with_adapter["reply"]["tokens_per_s"] if with_adapter else None,
        "adapter_bare_engine_tokens_per_s": with_adapter["bare"]["tokens_per_s"] if with_adapter else None,
        "adapter_ratio_vs_bare_engine": (ratio(with_adapter["reply"]["tokens_per_s"],
                                               with_adapter["bare"]["tokens_per_s"], 2) if with_adapter else None),
        "adapter_ttft_cached_ms": with_adapter["reply"]["first_token_cached_ms"] if with_adapter else None,
        "adapter_cached_turn_prefill_ms": with_adapter["reply"]["cached_turn_prefill_ms"] if with_adapter else None,
        "variants_tokens_per_s": variants,
        "variants_skipped_for_time": skipped,
        "sample_output": main["output"],
    }
