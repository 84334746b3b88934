"""``xrstory bench [--json] [--quick]``: run every benchmark part, print a table (or JSON), and
append a summary to benchmarks/RESULTS.md.

Exit codes: 0 every figure measured; 1 a part failed, timed out or left a figure unmeasured
(targets not met do not fail the command: it measures, it does not judge); 2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from xrstory.bench.options import DEFAULT_PLAY, DEFAULT_RESULTS, DEFAULT_SCENE, PARTS


def bench_command(
        json_out: bool = typer.Option(False, "--json", help="print the results as JSON on stdout"),
        quick: bool = typer.Option(False, "--quick", help="fewer repeats and turns: under 2 minutes"),
        results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="markdown file the summary is appended to"),
        append: bool = typer.Option(True, "--append/--no-append", help="append the summary to --results"),
        out: Path = typer.Option(None, "--out", help="also write the JSON to this file"),
        parts: list[str] = typer.Option(None, "--part", help=f"run only these parts ({', '.join(PARTS)})"),
        repeats: int = typer.Option(None, "--repeats", help="repeats for the LLM and voice parts"),
        turns: int = typer.Option(None, "--turns", help="spoken turns of the voice-to-voice playthrough"),
        budget_scale: float = typer.Option(None, "--budget-scale",
                                           help="multiply the parts' time limits (default: by the load per core)"),
        model: str = typer.Option(None, "--model", help="base model: HF id/folder or .gguf (default: SmolLM2-135M)"),
        engine: str = typer.Option("auto", "--engine", help="engine measured as llm.tokens_per_s: auto (torch with "
                                                            "CUDA, llama.cpp on a CPU), llamacpp or torch"),
        threads: int = typer.Option(None, "--threads", help="CPU threads of the llama.cpp engine (default: "
                                    "its DEFAULT_THREADS); the 1-vs-2 sweep: python -m xrstory.bench.llm_threads"),
        play: Path = typer.Option(DEFAULT_PLAY, "--play", help="the voice-to-voice playthrough script"),
        scene: Path = typer.Option(DEFAULT_SCENE, "--scene", help="scene folder the benchmark runs in")):
    """Benchmark the runtime: LLM decode, voice to voice, frame times, ASR/TTS, memory."""
    from xrstory.bench.figures import missing_figures
    from xrstory.bench.options import BenchOptions
    from xrstory.bench.results_md import append_results
    from xrstory.bench.run import run_bench
    from xrstory.bench.table import print_table

    err = Console(stderr=True)
    # a pipe or CI log is 80 columns to rich; the table needs more to stay one line a figure
    console = err if json_out else Console(width=None if sys.stdout.isatty() else 120)
    unknown = [p for p in parts or [] if p not in PARTS]
    if unknown:
        err.print(f"[red]error[/red] --part {unknown[0]!r}: not a part (one of: {', '.join(PARTS)})")
        raise typer.Exit(2)
    for name, value in (("--repeats", repeats), ("--turns", turns), ("--threads", threads)):
        if value is not None and value < 1:
            err.print(f"[red]error[/red] {name} must be >= 1, got {value}")
            raise typer.Exit(2)
    if budget_scale is not None and budget_scale <= 0:
        err.print(f"[red]error[/red] --budget-scale must be > 0, got {budget_scale}")
        raise typer.Exit(2)
    if engine not in ("auto", "llamacpp", "torch"):
        err.print(f"[red]error[/red] --engine must be auto, llamacpp or torch, got {engine!r}")
        raise typer.Exit(2)
    overrides = {k: v for k, v in (("repeats", repeats), ("turns", turns), ("model", model), ("engine", engine),
                                   ("threads", threads), ("budget_scale", budget_scale)) if v is not None}
    overrides.update(play=play.resolve(), scene_dir=scene.resolve())
    opts = BenchOptions.quick(**overrides) if quick else BenchOptions.full(**overrides)
    try:
        doc = run_bench(opts, tuple(parts) if parts else PARTS,
                        progress=lambda msg: err.print(f"[dim]bench[/dim] {msg}", highlight=False))
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    text = json.dumps(doc, indent=2, default=str)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    if json_out:
        print(text)
    else:
        print_table(doc, console)
    if append:
        err.print(f"appended to {append_results(doc, results)}")
    missing = missing_figures(doc) if not parts else []
    failed = [n for n, p in doc["parts"].items() if p.get("status") not in ("ok", "not run")]
    if missing or failed:
        err.print(f"[red]incomplete[/red]: parts {failed or 'ok'}; unmeasured figures {missing or 'none'}")
        raise typer.Exit(1)
