"""Story state: the rules of ``Story.apply`` (every refusal reason), the JSON round trip,
versioned saves (migration from v1, newer versions refused, torn files named), and atomic
saves under SIGKILL: a writer process is killed mid-save again and again and the save on
disk must always be its last complete save (or the one it had just renamed into place)."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from xrstory.story import SaveError, Story, StoryState, load_scene, load_state, save_state
from xrstory.story.state import SAVE_VERSION, LogEntry

# A scene written for these tests, so each refusal has exactly one way to happen.
RULES_SCENE = """
[scene]
id = "rules"
title = "Rules"
start_beat = "hall"

[[props]]
id = "chest"
shape = "box"
initial_state = "locked"
[props.states.locked]
[props.states.unlocked]

[[characters]]
id = "guard"
name = "Guard"
persona = "Keeps the keys."
triggers = ["unlock", "open_chest", "leave", "whistle"]

[[characters]]
id = "cook"
name = "Cook"
persona = "Makes soup."
triggers = ["stir"]

[[triggers]]
id = "unlock"
description = "The guard unlocks the chest."
fired_by = ["guard"]
requires = { flags_set = ["asked"] }
effects = { prop_states = { chest = "unlocked" } }

[[triggers]]
id = "ask"
description = "The player asks for the key."
fired_by = ["player"]
effects = { set_flags = ["asked"] }

[[triggers]]
id = "open_chest"
description = "The chest is opened."
fired_by = ["guard", "player"]
requires = { prop_states = { chest = "unlocked" }, flags_unset = ["alarm"] }
effects = { set_flags = ["opened"] }

[[triggers]]
id = "alarm"
description = "The player pulls the alarm; it can be pulled again and again."
fired_by = ["player"]
once = false
effects = { set_flags = ["alarm"], sound = "bell" }

[[triggers]]
id = "calm"
description = "The player silences the alarm."
fired_by = ["player"]
once = false
effects = { clear_flags = ["alarm"] }

[[triggers]]
id = "stir"
description = "The cook stirs the soup."
fired_by = ["cook"]
requires = { beats = ["kitchen"] }

[[triggers]]
id = "whistle"
description = "The guard whistles; only in the kitchen beat."
fired_by = ["guard"]
requires = { beats = ["kitchen"] }

[[triggers]]
id = "leave"
description = "The guard lets the player leave."
fired_by = ["guard"]
effects = { enter_beat = "kitchen" }

[[triggers]]
id = "finish"
description = "The player ends the story."
fired_by = ["player"]
effects = { end_story = "You go home." }

[[beats]]
id = "hall"
goal = "Get the chest open."
allowed_triggers = ["unlock", "ask", "open_chest", "alarm", "calm", "whistle", "leave"]

