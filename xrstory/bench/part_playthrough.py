"""Benchmark part "voice_to_voice": N scripted spoken turns through the real pipeline (TTS'd
player line -> VAD -> Whisper -> model -> sentence -> TTS -> mixer) with the frame loop paced
to the wall clock, so latencies are what a player would feel. Also yields the frame times,
idle and while the pipeline is busy.

Stages, per turn, in ms (``TurnRecord.stage_ms``; docs/ARCHITECTURE.md "Latency"):
  endpoint        true end of the player's speech (the scripted audio's last sound) -> the VAD's decision
  asr             decision -> final transcript
  first_token     transcript -> first token the model chose
  first_sentence  first token -> first complete sentence of ``say``
  first_audio     first sentence -> its first sample leaving the mixer
  total (p50/p95) true end of speech -> first sample of the reply

Run alone:  python -m xrstory.bench.worker voice_to_voice
"""

from __future__ import annotations

from dataclasses import replace

from xrstory.bench.options import BenchOptions
from xrstory.bench.stats import percentiles, ratio

STAGES = ("endpoint", "asr", "first_token", "first_sentence", "first_audio")
# the mind's own span, from when it was asked (before the turn closed, when it thought ahead)
MIND_SPAN = ("think_ahead", "mind_first_token", "mind_first_sentence")


def first_turns(pt, turns: int):
    """The script cut after its ``turns``-th spoken line and the expectations that follow it."""
    if turns < 1:
        raise ValueError(f"turns must be >= 1, got {turns}")
    kept, said = [], 0
    for step in pt.steps:
        if step.kind in ("say", "type", "audio", "interrupt"):
            if said == turns:
                break
            said += 1
        kept.append(step)
    if said < turns:
        raise ValueError(f"{pt.path}: has {said} spoken turns, {turns} asked for")
    return replace(pt, steps=kept)


def run_playthrough_part(opts: BenchOptions) -> dict:
    from xrstory.playthrough.runner import PlaythroughRunner
    from xrstory.playthrough.script import parse_playthrough
    from xrstory.runtime.components import load_components
    from xrstory.runtime.config import SessionConfig
    from xrstory.story import load_scene

    pt = first_turns(parse_playthrough(opts.play, scene_dir=opts.scene_dir), opts.turns)
    scene = load_scene(pt.scene_dir)
    with load_components(scene, base_model=opts.model, threads=opts.threads) as components:
        config = SessionConfig(scene_dir=pt.scene_dir, base_model=opts.model, eye_size=opts.eye_size,
                               realtime=True, keep_audio=False)
        result = PlaythroughRunner(components, config, report_dir=None).run(pt)
        adapter, load_s = components.adapter, components.load_s

    stages = [t.stage_ms() for t in result.turns]
    v2v = [s["voice_to_voice_ms"] for s in stages if s["voice_to_voice_ms"] is not None]
    voice_to_voice = percentiles(v2v, (50, 95), 1)
    for stage in STAGES + MIND_SPAN:
        got = [s[f"{stage}_ms"] for s in stages if s[f"{stage}_ms"] is not None]
        voice_to_voice[stage] = {k: v for k, v in percentiles(got, (50, 95), 1).items() if k != "n"}
    idle = percentiles(result.frame_ms_idle, (50, 99), 3)
    busy = percentiles(result.frame_ms_busy, (50, 99), 3)
    return {
        "voice_to_voice_ms": voice_to_voice,
        "frame_ms": {"idle": idle, "busy": busy, "ratio_p99": ratio(busy["p99"], idle["p99"]),
                     "ratio_p50": ratio(busy["p50"], idle["p50"])},
        "turns": [{"player": t.player_text, "heard": t.heard_text, "character": t.character, "say": t.say,
                   "fallback": t.fallback, **t.stage_ms()} for t in result.turns],
        "turns_asked": opts.turns,
        "failures": [str(f) for f in result.failures],
        "adapter": adapter,
        "load_s": load_s,
        "eye_size": list(opts.eye_size),
        "seconds": round(result.seconds, 1),
    }
