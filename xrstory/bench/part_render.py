"""Benchmark part "render": CPU time per stereo frame of the demo scene (glTF characters skinned
and morphed on the GPU, a gesture, a speaking face, a shadow map), split into our Python work
and GL time (the render layer's ``run_bench``), at the eye size of an XR headset.

Run alone:  python -m xrstory.bench.worker render
"""

from __future__ import annotations

from xrstory.bench.options import BenchOptions


def run_render_part(opts: BenchOptions) -> dict:
    from xrstory.bench.render_frames import run_bench

    # run_bench times ``frames`` by the wall clock and as many again by the thread's CPU clock:
    # half of the part's frames each, so the part takes as long as before
    half = max(3, opts.render_frames // 2)
    return run_bench(str(opts.scene_dir), eye_size=opts.render_eye, frames=half,
                     warmup=min(5, max(1, opts.render_frames // 4)))
