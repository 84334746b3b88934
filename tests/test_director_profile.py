"""The profile: behaviour -> decayed features -> tone/verbosity hints and bandit context;
gaze dwell from head pose; bad input named clearly."""

import math

import pytest
from helpers import lighthouse_fixture

from xrstory.director import (
    Director,
    GazeTracker,
    ProfileConfig,
    ProfileError,
    ProfileStore,
    scene_targets,
    taste,
)
from xrstory.director.store import SECONDS_PER_DAY
from xrstory.story import Story

scene = lighthouse_fixture()


def test_features_decay_with_their_half_life(tmp_path):
    with ProfileStore(ProfileConfig(data_dir=tmp_path, half_life_days=14.0)) as store:
        store.ensure_player("p1", now=0.0)
        store.record_event("p1", "topic", "lore", features={"interest.lore": 4.0}, now=0.0)
        half = store.features("p1", now=14 * SECONDS_PER_DAY)["interest.lore"]
        assert half.value == pytest.approx(2.0) and half.weight == pytest.approx(0.5)
        store.record_event("p1", "topic", "lore", features={"interest.lore": 4.0}, now=14 * SECONDS_PER_DAY)
        assert store.features("p1", now=14 * SECONDS_PER_DAY)["interest.lore"].value == pytest.approx(6.0)
        with pytest.raises(ProfileError, match="not a finite number"):
            store.record_event("p1", "x", features={"bad": math.nan})
        with pytest.raises(ProfileError, match="invalid player id 'a b'"):
            store.ensure_player("a b")


def test_terse_interrupting_player_gets_short_answers(scene, tmp_path):
    with ProfileStore(ProfileConfig(data_dir=tmp_path)) as store:
        d = Director(Story(scene), store, "terse")
        for line in ["ok", "stove?", "hurry up", "boring", "what now"]:
            d.on_character_line("maren", "Aye friend, a long tale of the sea and the lamp and the storm...")
            d.on_interruption("maren")
            d.on_player_line(line, addressed="maren")
        hints = d.prompt_hints("maren")
        assert "The player prefers short answers: one or two sentences." in hints
        assert any("impatient" in h for h in hints)
        assert taste(d.features()).short == 1.0


def test_lore_lover_of_tobias_gets_lore_and_favourite_hints(scene, tmp_path):
    with ProfileStore(ProfileConfig(data_dir=tmp_path)) as store:
        d = Director(Story(scene), store, "listener")
        for line in ["Tobias, tell me the story of how the Marigold struck the rocks, I'd love to know",
                     "Who is the captain, and how long has the crew sailed together in these waters?",
                     "What was life like on the boat, tell me about the old days at sea with your family",
                     "That is a wonderful tale, tell me more about the history of the Marigold"]:
            d.on_player_line(line, addressed="tobias")
        d.on_gaze({"character.tobias": 20.0})
        hints = d.prompt_hints("maren")
        assert "The player loves stories and background: share lore when it fits." in hints
        assert "The player enjoys Tobias's stories." in hints
        assert "The player enjoys your stories." in d.prompt_hints("tobias")
        assert not any("short answers" in h for h in hints)


def test_gaze_tracker_accumulates_dwell_from_head_pose(scene):
    tracker = GazeTracker(scene_targets(scene))
    eye = (0.0, 1.6, 0.0)
    lamp = scene.prop("lamp").position  # (0, 2.3, -4.6): ahead and a little up
    pitch = math.atan2(lamp[1] - eye[1], -lamp[2])  # radians, rotate about +X to look up
    look_up = (math.sin(pitch / 2), 0.0, 0.0, math.cos(pitch / 2))  # xyzw
    for _ in range(90):
        tracker.update(eye, look_up, 1 / 90)
    maren = scene.character("maren")
    head = (maren.position[0], 0.9 * maren.appearance.height, maren.position[2])
    yaw = math.atan2(-(head[0] - eye[0]), -(head[2] - eye[2]))  # about +Y; -Z is forward
    look_left = (0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2))
    assert tracker.looked_at(eye, look_left) == "character.maren"
    tracker.update(eye, look_left, 0.5)
    tracker.update(eye, (0.0, 1.0, 0.0, 0.0), 2.0)  # looking behind: nothing there
    dwell = tracker.take()
    assert dwell["prop.lamp"] == pytest.approx(1.0) and dwell["character.maren"] == pytest.approx(0.5)
    assert tracker.take() == {}
    with pytest.raises(ValueError, match="zero quaternion"):
        tracker.looked_at(eye, (0, 0, 0, 0))
    d = Director(Story(scene))
    for line in ["What is that?", "Is it broken?", "Why is it dark?"]:
        d.on_player_line(line)
    d.on_gaze({"prop.lamp": 6.0})
    assert "The player keeps looking at the great lamp." in d.prompt_hints("maren")


def test_director_needs_store_and_player_together(scene, tmp_path):
    with pytest.raises(ValueError, match="both a profile store and a player id"):
        Director(Story(scene), player_id="x")