[[beats]]
id = "kitchen"
goal = "Eat."
allowed_triggers = ["stir", "finish", "alarm"]
"""


@pytest.fixture(scope="module")
def rules_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    (folder / "scene.toml").write_text(RULES_SCENE)
    return load_scene(folder)


def test_every_refusal_reason(rules_scene):
    story = Story(rules_scene)
    cases = [
        ("teleport", "guard", "unknown trigger 'teleport'"),
        ("unlock", "ghost", "unknown character 'ghost'"),
        ("unlock", "cook", "'cook' may not fire 'unlock'"),
        ("unlock", "player", "the player may not fire 'unlock' directly"),
        ("stir", "cook", "'stir' is not allowed in beat 'hall'"),
        ("whistle", "guard", "needs beat kitchen (now 'hall')"),
        ("unlock", "guard", "needs flag asked"),
        ("open_chest", "guard", "needs prop 'chest' unlocked (now locked)"),
    ]
    for trigger, by, reason in cases:
        result = story.apply(trigger, by=by)
        assert not result.fired and result.reason == reason, (trigger, by, result.reason)
        assert story.refusal(trigger, by) == reason
    assert story.apply("ask", by="player").fired
    assert story.apply("ask", by="player").reason == "'ask' has already fired"
    assert story.apply("unlock", by="guard").fired
    assert story.apply("alarm", by="player").fired
    assert story.apply("open_chest", by="player").reason == "needs flag alarm unset"
    assert story.apply("alarm", by="player").fired, "once = false fires again"
    assert story.apply("calm", by="player").fired
    assert story.apply("open_chest", by="player").fired
    assert story.state.flags == ["asked", "opened"]
    assert story.apply("leave", by="guard").beat_after == "kitchen"
    assert story.apply("finish", by="player").ended == "You go home."
    assert story.apply("stir", by="cook").reason == "the story has ended"
    assert story.allowed_triggers("player") == []
    # every attempt is in the log, refused ones with their reason
    refused = [e for e in story.state.log if not e.fired]
    assert len(refused) == len(cases) + 3
    assert {e.reason for e in refused} >= {r for _, _, r in cases}
    assert [e.trigger for e in story.state.log if e.fired] == story.state.fired


def test_allowed_triggers_follow_state(rules_scene):
    story = Story(rules_scene)
    assert story.allowed_triggers("player") == ["ask", "alarm", "calm"]
    assert story.allowed_triggers("guard") == ["leave"]
    story.apply("ask", by="player")
    assert story.allowed_triggers("guard") == ["unlock", "leave"]
    assert story.allowed_triggers("cook") == []


def _played(scene) -> Story:
    story = Story(scene)
    story.state.time = 12.5
    story.note_utterance("player", "Can I have the key?")
    story.apply("ask", by="player")
    story.note_utterance("guard", "Fine. Here.", interrupted=True)
    story.apply("unlock", by="guard")
    story.apply("stir", by="cook")  # refused, logged
    story.state.memories["guard"] = [{"text": "the player asked politely", "t": 12.5}]
    story.state.director["off_topic_turns"] = 2
    return story


def test_round_trip_through_a_save(rules_scene, tmp_path):
    story = _played(rules_scene)
    path = tmp_path / "slot.json"
    save_state(story.state, path)
    loaded = load_state(path)
    assert loaded == story.state
    assert loaded.version == SAVE_VERSION
    assert StoryState.from_json(story.state.to_json()) == story.state
    # the loaded story continues exactly like the original
    resumed = Story(rules_scene, loaded)
    a, b = story.apply("open_chest", by="guard"), resumed.apply("open_chest", by="guard")
    assert a.fired and b.fired and resumed.state == story.state
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file is left behind"


def test_save_for_another_scene_is_refused(rules_scene, tmp_path):
    state = Story(rules_scene).state.model_copy(update={"scene_id": "lighthouse"})
    with pytest.raises(ValueError, match="save is for scene 'lighthouse', not 'rules'"):
        Story(rules_scene, state)


def test_v1_save_is_migrated(rules_scene, tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"version": 1, "scene_id": "rules", "beat": "hall",
                                "flags": {"asked": True, "alarm": False},
                                "prop_states": {"chest": "locked"}, "fired": ["ask"]}))
    state = load_state(path)
    assert state.version == SAVE_VERSION
    assert state.flags == ["asked"] and state.mood == "default" and state.light_levels == {}
    assert Story(rules_scene, state).apply("unlock", by="guard").fired


@pytest.mark.parametrize("content, message", [
    (json.dumps({"version": SAVE_VERSION + 1, "scene_id": "rules", "beat": "hall"}),
     f"save format version {SAVE_VERSION + 1} is newer than this xrstory understands"),
    ('{"version": 2, "scene_id": "rules", "be', "not a valid save"),
    ("[1, 2]", "expected a JSON object, got list"),
    (json.dumps({"scene_id": "rules", "beat": "hall"}), "'version' is missing"),
    (json.dumps({"version": 2, "scene_id": "rules"}), "invalid save: beat: Field required"),
])
def test_bad_saves_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SaveError) as info:
        load_state(path)
    assert str(path) in str(info.value) and message in str(info.value)


def _write_forever(path: Path, report_fd: int) -> None:
    """The writer: resume from the save on disk, then save a growing state in a tight loop,
    reporting each counter once its save_state has returned. Runs in a forked child."""
    state = load_state(path) if path.exists() else StoryState(scene_id="rules", beat="hall")
    while True:
        n = int(state.time) + 1
        state.time = float(n)
        state.log.append(LogEntry(t=n, trigger=f"t{n}", by="guard", fired=n % 2 == 0, reason="x" * (n % 50)))
        state.director = {"n": n, "payload": "y" * (200 * (n % 40))}
        save_state(state, path)
        os.write(report_fd, f"{n}\n".encode())  # one small write: atomic on a pipe


def _check_save(path: Path) -> int:
    state = load_state(path)  # raises on a torn or invalid file
    n = int(state.time)
    assert len(state.log) == n and state.director["n"] == n and state.log[-1].trigger == f"t{n}"
    return n


def test_kill_mid_save_leaves_last_good_save(tmp_path):
    """Writers are forked children of this process (a fresh interpreter per writer would cost
    ~0.3 s each in imports); each is SIGKILLed at a random moment after its first save."""
    path = tmp_path / "save.json"
    rng = random.Random(20261128)
    interrupted_writes, last = 0, 0
    for _ in range(30):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            try:
                os.close(read_fd)
                _write_forever(path, write_fd)
            finally:
                os._exit(1)
        os.close(write_fd)
        with os.fdopen(read_fd) as reports:
            try:
                first = reports.readline()  # one complete save, so the kill lands in the loop
                time.sleep(rng.uniform(0.0, 0.03))
            finally:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            assert first.strip(), "writer died before its first save"
            reported = [int(x) for x in (first + reports.read()).split()]
        on_disk = _check_save(path)
        # the kill may land after the rename but before the report: then the file is one ahead
        assert on_disk in (reported[-1], reported[-1] + 1), (on_disk, reported[-1])
        assert on_disk > last
        last = on_disk
        interrupted_writes += bool(list(tmp_path.glob(".save.json.*.tmp")))
    print(f"{interrupted_writes} of 30 kills left a temporary file")
    assert interrupted_writes > 0, "no kill landed mid-write; the test did not exercise the window"
    # the next save clears the dead writers' temporary files
    save_state(load_state(path), path)
    assert list(tmp_path.iterdir()) == [path]
