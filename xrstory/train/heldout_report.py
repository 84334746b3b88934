"""The held-out scenes report: ``heldout.json``, ``report.html`` and its charts.

- ``heldout_overall.png``: every narrative metric, one bar per side (base, general adapter, the
  scenes' own adapters), over all held-out turns;
- ``heldout_scenes.png``: trigger F1, fire-when-asked recall and held-back rate per scene and side;
- the table of every metric per scene and side, and the turns where the sides decided differently.

Written by ``xrstory eval corpus --heldout --out DIR``; ``write_heldout_report(result, DIR)`` from code.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402

# (metric, label): percentages, except persona similarity (a cosine, drawn x100)
METRICS = (("trigger_f1", "trigger F1"), ("fire_recall", "fire when asked"), ("held_back", "held back"),
           ("refusal_in_character", "refused in character"), ("sentence_rate", "sentences (>= 4 words)"),
           ("distinct_lines", "distinct lines"), ("copy_rate", "copies the player (lower is better)"),
           ("emotion_accuracy", "emotion accuracy"), ("persona_similarity", "persona similarity x100"))
_COLORS = {"base": "#999", "general": "#37a", "scene": "#3a7"}


def _value(scores: dict, key: str) -> float:
    v = scores.get(key, float("nan"))
    return 100 * v if key == "persona_similarity" else v


def plot_overall(sides: dict[str, dict], path: Path) -> None:
    fig, axes = plt.subplots(3, 3, figsize=(12, 8))
    for ax, (key, label) in zip(axes.flat, METRICS, strict=True):
        names = list(sides)
        bars = ax.bar(names, [_value(sides[s]["overall"], key) for s in names],
                      color=[_COLORS.get(s, "#a73") for s in names])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, 115)
    n = {s: int(sc["overall"].get("n_turns", 0)) for s, sc in sides.items()}
    fig.suptitle("Held-out scenes (never trained on): " + ", ".join(f"{s} {k} turns" for s, k in n.items()))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_scenes(sides: dict[str, dict], path: Path) -> None:
    scenes = [k for k in sides["base"] if k != "overall"]
    keys = (("trigger_f1", "trigger F1"), ("fire_recall", "fire when asked"), ("held_back", "held back"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    width = 0.8 / max(1, len(sides))
    for ax, (key, label) in zip(axes, keys, strict=True):
        for i, (side, scores) in enumerate(sides.items()):
            xs = [j + i * width for j, sc in enumerate(scenes) if sc in scores]
            ys = [_value(scores[sc], key) for sc in scenes if sc in scores]
            ax.bar(xs, ys, width, label=side, color=_COLORS.get(side, "#a73"))
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(scenes))], scenes, fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.set_ylim(0, 105)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _differences(records: dict[str, list[dict]], limit: int = 40) -> list[tuple[dict, dict[str, dict]]]:
    """Turns (by scene, conversation, player line) where the sides' triggers differ."""
    index: dict[tuple, dict[str, dict]] = {}
    for side, recs in records.items():
        for r in recs:
            index.setdefault((r["scene"], r["conversation"], r["player"]), {})[side] = r
    out = []
    for by_side in index.values():
        if len({tuple(r["triggers"]) for r in by_side.values()}) > 1:
            out.append((next(iter(by_side.values())), by_side))
    return out[:limit]


def write_heldout_report(result: dict, out_dir: str | Path) -> Path:
    """Write heldout.json, the PNGs and report.html into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "heldout.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    sides = result["sides"]
    plot_overall(sides, out / "heldout_overall.png")
    plot_scenes(sides, out / "heldout_scenes.png")
    e = html.escape
    parts = ["<!doctype html><meta charset=utf-8><title>xrstory held-out scenes</title>",
             "<style>body{font:14px sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}.t{color:#666;font-size:12px}</style>",
             f"<h1>Held-out scenes</h1><p>Scenes never trained on; replies decoded on <b>{e(result.get('engine', ''))}"
             f"</b>, constrained to the triggers each turn's state allows.</p><ul>"]
    for side, per_scene in result.get("adapters", {}).items():
        used = sorted({str(p) for p in per_scene.values()})
        parts.append(f"<li><b>{e(side)}</b>: {e(', '.join(used) if any(p != 'None' for p in used) else 'base model')}</li>")
    parts.append("</ul><img src=heldout_overall.png><img src=heldout_scenes.png><h2>Every metric</h2>"
                 "<table><tr><th>scene</th><th>metric</th>" + "".join(f"<th>{e(s)}</th>" for s in sides) + "</tr>")
    keys = [k for k in sides["base"]["overall"] if k != "n_turns"] + ["n_turns"]
    for scene in sides["base"]:
        for k in keys:
            cells = "".join(f"<td>{_value(sides[s][scene], k):.1f}</td>" if scene in sides[s] else "<td>-</td>"
                            for s in sides)
            parts.append(f"<tr><td>{e(scene)}</td><td>{e(k)}</td>{cells}</tr>")
    parts.append("</table><h2>Turns where the sides decided differently</h2><table><tr><th>turn</th>"
                 "<th>player</th><th>gold</th>" + "".join(f"<th>{e(s)}</th>" for s in sides) + "</tr>")
    for first, by_side in _differences(result.get("records", {})):
        gold = ", ".join(first["gold_triggers"]) or "-"
        cells = "".join(f"<td>{e(r['say'])}<div class=t>triggers: {e(', '.join(r['triggers']) or '-')}</div></td>"
                        if (r := by_side.get(s)) else "<td>-</td>" for s in sides)
        parts.append(f"<tr><td class=t>{e(first['scene'])}<br>{e(first['kind'])}<br>{e(first.get('character', ''))}"
                     f"</td><td>{e(first['player'])}</td><td>{e(gold)}</td>{cells}</tr>")
    parts.append("</table>")
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
