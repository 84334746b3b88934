"""One benchmark part in its own process: ``run.py`` starts it with a hard time limit, so a slow
part is cut off cleanly, one part's models and caches do not slow the next, and the peak memory
is measured per part.

    python -m xrstory.bench.worker PART [--quick] [--out part.json]

PART is one of llm, voice, voice_to_voice, render. Writes {"figures", "seconds", "peak_rss_mb",
"gpu_peak_mb"} (or {"error", "traceback"}) as JSON to --out, or prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

from xrstory.bench.options import PARTS, BenchOptions


def _run_part(name: str, opts: BenchOptions, deadline: float | None) -> dict:
    if name == "llm":
        from xrstory.bench.part_llm import run_llm_part

        return run_llm_part(opts, deadline)
    if name == "voice":
        from xrstory.bench.part_voice import run_voice_part

        return run_voice_part(opts)
    if name == "voice_to_voice":
        from xrstory.bench.part_playthrough import run_playthrough_part

        return run_playthrough_part(opts)
    if name == "render":
        from xrstory.bench.part_render import run_render_part

        return run_render_part(opts)
    raise ValueError(f"unknown benchmark part '{name}' (one of: {', '.join(PARTS)})")


def peak_rss_mb() -> float:
    """This process's peak resident set size, MiB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def gpu_peak_mb() -> float | None:
    """Peak CUDA memory torch allocated in this process, MiB; None without CUDA."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def run_part_here(name: str, opts: BenchOptions, deadline: float | None = None) -> dict:
    """``deadline``: ``time.time()`` by which the part must be done; parts with optional extras
    (the LLM's CPU variants) skip them when they would not fit."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    t0 = time.perf_counter()
    try:
        figures = _run_part(name, opts, deadline)
    except Exception as exc:  # noqa: BLE001 - reported in the results, the run goes on
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": peak_rss_mb(),
                "gpu_peak_mb": gpu_peak_mb()}
    return {"figures": figures, "seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": peak_rss_mb(),
            "gpu_peak_mb": gpu_peak_mb()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=PARTS)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--options", type=Path, default=None, help="BenchOptions as JSON (run.py writes it)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--deadline", type=float, default=None, help="time.time() by which to be done")
    args = ap.parse_args(argv)
    if args.options is not None:
        opts = BenchOptions.from_json(json.loads(args.options.read_text()))
    else:
        opts = BenchOptions.quick() if args.quick else BenchOptions.full()
    result = run_part_here(args.part, opts, args.deadline)
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
