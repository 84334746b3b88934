"""The playthrough script format: every step parses, and malformed files name their line."""

import pytest

from xrstory.playthrough.expect import check_expectation
from xrstory.playthrough.results import TurnRecord
from xrstory.playthrough.script import PlaythroughSyntaxError, parse_playthrough
from xrstory.story import Story, load_scene


def test_demo_playthroughs_parse():
    from pathlib import Path

    files = sorted(Path("scenes/lighthouse/playthroughs").glob("*.play"))
    assert len(files) >= 3
    for f in files:
        pt = parse_playthrough(f)
        assert pt.scene_dir.name == "lighthouse"
        assert any(s.kind == "expect" for s in pt.steps), f


def test_every_step_kind(tmp_path):
    script = tmp_path / "all.play"
    script.write_text(
        "# title line\nseed 3\nstart save.json\nlook maren\nlook 0 1.6 -3\nsay to maren: Hi there.\n"
        "type Hello\naudio clip.wav to tobias\ninterrupt after 1.5: Wait!\npress lamp\nwait 2.5\n"
        "expect reply from maren matching /light|lamp/i\nexpect not fired light_lamp\nexpect refused open_cellar\n"
        "expect beat storm_night\nexpect not flag has_oil\nexpect prop lamp off\nexpect ended\n"
        "expect interrupted maren\nexpect no moderation\n")
    pt = parse_playthrough(script, scene_dir="scenes/lighthouse")
    kinds = [s.kind for s in pt.steps]
    assert kinds[:10] == ["seed", "start", "look", "look", "say", "type", "audio", "interrupt", "press", "wait"]
    assert pt.title == "title line"
    say = pt.steps[4]
    assert say.args == {"text": "Hi there.", "to": "maren"} and say.line == 6
    assert pt.steps[3].args["point"] == (0.0, 1.6, -3.0)
    assert pt.steps[7].args["after_s"] == 1.5
    reply = pt.steps[10].args
    assert reply["character"] == "maren" and reply["pattern"].search("LIGHT it")
    assert pt.steps[11].args == {"what": "fired", "negate": True, "id": "light_lamp"}


@pytest.mark.parametrize("line,needle", [
    ("shout at maren: HELLO", "unknown step 'shout'"),
    ("wait soon", "wait takes seconds"),
    ("expect fired", "exactly one id"),
    ("expect prop lamp", "expect prop PROP STATE"),
    ("expect reply matching /(unclosed/", "bad regular expression"),
    ("expect mood storm", "unknown expectation 'mood'"),
    ("seed -1", "non-negative integer"),
    ("look 1 2", "look takes a target id or X Y Z"),
    ("press", "press takes one prop id"),
])
def test_malformed_lines_name_the_line(tmp_path, line, needle):
    script = tmp_path / "bad.play"
    script.write_text(f"# bad\nsay hello\n\n{line}\n")
    with pytest.raises(PlaythroughSyntaxError) as info:
        parse_playthrough(script)
    assert info.value.line == 4
    assert f"{script}:4:" in str(info.value)
    assert needle in str(info.value)


def test_script_without_input_is_rejected(tmp_path):
    script = tmp_path / "empty.play"
    script.write_text("expect beat storm_night\n")
    with pytest.raises(PlaythroughSyntaxError, match="at least one say"):
        parse_playthrough(script)


def test_expectations_check_the_story_and_last_turn(tmp_path):
    story = Story(load_scene("scenes/lighthouse"))
    script = tmp_path / "e.play"
    script.write_text("type hi\nexpect fired light_stove\nexpect not fired light_stove\nexpect beat lamp_dark\n"
                      "expect reply from tobias\nexpect prop stove lit\n")
    steps = parse_playthrough(script, scene_dir="scenes/lighthouse").steps
    turn = TurnRecord(turn=1, step_line=1, player_text="hi", character="maren", say="Aye, friend.")
    story.apply("light_stove", by="maren")
    turn.fired.append("light_stove")
    assert check_expectation(steps[1], story, turn) is None
    failure = check_expectation(steps[2], story, turn)
    assert failure is not None and failure.step_line == 3 and "fired ['light_stove']" in failure.actual
    assert check_expectation(steps[3], story, turn) is None  # the stove moved the story on
    wrong = check_expectation(steps[4], story, turn)
    assert wrong is not None and "maren replied" in wrong.actual
    assert check_expectation(steps[5], story, turn) is None
