"""The display-backend contract (xrstory.xr.backend) over both backends.

The checks live in tests/openxr_scenarios/contract.py so the same code runs on the headless
backend here (host) and on the OpenXR backend inside the Monado root (scenario "contract"):
views, timing, targets, input events, request_exit() lifecycle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "openxr_scenarios"))

from contract import check_backend, check_frame  # noqa: E402

from xrstory.render.view import Fov, Pose, View  # noqa: E402
from xrstory.xr.backend import Frame, InputEvent, InputKind  # noqa: E402


def test_headless_backend_passes_the_contract():
    from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

    problems = check_backend(lambda: HeadlessDisplay(HeadlessConfig(eye_size=(64, 64))), frames=30)
    assert problems == []


def test_headless_scripted_input_arrives_as_input_events():
    from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

    seen = []
    with HeadlessDisplay(HeadlessConfig(eye_size=(32, 32))) as display:
        display.press()
        for frame in display.frames(max_frames=5):
            seen += frame.input_events
    assert [e.kind for e in seen if e.kind == InputKind.SELECT] == [InputKind.SELECT]
    assert all(isinstance(e, InputEvent) for e in seen)


@pytest.mark.monado
def test_openxr_backend_passes_the_contract(tmp_path):
    from host import build_runtime, scenario

    build_runtime()
    r = scenario("contract", tmp_path)
    assert r["problems"] == []
    assert r["monado_errors"] == [] and r["monado_exit"] == 0


def test_the_checks_catch_broken_frames():
    """The contract checks themselves fail on frames that break it (so passing means something)."""
    good = [View(Pose((-0.03, 1.6, 0.0)), Fov()), View(Pose((0.03, 1.6, 0.0)), Fov())]

    class Target:
        size = (8, 8)

    prev = Frame(index=0, time=1.0, dt=0.0, views=good, targets=[Target(), Target()])
    ok = Frame(index=1, time=1.1, dt=0.1, views=good, targets=[Target(), Target()])
    assert check_frame(ok, prev) == []
    bad_time = Frame(index=1, time=0.9, dt=0.1, views=good, targets=[Target(), Target()])
    assert any("not after" in p for p in check_frame(bad_time, prev))
    bad_quat = [View(Pose((0, 1.6, 0), (0, 0, 0, 2.0)), Fov()), good[1]]
    assert any("unit quaternion" in p for p in check_frame(
        Frame(index=1, time=1.1, dt=0.1, views=bad_quat, targets=[Target(), Target()]), prev))
    fewer_targets = Frame(index=1, time=1.1, dt=0.1, views=good, targets=[Target()])
    assert any("targets" in p for p in check_frame(fewer_targets, prev))
