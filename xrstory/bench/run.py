"""``run_bench``: every benchmark part, one after another, each in a child process with its own
time budget, assembled into one JSON document (``figures.assemble``).

Why child processes: a budget is then a hard limit (the child is killed, the run goes on and
says so), each part starts with cold caches like a fresh session, and peak memory is per part.

    python -m xrstory.bench.run [--quick]      (the CLI is ``xrstory bench``)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from xrstory.bench.figures import assemble
from xrstory.bench.machine import git_commit, load_average, machine_info, now_iso
from xrstory.bench.options import PARTS, REPO_ROOT, BenchOptions

MIN_PART_S = 5.0  # a part with less time than this left is skipped, not started


def run_part(name: str, opts: BenchOptions, budget_s: float, workdir: Path) -> dict:
    """Run one part in a child process; returns the worker's JSON plus "status" (ok, error,
    timeout) and, on failure, the tail of the child's output."""
    opts_file, out_file, log_file = (workdir / f"{name}.{ext}" for ext in ("options.json", "json", "log"))
    opts_file.write_text(json.dumps(opts.to_json()))
    cmd = [sys.executable, "-m", "xrstory.bench.worker", name, "--options", str(opts_file), "--out", str(out_file),
           "--deadline", f"{time.time() + budget_s - 5.0:.1f}"]  # 5 s to write the results before the kill
    t0 = time.perf_counter()
    with open(log_file, "w") as log:
        try:
            proc = subprocess.run(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=budget_s,
                                  check=False)
        except subprocess.TimeoutExpired:
            tail = log_file.read_text(errors="replace")[-600:]  # what it was doing when cut off
            return {"status": "timeout", "seconds": round(time.perf_counter() - t0, 1),
                    "error": f"part '{name}' exceeded its budget of {budget_s:.0f} s\n{tail}"}
    seconds = round(time.perf_counter() - t0, 1)
    if not out_file.exists():
        tail = log_file.read_text(errors="replace")[-1500:]
        return {"status": "error", "seconds": seconds, "error": f"worker exited {proc.returncode}: {tail}"}
    result = json.loads(out_file.read_text())
    result["status"] = "error" if "error" in result else "ok"
    if result["status"] == "error" and "traceback" in result:
        result["error"] += "\n" + result["traceback"][-1500:]  # where it failed, for the report
    result["seconds"] = seconds  # wall time of the whole child, imports and model loading included
    return result


def run_bench(opts: BenchOptions, parts: tuple[str, ...] = PARTS,
              progress: Callable[[str], None] | None = None) -> dict:
    """Run the parts (in ``PARTS`` order) within ``opts.total_budget_s`` and return the JSON doc."""
    say = progress or (lambda msg: None)
    for name in parts:
        if name not in PARTS:
            raise ValueError(f"unknown benchmark part '{name}' (one of: {', '.join(PARTS)})")
    if not opts.play.is_file():
        raise FileNotFoundError(f"benchmark playthrough not found: {opts.play}")
    if not (opts.scene_dir / "scene.toml").is_file():
        raise FileNotFoundError(f"scene not found: {opts.scene_dir / 'scene.toml'}")
    machine, git, date = machine_info(), git_commit(), now_iso()
    scale = opts.scale((machine.get("load_avg_start") or [None])[0], machine.get("cores"))
    machine["budget_scale"] = scale
    t_start = time.monotonic()
    deadline = t_start + opts.total_budget_s * scale
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="xrstory-bench-") as tmp:
        for name in PARTS:
            if name not in parts:
                results[name] = {"status": "not run"}
                continue
            budget = min(opts.budgets_s[name] * scale, deadline - time.monotonic())
            if budget < MIN_PART_S:
                results[name] = {"status": "skipped", "error": "the run's total budget was spent"}
                say(f"{name}: skipped (total budget spent)")
                continue
            say(f"{name}: running (budget {budget:.0f} s)")
            results[name] = run_part(name, opts, budget, Path(tmp))
            r = results[name]
            say(f"{name}: {r['status']} in {r.get('seconds', 0):.0f} s" + (f" — {r['error'][:200]}" if r.get("error") else ""))
    machine["load_avg_end"] = load_average()
    return assemble(opts, machine, git, date, results, time.monotonic() - t_start)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    doc = run_bench(BenchOptions.quick() if quick else BenchOptions.full(), progress=lambda m: print(m, file=sys.stderr))
    print(json.dumps(doc, indent=2))
