"""The benchmark's JSON: the parts' raw figures assembled under stable top-level keys, with the
targets beside them and whether each is met. Pure: no measuring here, so it is testable alone.

Top-level keys (stable; a figure that could not be measured is null, never missing):
  machine, commit, dirty, date, mode, seconds,
  llm {tokens_per_s, ttft_cold_ms, ttft_cached_ms, generate_tokens_per_s, ratio_vs_generate,
       llamacpp_tokens_per_s, ratio_vs_llamacpp, constrained_overhead_ms_per_token, ...},
  voice_to_voice_ms {p50, p95, n, endpoint, asr, first_token, first_sentence, first_audio: {p50, p95}},
  frame_ms {idle: {p50, p99, n}, busy: {p50, p99, n}, ratio_p99},
  asr_rtf, asr_end_to_transcript_ms, tts_first_audio_ms,
  render {python_ms, gl_ms, ...}, memory {peak_rss_mb, gpu_peak_mb, per_part},
  targets, meets, parts {name: {status, seconds, error}}
"""

from __future__ import annotations

from xrstory.bench.options import PARTS, BenchOptions

LLM_KEYS = ("tokens_per_s", "ttft_cold_ms", "ttft_cached_ms", "generate_tokens_per_s", "ratio_vs_generate",
            "llamacpp_tokens_per_s", "ratio_vs_llamacpp", "constrained_overhead_ms_per_token")
STAGE_KEYS = ("endpoint", "asr", "first_token", "first_sentence", "first_audio")
# null by design when llama-cpp-python is not installed (it is an optional baseline)
LLAMACPP_KEYS = {"llm.llamacpp_tokens_per_s", "llm.ratio_vs_llamacpp"}


def _fig(parts: dict, part: str) -> dict:
    return parts.get(part, {}).get("figures") or {}


def _empty_v2v() -> dict:
    out: dict = {"p50": None, "p95": None, "n": 0}
    out.update({s: {"p50": None, "p95": None} for s in STAGE_KEYS})
    return out


def _empty_frames() -> dict:
    return {"idle": {"p50": None, "p99": None, "n": 0}, "busy": {"p50": None, "p99": None, "n": 0},
            "ratio_p99": None}


def _meets(value: float | None, target: float | None, at_most: bool) -> bool | None:
    if value is None or target is None:
        return None
    return value <= target if at_most else value >= target


def assemble(opts: BenchOptions, machine: dict, git: dict, date: str, parts: dict, seconds: float) -> dict:
    """``parts``: {name: worker output ({"figures", "seconds", "peak_rss_mb", "gpu_peak_mb"} or
    {"error", ...}) plus "status"}. Returns the JSON document (see the module docstring)."""
    llm_raw, voice, v2v_raw, render = (_fig(parts, p) for p in PARTS)
    on_gpu = machine.get("gpu") is not None and llm_raw.get("device") == "cuda"
    llm = {k: llm_raw.get(k) for k in LLM_KEYS}
    llm.update({k: v for k, v in llm_raw.items() if k not in LLM_KEYS})
    v2v = v2v_raw.get("voice_to_voice_ms") or _empty_v2v()
    frames = v2v_raw.get("frame_ms") or _empty_frames()

    rss = [p.get("peak_rss_mb") for p in parts.values() if p.get("peak_rss_mb") is not None]
    gpu = [p.get("gpu_peak_mb") for p in parts.values() if p.get("gpu_peak_mb") is not None]
    memory = {"peak_rss_mb": max(rss) if rss else None, "gpu_peak_mb": max(gpu) if gpu else None,
              "per_part": {name: {"peak_rss_mb": p.get("peak_rss_mb"), "gpu_peak_mb": p.get("gpu_peak_mb")}
                           for name, p in parts.items()}}

    targets = opts.targets.as_dict(on_gpu)
    meets = {
        "voice_to_voice_p50_ms": _meets(v2v.get("p50"), targets["voice_to_voice_p50_ms"], at_most=True),
        "frame_ratio_p99": _meets(frames.get("ratio_p99"), targets["frame_ratio_p99"], at_most=True),
        "decode_vs_llamacpp": _meets(llm.get("ratio_vs_llamacpp"), targets["decode_vs_llamacpp"], at_most=False),
    }
    return {
        "machine": machine, "commit": git.get("commit"), "dirty": git.get("dirty"), "date": date,
        "mode": opts.mode, "seconds": round(seconds, 1), "options": opts.to_json(),
        "llm": llm,
        "voice_to_voice_ms": v2v,
        "frame_ms": frames,
        "asr_rtf": voice.get("asr_rtf"),
        "asr_end_to_transcript_ms": voice.get("asr_end_to_transcript_ms"),
        "tts_first_audio_ms": voice.get("tts_first_audio_ms"),
        "render": render or None,
        "memory": memory,
        "targets": targets,
        "meets": meets,
        "parts": {name: {"status": p.get("status"), "seconds": p.get("seconds"), "error": p.get("error")}
                  for name, p in parts.items()},
        "details": {"voice": voice.get("raw"), "turns": v2v_raw.get("turns"),
                    "playthrough_failures": v2v_raw.get("failures"), "adapter": v2v_raw.get("adapter"),
                    "load_s": v2v_raw.get("load_s")},
    }


def required_figures(doc: dict) -> dict[str, object]:
    """Every figure the issue asks for, by dotted path -> value (for checks and the table)."""
    out: dict[str, object] = {}
    for k in LLM_KEYS:
        out[f"llm.{k}"] = doc["llm"].get(k)
    v2v = doc["voice_to_voice_ms"]
    out["voice_to_voice_ms.p50"], out["voice_to_voice_ms.p95"] = v2v.get("p50"), v2v.get("p95")
    for s in STAGE_KEYS:
        for q in ("p50", "p95"):
            out[f"voice_to_voice_ms.{s}.{q}"] = (v2v.get(s) or {}).get(q)
    for kind in ("idle", "busy"):
        for q in ("p50", "p99"):
            out[f"frame_ms.{kind}.{q}"] = doc["frame_ms"][kind].get(q)
    out["frame_ms.ratio_p99"] = doc["frame_ms"].get("ratio_p99")
    for k in ("asr_rtf", "asr_end_to_transcript_ms", "tts_first_audio_ms"):
        out[k] = doc.get(k)
    out["memory.peak_rss_mb"] = doc["memory"]["peak_rss_mb"]
    out["memory.gpu_peak_mb"] = doc["memory"]["gpu_peak_mb"]
    return out


def missing_figures(doc: dict) -> list[str]:
    """Required figures that are null although they should have been measured here."""
    optional = set() if doc["llm"].get("llamacpp_installed") else set(LLAMACPP_KEYS)
    if doc["machine"].get("gpu") is None:
        optional.add("memory.gpu_peak_mb")  # GPU memory exists only on a CUDA machine
    return [k for k, v in required_figures(doc).items() if v is None and k not in optional]
