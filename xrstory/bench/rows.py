"""The benchmark's figures as rows for people (the terminal table and the RESULTS.md summary
share them): (section, figure, value, spread, target, meets). Values are formatted strings;
"—" marks a figure that was not measured (the parts' status says why)."""

from __future__ import annotations

from dataclasses import dataclass

DASH = "—"


@dataclass
class Row:
    section: str
    figure: str
    value: str
    spread: str = ""
    target: str = ""
    meets: bool | None = None


def fmt(v, digits: int = 1, unit: str = "") -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return f"{v:.{digits}f}{unit}"
    return str(v)


def _pair(d: dict | None, a: str, b: str, digits: int = 1) -> str:
    d = d or {}
    return f"{fmt(d.get(a), digits)} / {fmt(d.get(b), digits)}"


def _range(s: dict) -> str:
    """"min–max (n=N)" of a spread dict, or "" when there was nothing to spread."""
    return f"{fmt(s.get('min'))}–{fmt(s.get('max'))} (n={s.get('n')})" if s.get("n") else ""


def summary_rows(doc: dict) -> list[Row]:
    llm, v2v, fr, tg, ok = doc["llm"], doc["voice_to_voice_ms"], doc["frame_ms"], doc["targets"], doc["meets"]
    sp = (llm.get("spread") or {})
    tps_sp = sp.get("tokens_per_s") or {}
    gen_sp = sp.get("generate_tokens_per_s") or {}
    device = f"{llm.get('device', '?')} {llm.get('dtype', '')}".strip()
    rows = [
        Row("LLM", f"our decode, tokens/s ({device})", fmt(llm.get("tokens_per_s")), _range(tps_sp)),
    ]
    for variant, v in (llm.get("variants_tokens_per_s") or {}).items():
        rows.append(Row("LLM", f"  our decode, CPU variant {variant}, tokens/s", fmt(v.get("median")), _range(v)))
    if llm.get("variants_skipped_for_time"):
        rows.append(Row("LLM", "  CPU variants skipped (time)", ", ".join(llm["variants_skipped_for_time"])))
    rows += [
        Row("LLM", "transformers generate, tokens/s", fmt(llm.get("generate_tokens_per_s")), _range(gen_sp)),
        Row("LLM", "ours / generate", fmt(llm.get("ratio_vs_generate"), 2, "x")),
        Row("LLM", "llama.cpp, tokens/s", fmt(llm.get("llamacpp_tokens_per_s")),
            "" if llm.get("llamacpp_installed") else "not installed"),
        Row("LLM", "ours / llama.cpp", fmt(llm.get("ratio_vs_llamacpp"), 2, "x"), "",
            f">= {fmt(tg.get('decode_vs_llamacpp'), 1, 'x')}" if tg.get("decode_vs_llamacpp") else "", ok.get("decode_vs_llamacpp")),
        Row("LLM", "ours / torch engine (torch on all cores; on as many as ours)",
            f"{fmt(llm.get('ratio_vs_torch'), 2, 'x')}; {fmt(llm.get('ratio_vs_torch_same_threads'), 2, 'x')}",
            f"torch {llm.get('torch_threads', '?')} / {llm.get('torch_same_threads', '?')} threads"),
        Row("LLM", "first token, cold / cached prefix, ms", _pair(llm, "ttft_cold_ms", "ttft_cached_ms")),
        Row("LLM", "llama.cpp first token, cold / cached, ms", _pair(llm, "llamacpp_ttft_cold_ms", "llamacpp_ttft_cached_ms")),
        Row("LLM", "constrained: grammar ms/token; tokens/s",
            f"{fmt(llm.get('constrained_overhead_ms_per_token'), 3)}; {fmt(llm.get('constrained_tokens_per_s'))}"),
        Row("voice to voice", "end of speech -> first audio, ms p50 / p95", _pair(v2v, "p50", "p95"),
            f"n={v2v.get('n')} of {(doc.get('options') or {}).get('turns', '?')} turns",
            f"p50 <= {fmt(tg.get('voice_to_voice_p50_ms'), 0)}", ok.get("voice_to_voice_p50_ms")),
    ]
    for stage, label in (("endpoint", "speech end -> VAD decision"), ("asr", "decision -> transcript"),
                         ("first_token", "transcript -> first token"),
                         ("first_sentence", "first token -> first sentence"), ("first_audio", "first sentence -> audio")):
        rows.append(Row("voice to voice", f"  {label}, ms p50 / p95", _pair(v2v.get(stage), "p50", "p95")))
    rows += [
        Row("frames", "idle, ms p50 / p99", _pair(fr.get("idle"), "p50", "p99", 2), f"n={(fr.get('idle') or {}).get('n')}"),
        Row("frames", "busy, ms p50 / p99", _pair(fr.get("busy"), "p50", "p99", 2), f"n={(fr.get('busy') or {}).get('n')}"),
        Row("frames", "busy / idle, p99", fmt(fr.get("ratio_p99"), 2, "x"), "",
            f"<= {fmt(tg.get('frame_ratio_p99'), 1, 'x')}", ok.get("frame_ratio_p99")),
    ]
    render = doc.get("render") or {}
    if render:
        rows.append(Row("frames", f"renderer {render.get('eye_size')} x2: python / GL ms",
                        f"{fmt(render.get('python_ms'), 2)} / {fmt(render.get('gl_ms'), 2)}"))
    rows += [
        Row("voice", "ASR real-time factor", fmt(doc.get("asr_rtf"), 3)),
        Row("voice", "ASR end of speech -> transcript, ms", fmt(doc.get("asr_end_to_transcript_ms"))),
        Row("voice", "TTS time to first audio, ms", fmt(doc.get("tts_first_audio_ms"))),
        Row("memory", "peak RSS (largest part), MiB", fmt(doc["memory"].get("peak_rss_mb"), 0)),
        Row("memory", "GPU peak allocated, MiB", fmt(doc["memory"].get("gpu_peak_mb"), 0),
            "" if doc["machine"].get("gpu") else "no GPU"),
    ]
    return rows


def part_lines(doc: dict) -> list[str]:
    """One line per part: status, seconds, error."""
    out = []
    for name, p in doc["parts"].items():
        line = f"{name}: {p.get('status')}"
        if p.get("seconds") is not None:
            line += f" in {p['seconds']:.0f} s"
        if p.get("error"):
            line += f" — {p['error'].splitlines()[0][:160]}"
        out.append(line)
    return out
