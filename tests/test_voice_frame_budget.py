"""The frame budget's render setting: small headless eyes (the spoken arc's 2 x 256x256) draw with
the one-tap shadow filter, a headset or large eyes with four taps; the session's stage builds its
renderer with that choice on the real headless display (EGL, llvmpipe here)."""

from pathlib import Path

import pytest
from helpers import lighthouse_fixture

from xrstory.runtime.stage import Stage, default_shadow_taps
from xrstory.story.state import Story
from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

scene = lighthouse_fixture()


@pytest.mark.parametrize(("size", "taps"), [((256, 256), 1), ((512, 384), 1), ((640, 640), 4), ((1280, 1280), 4)])
def test_small_headless_eyes_get_one_shadow_tap(size, taps):
    assert default_shadow_taps(HeadlessDisplay(HeadlessConfig(eye_size=size))) == taps


def test_a_display_that_is_not_headless_keeps_four_taps():
    class Headset:
        """Stands in for an OpenXR display, which needs a runtime and a headset not present here."""
        name = "openxr"

    assert default_shadow_taps(Headset()) == 4


def test_the_stage_draws_with_the_chosen_filter(scene):
    with HeadlessDisplay(HeadlessConfig(eye_size=(64, 64))) as display:
        for given, used in ((None, 1), (4, 4)):
            stage = Stage(display, scene, shadow_taps=given)
            stage.open(Story(scene).state)
            try:
                assert stage.renderer.shadow_taps == used
            finally:
                stage.close()


def test_the_session_lowers_the_model_and_whisper_threads_but_not_the_voice(scene):
    """Real components and session (no display: audio only). worker_nice applies to the model's
    and the ear's threads; the TTS thread stays beside the frame loop (tts_nice 0 by default)."""
    import os

    from xrstory.runtime.config import SessionConfig
    from xrstory.runtime.launch import load_for
    from xrstory.runtime.session import Session

    config = SessionConfig(scene_dir=Path("scenes/lighthouse"), realtime=False)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with load_for(config, scene, with_embedder=False) as components, Session(config, components, scene) as s:
        nice = {name: os.getpriority(os.PRIO_PROCESS, t.native_id)
                for name, t in (("tts", s.mouth.thread), ("brain", s.brain.thread), ("ear", s.voice.ear.thread))}
    assert nice == {"tts": base, "brain": min(19, base + 10), "ear": min(19, base + 10)}, nice
