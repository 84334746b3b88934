"""Write a playthrough's report folder: transcript.jsonl, metrics.json, charts and report.html.

The HTML is self-contained apart from the frames and audio it links (relative paths in the
same folder), so the folder can be zipped as a CI artifact and opened anywhere.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from xrstory.playthrough.results import PlaythroughResult

# the stages of voice to voice, in order (TurnRecord.stage_ms; docs/ARCHITECTURE.md "Latency")
STAGES = ("endpoint_ms", "asr_ms", "first_token_ms", "first_sentence_ms", "first_audio_ms")
# what the mind took from when it was asked (before the turn closed, when it thought ahead)
MIND = ("think_ahead_ms", "mind_first_token_ms", "mind_first_sentence_ms")


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    a = np.asarray(values, np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "n": int(a.size)}


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(float(np.median(got)), 1) if got else None


def metrics_of(result: PlaythroughResult) -> dict:
    turns = [t.to_dict() for t in result.turns]
    v2v = [t["voice_to_voice_ms"] for t in turns if t["voice_to_voice_ms"] is not None]
    idle, busy = percentiles(result.frame_ms_idle), percentiles(result.frame_ms_busy)
    ratio = (round(busy["p99"] / idle["p99"], 3) if idle["p99"] and busy["p99"] else None)
    return {
        "playthrough": result.name,
        "passed": result.passed,
        "failures": [f.__dict__ for f in result.failures],
        "turns": turns,
        "voice_to_voice_ms": {"median": round(float(np.median(v2v)), 1) if v2v else None,
                              "values": v2v,
                              **{s: _median([t[s] for t in turns if t["voice_to_voice_ms"] is not None])
                                 for s in STAGES + MIND}},
        "frame_ms": {"idle": idle, "busy": busy, "busy_over_idle_p99": ratio},
        "ended": result.ended,
        "seconds": round(result.seconds, 2),
    }


def _charts(result: PlaythroughResult, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    turns = [t.to_dict() for t in result.turns if t.spoken or t.t_first_audio]
    if turns:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(turns) + 1.6))
        labels = [f"{t['turn']}: {t['character']}" for t in turns]
        left = np.zeros(len(turns))
        colors = ("#8172b3", "#4c72b0", "#dd8452", "#55a868", "#c44e52")
        for stage, color in zip(STAGES, colors, strict=True):
            vals = np.array([t[stage] or 0.0 for t in turns])
            ax.barh(labels, vals, left=left, color=color, label=stage.replace("_ms", ""))
            left += vals
        label = "mind: asked -> first sentence"
        for y, t in enumerate(turns):  # the mind's own span: asked (maybe before the turn closed) -> first sentence
            if t["mind_first_sentence_ms"] is not None and t["endpoint_ms"] is not None:
                asked = (t["endpoint_ms"] or 0.0) + (t["asr_ms"] or 0.0) - (t["think_ahead_ms"] or 0.0)
                ax.plot([asked, asked + t["mind_first_sentence_ms"]], [y - 0.42] * 2, color="black", lw=2, label=label)
                label = None
        ax.invert_yaxis()
        ax.set_xlabel("ms from the true end of the player's speech to the reply's first sample")
        ax.set_title("Latency per stage (voice to voice)")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=3, fontsize=8, frameon=False)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        files["latency"] = "latency.png"
    if result.frame_ms_idle or result.frame_ms_busy:
        fig, ax = plt.subplots(figsize=(7, 3))
        hi = max([*result.frame_ms_idle, *result.frame_ms_busy, 1.0])
        bins = np.linspace(0, hi * 1.05, 50)
        if result.frame_ms_idle:
            ax.hist(result.frame_ms_idle, bins=bins, alpha=0.6, label="idle")
        if result.frame_ms_busy:
            ax.hist(result.frame_ms_busy, bins=bins, alpha=0.6, label="busy (ASR / model / TTS working)")
        ax.set_xlabel("frame CPU time, ms")
        ax.set_ylabel("frames")
        ax.set_title("Frame times")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "frames.png", dpi=110)
        plt.close(fig)
        files["frames"] = "frames.png"
    if result.events:
        t0 = min(e["t"] for e in result.events)
        kinds = sorted({e["event"] for e in result.events})
        fig, ax = plt.subplots(figsize=(9, 0.3 * len(kinds) + 1.2))
        for i, k in enumerate(kinds):
            xs = [e["t"] - t0 for e in result.events if e["event"] == k]
            ax.scatter(xs, [i] * len(xs), s=12)
        ax.set_yticks(range(len(kinds)), kinds, fontsize=8)
        ax.set_xlabel("seconds since session start")
        ax.set_title("Timeline of events")
        fig.tight_layout()
        fig.savefig(out / "timeline.png", dpi=110)
        plt.close(fig)
        files["timeline"] = "timeline.png"
    return files


def write_report(result: PlaythroughResult, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "transcript.jsonl", "w", encoding="utf-8") as f:
        for e in result.events:
            f.write(json.dumps(e, default=str) + "\n")
    metrics = metrics_of(result)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    charts = _charts(result, out)
    e = html.escape
    rows = []
    for t in result.turns:
        d = t.to_dict()
        img = f'<img src="{e(Path(t.capture).name)}" width="320">' if t.capture else ""
        trig = ", ".join(t.fired) or "—"
        refused = "; ".join(f"{k}: {v}" for k, v in t.refused.items())
        heard = f"<div class=heard>heard: {e(t.heard_text)}</div>" if t.spoken else "<div class=heard>(typed)</div>"
        flags = []
        if t.interrupted:
            flags.append("interrupted")
        if t.fallback:
            flags.append("fallback line")
        if t.moderated:
            flags.append("moderated")
        rows.append(
            f"<tr><td>{t.turn}</td><td><b>player</b>: {e(t.player_text)}{heard}</td>"
            f"<td><b>{e(t.character)}</b> <i>({e(t.emotion)})</i>: {e(t.say)}"
            f"<div class=meta>{' · '.join(flags)}</div></td>"
            f"<td>{e(trig)}<div class=refused>{e(refused)}</div></td>"
            f"<td>{d['voice_to_voice_ms'] if d['voice_to_voice_ms'] is not None else '—'}</td><td>{img}</td></tr>")
    fails = "".join(f"<li><pre>{e(str(f))}</pre></li>" for f in result.failures)
    status = ("<p class=pass>PASSED: every expectation held.</p>" if result.passed else
              f"<p class=fail>FAILED: {len(result.failures)} expectation(s)</p><ul>{fails}</ul>")
    audio = f'<audio controls src="{e(Path(result.audio_path).name)}"></audio>' if result.audio_path else ""
    caps = "".join(f'<figure><img src="{e(Path(c.path).name)}" width="240"><figcaption>{c.t:.1f}s {e(c.label)}</figcaption></figure>'
                   for c in result.captures)
    fm = metrics["frame_ms"]
    page = f"""<!doctype html><meta charset=utf-8><title>{e(result.name)} — xrstory playthrough</title>
