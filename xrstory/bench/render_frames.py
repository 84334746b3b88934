"""Benchmark: CPU time per frame of the demo scene at 2 x 1280x1280, split into our Python work
and GL time. Not a timed test: it reports medians; the target is our share <= 1.5 ms/frame.

    python -m xrstory.bench.render_frames [--frames 60] [--eye 1280x1280]

The demo's characters are glTF models (skinned and morphed on the GPU, idle clip, a gesture, a
speaking face) and one light casts shadows (a shadow pass per frame).

Split per frame (all CPU-side, milliseconds):
  python_ms    update() + draw() minus the time inside GL calls: scene traversal, animation,
               instance packing, uniform packing, draw submission bookkeeping (wall clock)
  python_cpu_ms the same split measured in the thread's CPU time (``time.thread_time``) over a
               second run of frames: what our work costs, without the waits a loaded machine adds
  gl_call_ms   inside moderngl calls (clear/render/state); llvmpipe does part of its work here
  gl_finish_ms waiting in ctx.finish() for the frame to complete (rasterisation on llvmpipe)
  frame_cpu_ms the frame loop thread's CPU time (``time.thread_time``), as the display records
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from xrstory.render.renderer import SceneRenderer
from xrstory.render.view import Pose
from xrstory.story import Story, load_scene
from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay


def run_bench(scene_dir: str = "scenes/lighthouse", eye_size: tuple[int, int] = (1280, 1280),
              frames: int = 60, warmup: int = 5) -> dict:
    """Render ``frames`` stereo frames timed by the wall clock, then ``frames`` more timed by the
    thread's CPU clock (a character speaking with visemes, another gesturing, a subtitle, the lamp
    animating on, shadows) and return the median split per frame, in milliseconds."""
    scene = load_scene(scene_dir)
    story = Story(scene)
    vp = scene.viewpoint()
    cfg = HeadlessConfig(eye_size=eye_size, stereo=True, start=Pose.look_at(vp.position, vp.look_at))
    rows, cpu_rows = [], []
    with HeadlessDisplay(cfg) as display, SceneRenderer(display.ctx, scene, story.state) as renderer:
        for trig, by in [("light_stove", "maren"), ("open_cellar", "player"), ("fetch_oil", "tobias"),
                         ("light_lamp", "maren")]:
            story.apply(trig, by)
        display.walk([(0.3, 1.6, -0.5)], speed=0.2, look_at=renderer.anchor("lamp"))
        visemes = ("aa", "E", "O", "PP", "I", "U", "SS", "rest")
        for frame in display.frames(max_frames=2 * frames + warmup):
            if frame.index == warmup + frames:
                renderer.clock = time.thread_time  # the second half: the thread's CPU time
            if frame.index % 90 == 0:
                renderer.gesture("tobias", "happy")  # a gesture cross-fades in every second
            envelope = 0.5 + 0.5 * ((frame.index * 7) % 10) / 10  # a voice that keeps moving the mouth
            renderer.update(story.state, frame.dt, speaking={"maren": envelope},
                            visemes={"maren": visemes[(frame.index // 6) % len(visemes)]},
                            subtitles={"maren": "Aye, friend. The lamp burns again."},
                            player_position=frame.head.position)
            renderer.draw(frame.views, frame.targets)
            t = time.perf_counter()
            display.ctx.finish()
            finish_ms = (time.perf_counter() - t) * 1e3
            st = renderer.last_stats
            if warmup <= frame.index < warmup + frames:
                rows.append({"python_ms": st.python_ms, "update_ms": st.update_ms, "gl_call_ms": st.gl_call_ms,
                             "gl_finish_ms": finish_ms, "draw_calls": st.draw_calls})
            elif frame.index >= warmup + frames:
                cpu_rows.append(st.python_ms)
        timings = display.timings[warmup:warmup + frames]
        gl_renderer = display.ctx.info.get("GL_RENDERER", "?")
    out = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    out["gl_ms"] = round(statistics.median(r["gl_call_ms"] + r["gl_finish_ms"] for r in rows), 3)
    out["frame_cpu_ms"] = round(statistics.median(t.cpu_ms for t in timings), 3)
    out["frame_wall_ms"] = round(statistics.median(t.wall_ms for t in timings), 3)
    out["python_ms_p90"] = round(sorted(r["python_ms"] for r in rows)[int(0.9 * (len(rows) - 1))], 3)
    out["python_cpu_ms"] = round(statistics.median(cpu_rows), 3)
    out["python_cpu_ms_p90"] = round(sorted(cpu_rows)[int(0.9 * (len(cpu_rows) - 1))], 3)
    out.update(frames=len(rows), eye_size=f"{eye_size[0]}x{eye_size[1]}", views=2, gl_renderer=gl_renderer,
               python_target_ms=1.5, python_within_target=out["python_ms"] <= 1.5,
               python_cpu_within_target=out["python_cpu_ms"] <= 1.5)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--eye", default="1280x1280")
    a = ap.parse_args()
    w, h = (int(v) for v in a.eye.split("x"))
    print(json.dumps(run_bench(eye_size=(w, h), frames=a.frames), indent=2))
