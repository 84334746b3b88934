"""Benchmark part "render": CPU time per stereo frame of the demo scene, split into our Python
work and GL time (the render layer's ``run_bench``), at the eye size of an XR headset.

Run alone:  python -m xrstory.bench.worker render
"""

from __future__ import annotations

from xrstory.bench.options import BenchOptions


def run_render_part(opts: BenchOptions) -> dict:
    from xrstory.bench.render_frames import run_bench

    return run_bench(str(opts.scene_dir), eye_size=opts.render_eye, frames=opts.render_frames,
                     warmup=min(5, max(1, opts.render_frames // 4)))
