"""The evaluation report: ``metrics.json``, ``report.html`` and its PNGs.

- ``loss_curves.png``: train loss per optimizer step and validation loss per validation pass,
  from the adapter's ``history.json``;
- ``before_after.png``: base vs fine-tuned bars for every metric;
- the before/after table and side-by-side examples (player line, gold, base, fine-tuned).

Written by ``xrstory eval --out DIR``; ``write_report(result, out_dir, adapter_dir)`` from code.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402

# (metric, label, higher is better)
_BARS = (("trigger_precision", "trigger precision %", True), ("trigger_recall", "trigger recall %", True),
         ("trigger_f1", "trigger F1 %", True), ("trigger_exact", "exact trigger set %", True),
         ("parse_rate", "parse rate (unconstrained) %", True), ("emotion_accuracy", "emotion accuracy %", True),
         ("persona_similarity", "persona similarity", True), ("perplexity", "reply perplexity", False))


def plot_loss_curves(history: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(history["step"], history["train_loss"], label="train (reply tokens)", color="#8aa", lw=1.2)
    ax.plot(history["val_step"], history["val_loss"], "o-", label="validation", color="#c44", lw=2)
    if history.get("val_weighted_loss"):
        ax.plot(history["val_step"], history["val_weighted_loss"], "s--", label="validation, weighted as in training",
                color="#e94", lw=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    if history.get("val_trigger_exact"):
        right = ax.twinx()
        right.plot(history["val_step"], [100 * x for x in history["val_trigger_exact"]], "^:", color="#36c",
                   label="validation turns with the trigger list right (%)")
        right.set_ylim(0, 100)
        right.set_ylabel("trigger list right, teacher-forced (%)")
        right.legend(loc="center right", fontsize=8)
    ax.set_title(f"{history.get('method', 'lora')} fine-tuning: {history.get('train_examples', '?')} train, "
                 f"{history.get('val_examples', '?')} validation examples")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_before_after(base: dict, tuned: dict, path: Path) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(12, 5.2))
    for ax, (key, label, _) in zip(axes.flat, _BARS, strict=True):
        vals = [base[key], tuned[key]]
        bars = ax.bar(["base", "fine-tuned"], vals, color=["#999", "#3a7"])
        ax.bar_label(bars, fmt="%.2f" if key in ("persona_similarity", "perplexity") else "%.1f", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.margins(y=0.2)
    fig.suptitle(f"Held-out test split, {base['n_test']} turns: base vs fine-tuned")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reply_cell(r: dict) -> str:
    e = html.escape
    trig = ", ".join(r["triggers"]) or "—"
    extra = "" if "parses" not in r else (" · unconstrained parses" if r["parses"] else " · unconstrained: no parse")
    return f"{e(r['say'])}<div class=t>triggers: {e(trig)}{e(extra)}</div>"


def write_report(result: dict, out_dir: str | Path, adapter_dir: str | Path | None = None) -> Path:
    """Write metrics.json, the PNGs and report.html into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    e = html.escape
    parts = ["<!doctype html><meta charset=utf-8><title>xrstory fine-tuning report</title>",
             "<style>body{font:14px sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}.t{color:#666;font-size:12px}"
             ".up{color:#080}.down{color:#a00}</style>",
             f"<h1>Fine-tuning report</h1><p>adapter: <code>{e(str(result['meta'].get('adapter', '')))}</code>; "
             f"base model: <code>{e(str(result['meta'].get('model', '')))}</code>; "
             f"{result['base']['n_test']} held-out test turns.</p>"]
    history_path = Path(adapter_dir) / "history.json" if adapter_dir else None
    if history_path is not None and history_path.is_file():
        history = json.loads(history_path.read_text(encoding="utf-8"))
        plot_loss_curves(history, out / "loss_curves.png")
        parts.append("<h2>Loss curves</h2><img src=loss_curves.png>")
    plot_before_after(result["base"], result["adapter"], out / "before_after.png")
    parts.append("<h2>Before / after</h2><table><tr><th>metric</th><th>base</th><th>fine-tuned</th><th>delta</th></tr>")
    for key, label, higher_better in _BARS:
        d = result["delta"][key]
        good = (d > 0) == higher_better
        parts.append(f"<tr><td>{e(label)}</td><td>{result['base'][key]:.3f}</td><td>{result['adapter'][key]:.3f}</td>"
                     f"<td class={'up' if good else 'down'}>{d:+.3f}</td></tr>")
    ref = result["meta"].get("gold_persona_similarity")
    parts.append(f"</table><p class=t>Gold replies' own persona similarity (reference): {ref:.3f}</p>"
                 "<img src=before_after.png>")
    parts.append("<h2>Examples</h2><table><tr><th>turn</th><th>player</th><th>gold</th><th>base</th>"
                 "<th>fine-tuned</th></tr>")
    for row in result["examples"]:
        parts.append(f"<tr><td class=t>{e(row['source'].rsplit('/', 1)[-1])}<br>{e(row['character'])}<br>"
                     f"allowed: {e(', '.join(row['allowed']) or 'none')}</td><td>{e(row['player'])}</td>"
                     f"<td>{_reply_cell(row['gold'])}</td><td>{_reply_cell(row['base'])}</td>"
                     f"<td>{_reply_cell(row['adapter'])}</td></tr>")
    parts.append("</table>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
