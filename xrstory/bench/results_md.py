"""Append a benchmark run to ``benchmarks/RESULTS.md`` as a markdown section: date, machine
(``uname -a``, CPU model, cores, load average), git commit, and each figure with its target.

The file keeps every run (newest last), so progress and regressions are visible in review.
"""

from __future__ import annotations

from pathlib import Path

from xrstory.bench.rows import part_lines, summary_rows

HEADER = """# Benchmark results

Appended by `xrstory bench` (see `xrstory/bench/`). One section per run, newest last. Figures
are medians (with spread) or percentiles over the run; ratios are measured side by side in the
same run. The machines are shared with other engineers' jobs: the load average is recorded
beside each run, and absolute figures from a loaded 2-core machine are pessimistic.

Targets: voice-to-voice median <= 1.0 s on a CPU, <= 0.3 s on a GPU; frame time busy/idle
(p99) <= 1.1; CPU decode >= 1.0x llama.cpp.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _failure_line(failure: str) -> str:
    """"line N: STEP — ACTUAL" from a playthrough Failure's text (step, expected, actual lines)."""
    lines = failure.splitlines()
    actual = lines[-1].split(":", 1)[-1].strip() if len(lines) > 1 else ""
    return f"{lines[0]} — {actual}" if actual else lines[0]


def markdown_section(doc: dict) -> str:
    m = doc["machine"]
    gpu = m.get("gpu") or "none"
    lines = [
        f"## {doc['date']} — {doc['mode']} run, {'GPU ' + gpu if m.get('gpu') else 'CPU'}",
        "",
        f"- machine: `{m.get('uname')}`",
        f"- CPU: {m.get('cpu')}, {m.get('cores')} cores ({', '.join(m.get('simd') or []) or 'SIMD flags unknown'}); "
        f"GPU: {gpu}; Python {m.get('python')}",
        f"- llama.cpp build: {doc['llm'].get('llamacpp_build') or '—'}",
        f"- load average (1/5/15 min) at start {m.get('load_avg_start')}, at end {m.get('load_avg_end')}; "
        f"parts' time limits x{m.get('budget_scale', 1.0)}",
        f"- commit `{doc.get('commit')}`{' with uncommitted changes' if doc.get('dirty') else ''}; "
        f"run took {doc.get('seconds')} s",
        f"- model: {doc['llm'].get('model', '—')} on {doc['llm'].get('device', '—')}; "
        f"adapter: {(doc.get('details') or {}).get('adapter') or 'none'}",
        "",
        "| section | figure | value | spread | target | meets |",
        "|---|---|---:|---|---|---|",
    ]
    for r in summary_rows(doc):
        meets = "" if r.meets is None else ("yes" if r.meets else "**no**")
        lines.append(f"| {r.section} | {_cell(r.figure.strip())} | {_cell(r.value)} | {_cell(r.spread)} | "
                     f"{_cell(r.target)} | {meets} |")
    lines += ["", "Parts: " + "; ".join(part_lines(doc))]
    failures = (doc.get("details") or {}).get("playthrough_failures") or []
    if failures:  # a turn that was not heard or answered is not in the latencies: say so
        lines.append(f"Playthrough expectations not met ({len(failures)}): "
                     + "; ".join(_cell(_failure_line(f)) for f in failures))
    lines.append("")
    return "\n".join(lines) + "\n"


def append_results(doc: dict, path: Path) -> Path:
    """Append this run's section (creating the file with its header when new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "\n" + markdown_section(doc), encoding="utf-8")
    return path
