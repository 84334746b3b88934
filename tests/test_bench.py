"""`xrstory bench`: the quick path with tiny repeats produces every figure of the issue as a
number under stable keys, and a RESULTS.md section with machine, commit, load and targets.

The slow test runs the real parts (model, Whisper, TTS, a real-time playthrough, GL) with the
smallest settings: it checks that every figure is measured, not how fast (speed targets live in
the benchmark's own output, never in a timed test).
"""

import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xrstory.bench import (
    BenchOptions,
    append_results,
    assemble,
    missing_figures,
    required_figures,
    run_bench,
)
from xrstory.bench.machine import SIMD_FLAGS, cpu_simd
from xrstory.bench.options import DEFAULT_PLAY, DEFAULT_SCENE
from xrstory.bench.part_playthrough import first_turns
from xrstory.cli import app
from xrstory.playthrough.script import parse_playthrough

TOP_KEYS = {"machine", "commit", "date", "llm", "voice_to_voice_ms", "frame_ms", "asr_rtf",
            "asr_end_to_transcript_ms", "tts_first_audio_ms", "memory", "targets", "meets"}


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@pytest.mark.slow
def test_quick_run_measures_every_figure(tmp_path):
    # generous time limits: this test checks that every figure is measured, not how fast
    scale = max(4.0, BenchOptions().scale(os.getloadavg()[0], os.cpu_count()))
    opts = BenchOptions.quick(turns=1, llm_tokens=8, render_frames=4, render_eye=(256, 256), budget_scale=scale)
    doc = run_bench(opts)
    assert {n: p["status"] for n, p in doc["parts"].items()} == dict.fromkeys(doc["parts"], "ok"), doc["parts"]
    assert TOP_KEYS <= set(doc)
    assert missing_figures(doc) == []
    figures = required_figures(doc)
    optional = {"llm.llamacpp_tokens_per_s", "llm.ratio_vs_llamacpp"} if not doc["llm"]["llamacpp_installed"] else set()
    if doc["machine"]["gpu"] is None:
        optional.add("memory.gpu_peak_mb")
    for key, value in figures.items():
        assert _is_number(value) or (key in optional and value is None), f"{key} = {value!r}"
    # the figures mean what they say
    assert doc["llm"]["tokens_per_s"] > 0 and doc["llm"]["generate_tokens_per_s"] > 0
    # torch also measured on the llama.cpp engine's thread count (equal cores), never on more
    assert doc["llm"]["torch_same_threads"] <= doc["llm"]["torch_threads"]
    assert doc["llm"]["torch_same_threads_tokens_per_s"] > 0
    assert doc["llm"]["ttft_cached_ms"] <= doc["llm"]["ttft_cold_ms"] * 1.5  # cached prefix is not slower
    v2v = doc["voice_to_voice_ms"]
    assert v2v["n"] == 1 and v2v["p50"] <= v2v["p95"]
    # end of speech -> first audio covers its stages
    # one turn: its stages are consecutive stamps, so they add up to it; the clock starts before the VAD decides
    stages = ("endpoint", "asr", "first_token", "first_sentence", "first_audio")
    assert sum(v2v[s]["p50"] for s in stages) == pytest.approx(v2v["p50"], abs=1.0) and v2v["endpoint"]["p50"] > 0
    fr = doc["frame_ms"]
    assert fr["idle"]["n"] > 30 and fr["busy"]["n"] > 0  # `wait 10` gives ~310 idle frames
    assert fr["ratio_p99"] == pytest.approx(fr["busy"]["p99"] / fr["idle"]["p99"], rel=1e-2)
    assert 0 < doc["asr_rtf"] < 20 and doc["memory"]["peak_rss_mb"] > 100
    assert doc["targets"]["voice_to_voice_p50_ms"] in (1000.0, 300.0)
    assert isinstance(doc["meets"]["voice_to_voice_p50_ms"], bool)
    assert json.loads(json.dumps(doc)) == doc  # plain JSON, stable

    results = append_results(doc, tmp_path / "RESULTS.md")
    append_results(doc, results)  # appending keeps earlier runs
    text = results.read_text()
    assert text.startswith("# Benchmark results") and text.count(f"## {doc['date']}") == 2
    assert f"`{doc['commit']}`" in text and "load average" in text and doc["machine"]["cpu"] in text
    assert "p50 <= 1000" in text or "p50 <= 300" in text
    # the host's vector units and llama.cpp's build: figures from two hosts compare only with these
    assert isinstance(doc["machine"]["simd"], list) and all(f in SIMD_FLAGS for f in doc["machine"]["simd"])
    if doc["llm"]["llamacpp_installed"]:
        assert "AVX" in doc["llm"]["llamacpp_build"] and doc["llm"]["llamacpp_build"] in text


def test_quick_playthrough_keeps_the_first_turns():
    pt = parse_playthrough(DEFAULT_PLAY, scene_dir=DEFAULT_SCENE)
    cut = first_turns(pt, 2)
    said = [s for s in cut.steps if s.kind == "say"]
    assert [s.args["text"] for s in said] == [s.args["text"] for s in pt.steps if s.kind == "say"][:2]
    assert any(s.kind == "wait" for s in cut.steps)  # the idle frames stay
    with pytest.raises(ValueError, match="voice_to_voice.play: has 8 spoken turns, 99 asked for"):
        first_turns(pt, 99)


def test_failed_part_leaves_its_figures_null_and_named():
    opts = BenchOptions.quick()
    machine = {"uname": "x", "cpu": "cpu", "cores": 2, "gpu": None, "load_avg_start": [1.0, 1.0, 1.0]}
    parts = {"llm": {"status": "timeout", "error": "part 'llm' exceeded its budget of 60 s"},
             "voice": {"status": "ok", "figures": {"asr_rtf": 0.2, "asr_end_to_transcript_ms": 300.0,
                                                   "tts_first_audio_ms": 40.0}, "peak_rss_mb": 700.0}}
    doc = assemble(opts, machine, {"commit": "abc1234", "dirty": False}, "2026-11-28T00:00:00Z", parts, 1.0)
    missing = missing_figures(doc)
    assert "llm.tokens_per_s" in missing and "voice_to_voice_ms.p50" in missing and "frame_ms.ratio_p99" in missing
    assert "asr_rtf" not in missing and "memory.gpu_peak_mb" not in missing
    assert doc["meets"]["voice_to_voice_p50_ms"] is None and doc["memory"]["peak_rss_mb"] == 700.0


@pytest.mark.parametrize("args, message", [(["--part", "nope"], "--part 'nope'"),
                                           (["--turns", "0"], "--turns must be >= 1"),
                                           (["--threads", "0"], "--threads must be >= 1"),
                                           (["--budget-scale", "0"], "--budget-scale must be > 0")])
def test_bad_options_name_the_option(args, message):
    result = CliRunner().invoke(app, ["bench", "--no-append", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_cpu_simd_reads_this_host():
    """The flags come from /proc/cpuinfo: an x86-64 host with torch's fp32 kernels has AVX2 at least."""
    simd = cpu_simd()
    assert simd == [f for f in SIMD_FLAGS if f in simd]  # in SIMD_FLAGS order, nothing else
    if Path("/proc/cpuinfo").exists() and "avx2" in Path("/proc/cpuinfo").read_text():
        assert "avx2" in simd
