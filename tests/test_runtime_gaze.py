"""Gaze dwell reaches the director from the session's ``GazeFeed``, on the brain worker's thread.

Real pieces, all light: the lighthouse scene, the director's ``GazeTracker`` and ``Director``
with a SQLite profile in ``tmp_path``, and the session's ``BrainWorker`` thread. No model is
loaded: the brain worker gets no mind and no mouth, because only its inbox (``GazeDwell`` on the
director's thread) is used here. Head poses come from ``Pose.look_at`` and, in one test, from
the headless display's own frame loop (EGL on llvmpipe).
"""

from __future__ import annotations

import queue
import threading

import pytest
from helpers import settle

from xrstory.director import Director, ProfileConfig, ProfileStore
from xrstory.render.view import Pose
from xrstory.runtime.brain import BrainWorker
from xrstory.runtime.gaze_feed import GazeFeed, GazeFeedConfig
from xrstory.story import Story, load_scene

DT = 0.032  # s: one headless frame at 31.25 fps (one 32 ms audio chunk)
EYE = (0.0, 1.6, 0.0)  # the player's viewpoint in the lighthouse scene, metres


@pytest.fixture(scope="module")
def scene():
    return load_scene("scenes/lighthouse")


@pytest.fixture
def rig(scene, tmp_path):
    """(director, brain worker, thread names on which on_gaze ran). The director's profile is a
    fresh SQLite file; its clock is fixed so no decay blurs the seconds compared here."""
    with ProfileStore(ProfileConfig(data_dir=tmp_path)) as store:
        director = Director(Story(scene), store, "ada", clock=lambda: 1_000.0)
        threads: list[str] = []
        on_gaze = director.on_gaze

        def spy(dwell):  # records the thread, then runs the real method
            threads.append(threading.current_thread().name)
            on_gaze(dwell)

        director.on_gaze = spy
        brain = BrainWorker(None, scene, None, queue.Queue(), director=director).start()
        try:
            yield director, brain, threads
        finally:
            brain.close()


def center_of(scene, prop_id: str):
    return next(p.position for p in scene.props if p.id == prop_id)


def gaze_seconds(director: Director) -> dict[str, float]:
    return {k: f.value for k, f in director.features().items() if k.startswith("gaze.")}


def test_looking_at_the_lamp_gives_the_director_its_dwell(scene, rig):
    director, brain, threads = rig
    feed = GazeFeed(scene, brain, GazeFeedConfig(period_s=60.0))
    head = Pose.look_at(EYE, center_of(scene, "lamp"))
    n = 50
    for _ in range(n):
        assert feed.update(head.position, head.orientation, DT) == "prop.lamp"
    assert gaze_seconds(director) == {}, "nothing reaches the director before a hand-over"
    handed = feed.flush()
    settle(brain)
    assert handed == pytest.approx({"prop.lamp": n * DT})
    assert gaze_seconds(director) == pytest.approx({"gaze.prop.lamp": n * DT})
    assert director.features()["interest.action"].value == pytest.approx(n * DT / 10.0)
    assert threads == ["brain"], "the director is touched only on the brain worker's thread"
    assert feed.flush() == {}
    settle(brain)
    assert threads == ["brain"], "an empty dwell is not sent"


def test_dwell_is_handed_over_every_period(scene, rig):
    director, brain, threads = rig
    feed = GazeFeed(scene, brain, GazeFeedConfig(period_s=1.0))
    maren = scene.character("maren")
    head = Pose.look_at(EYE, (maren.position[0], maren.position[1] + 0.9 * maren.appearance.height,
                              maren.position[2]))
    for _ in range(100):  # 3.2 s: a hand-over after every 32 frames (1.024 s), 4 frames left over
        feed.update(head.position, head.orientation, DT)
    settle(brain)
    assert len(threads) == 3 and set(threads) == {"brain"}
    assert gaze_seconds(director) == pytest.approx({"gaze.character.maren": 96 * DT})
    assert feed.tracker.dwell == pytest.approx({"character.maren": 4 * DT})


def test_looking_at_nothing_sends_nothing(scene, rig):
    director, brain, threads = rig
    feed = GazeFeed(scene, brain, GazeFeedConfig(period_s=0.5))
    up = Pose.look_at(EYE, (0.0, 50.0, -0.1))  # straight at the ceiling, far above every target
    for _ in range(40):
        assert feed.update(up.position, up.orientation, DT) is None
    settle(brain)
    assert threads == [] and gaze_seconds(director) == {}


def test_headless_frames_feed_the_gaze(scene, rig):
    """The head pose as the session gets it: ``Frame.head`` of the headless display's loop."""
    from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

    director, brain, _ = rig
    feed = GazeFeed(scene, brain, GazeFeedConfig(period_s=60.0))
    config = HeadlessConfig(eye_size=(8, 8), stereo=False, fps=1 / DT, start=Pose.look_at(EYE, center_of(scene, "lamp")))
    with HeadlessDisplay(config) as display:
        for frame in display.frames(max_frames=30):  # frame 0 has dt 0: 29 frames of dwell
            feed.update(frame.head.position, frame.head.orientation, frame.dt)
        display.look_at(center_of(scene, "stove"))
        for frame in display.frames(max_frames=20):
            feed.update(frame.head.position, frame.head.orientation, frame.dt)
    feed.flush()
    settle(brain)
    assert gaze_seconds(director) == pytest.approx({"gaze.prop.lamp": 29 * DT, "gaze.prop.stove": 19 * DT})


@pytest.mark.parametrize("kwargs, message", [
    ({"period_s": 0.0}, "period_s must be > 0 seconds, got 0.0"),
    ({"min_angle_deg": 95.0}, "min_angle_deg must be in (0, 90) degrees, got 95.0"),
])
def test_bad_gaze_config_is_named(kwargs, message):
    with pytest.raises(ValueError) as info:
        GazeFeedConfig(**kwargs)
    assert message in str(info.value)
