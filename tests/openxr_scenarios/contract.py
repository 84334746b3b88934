"""The display-backend contract (xrstory.xr.backend), as checks any backend must pass.

Used by tests/test_display_contract.py on the headless backend (host) and, inside the Monado
root, on the OpenXR backend (scenario "contract" of run.py). ``check_backend`` drives the real
frame loop and returns a list of problems (empty = passes):

- views: one per target, ``View`` objects, unit quaternions, finite positions, a frustum
  (angle_left < angle_right, angle_down < angle_up), eyes apart horizontally;
- timing: index +1 per frame, time increasing, dt == time - previous time (first frame dt 0 allowed);
- targets: moderngl framebuffers of non-zero size that a draw can clear and read back;
- input events: a list of ``InputEvent``;
- lifecycle: ``request_exit()`` ends ``frames()`` within a bounded number of frames and the
  context manager closes without error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from xrstory.render.view import View
from xrstory.xr.backend import Frame, InputEvent


def check_frame(frame: Frame, prev: Frame | None) -> list[str]:
    p: list[str] = []
    tag = f"frame {frame.index}"
    if not isinstance(frame.should_render, bool):
        p.append(f"{tag}: should_render is {type(frame.should_render).__name__}, not bool")
    if not isinstance(frame.input_events, list) or not all(isinstance(e, InputEvent) for e in frame.input_events):
        p.append(f"{tag}: input_events must be a list of InputEvent")
    if prev is not None:
        if frame.index != prev.index + 1:
            p.append(f"{tag}: index after {prev.index} is not +1")
        if not frame.time > prev.time:
            p.append(f"{tag}: time {frame.time} not after {prev.time}")
        if not math.isclose(frame.dt, frame.time - prev.time, rel_tol=1e-6, abs_tol=1e-6):
            p.append(f"{tag}: dt {frame.dt} != time difference {frame.time - prev.time}")
    if not frame.should_render:
        return p
    if len(frame.views) < 1 or len(frame.views) != len(frame.targets):
        p.append(f"{tag}: {len(frame.views)} views for {len(frame.targets)} targets")
    for i, v in enumerate(frame.views):
        if not isinstance(v, View):
            p.append(f"{tag}: view {i} is a {type(v).__name__}, not xrstory.render.view.View")
            continue
        q = v.pose.orientation
        if not math.isclose(sum(c * c for c in q), 1.0, abs_tol=1e-3):
            p.append(f"{tag}: view {i} orientation {q} is not a unit quaternion")
        if not all(math.isfinite(c) for c in v.pose.position):
            p.append(f"{tag}: view {i} position {v.pose.position} not finite")
        f = v.fov
        if not (f.angle_left < f.angle_right and f.angle_down < f.angle_up):
            p.append(f"{tag}: view {i} fov {f} is not a frustum")
    if len(frame.views) == 2:
        a, b = (v.pose.position for v in frame.views)
        ipd = math.dist(a, b)
        if not 0.02 < ipd < 0.2:
            p.append(f"{tag}: eyes {ipd:.3f} m apart (expected 0.02..0.2)")
    for i, t in enumerate(frame.targets):
        w, h = t.size
        if w <= 0 or h <= 0:
            p.append(f"{tag}: target {i} has size {t.size}")
    return p


def probe_target(target) -> list[str]:
    """Clear a target to a known colour and read it back: it must really be drawable."""
    target.use()
    target.clear(0.25, 0.5, 0.75, 1.0, depth=1.0)
    px = target.read(viewport=(0, 0, 1, 1), components=4)
    want = (64, 128, 191, 255)
    if any(abs(a - b) > 2 for a, b in zip(px, want, strict=True)):
        return [f"target cleared to {want} reads back {tuple(px)}"]
    return []


def check_backend(open_backend: Callable[[], object], frames: int = 30, exit_within: int = 200) -> list[str]:
    """Run ``frames`` rendered frames, then ``request_exit()``; return every contract problem."""
    problems: list[str] = []
    rendered = 0
    after_exit = None
    prev = None
    with open_backend() as display:
        for attr in ("name", "blend_mode"):
            if not isinstance(getattr(display, attr, None), str):
                problems.append(f"backend has no string '{attr}'")
        if getattr(display, "blend_mode", None) not in ("opaque", "additive", "alpha_blend"):
            problems.append(f"blend_mode {getattr(display, 'blend_mode', None)!r} is not a known mode")
        for frame in display.frames():
            problems += check_frame(frame, prev)
            prev = frame
            if frame.should_render:
                if rendered == 0:
                    for t in frame.targets:
                        problems += probe_target(t)
                rendered += 1
            if after_exit is not None:
                after_exit += 1
                if after_exit > exit_within:
                    problems.append(f"frames() still running {exit_within} frames after request_exit()")
                    break
            elif rendered >= frames:
                display.request_exit()
                after_exit = 0
    if rendered < frames:
        problems.append(f"only {rendered} frames rendered (wanted {frames})")
    return problems