<style>body{{font:14px system-ui;margin:2em;max-width:1200px}} td{{vertical-align:top;padding:6px;border-bottom:1px solid #ddd}}
.pass{{color:#176f2c;font-weight:bold}} .fail{{color:#b00020;font-weight:bold}} .heard,.meta{{color:#666;font-size:12px}}
.refused{{color:#b00020;font-size:12px}} figure{{display:inline-block;margin:4px}} pre{{white-space:pre-wrap}}</style>
<h1>{e(result.title or result.name)}</h1>
<p>Script <code>{e(result.script)}</code> · scene <code>{e(result.scene)}</code> · {result.seconds:.1f} s
{(' · ending: ' + e(result.ended)) if result.ended else ''}</p>
{status}
<h2>Conversation</h2>{audio}
<table><tr><th>#</th><th>player</th><th>reply</th><th>triggers fired</th><th>voice→voice ms</th><th>frame</th></tr>{''.join(rows)}</table>
<h2>Latency</h2><p>Median voice-to-voice: {metrics['voice_to_voice_ms']['median']} ms</p>
{'<img src="latency.png">' if 'latency' in charts else ''}
<h2>Frames</h2><p>Frame CPU time p50/p99 idle: {fm['idle']['p50']}/{fm['idle']['p99']} ms; busy: {fm['busy']['p50']}/{fm['busy']['p99']} ms; p99 ratio busy/idle: {fm['busy_over_idle_p99']}</p>
{'<img src="frames.png">' if 'frames' in charts else ''}
<h2>Timeline</h2>{'<img src="timeline.png">' if 'timeline' in charts else ''}
<h2>Key frames</h2>{caps}
"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return out / "report.html"
