"""Bad model output never breaks a session: validate_reply turns it into an in-character line.

Runs on the demo scene's real characters (their fallback_lines come from scene.toml); no model
is needed, the inputs are the kinds of output a cut, confused or schema-ignoring model sends.
"""

import json
import logging

import pytest

from xrstory.mind.fallback import GENERIC_FALLBACK, fallback_line, validate_reply
from xrstory.story import Story, load_scene


@pytest.fixture(scope="module")
def scene():
    return load_scene("scenes/lighthouse")


@pytest.fixture(scope="module")
def maren(scene):
    return scene.character("maren")


@pytest.fixture(scope="module")
def allowed(scene):
    allowed = Story(scene).allowed_triggers("maren")
    assert allowed == ["light_stove"]  # storm_night: the stove is cold, nothing else yet
    return allowed


BAD_OUTPUTS = {
    "cut at the token limit": '{"say": "Aye, friend. The driftwood is',
    "cut after say": '{"say": "Aye.", "emotion": "determ',
    "empty say": '{"say": "", "emotion": "happy", "triggers": []}',
    "blank say": '{"say": "   ", "emotion": "happy", "triggers": ["light_stove"]}',
    "say missing": '{"emotion": "happy", "triggers": ["light_stove"]}',
    "say not a string": '{"say": 42, "emotion": "happy", "triggers": []}',
    "prose instead of JSON": "Sure! Here is my reply as Maren: the lamp is dark.",
    "JSON but not an object": '["light_stove"]',
    "empty output": "",
    "None": None,
}


@pytest.mark.parametrize("case", BAD_OUTPUTS)
def test_bad_output_becomes_an_in_character_fallback_and_is_logged(case, maren, allowed, caplog):
    raw = BAD_OUTPUTS[case]
    with caplog.at_level(logging.WARNING, logger="xrstory.mind.fallback"):
        reply = validate_reply(raw, allowed, maren)
    assert reply.fallback, case
    assert reply.say in maren.fallback_lines
    assert reply.triggers == ()  # nothing fires from output we could not read
    assert reply.character == "maren" and reply.emotion == "neutral"
    assert reply.fallback_reason
    assert any("replaced by a fallback line" in r.getMessage() for r in caplog.records)


def test_cut_output_is_reported_as_cut(maren, allowed):
    reply = validate_reply('{"say": "Aye, friend. The driftwood is', allowed, maren)
    assert "cut at the token limit" in reply.fallback_reason
    reply = validate_reply('{"say": "Aye', allowed, maren, finish_reason="length")
    assert "cut at the token limit" in reply.fallback_reason
    assert "not JSON" in validate_reply("hello there", allowed, maren).fallback_reason


def test_fallback_line_is_deterministic_and_uses_every_line(maren):
    raw = '{"say": "'
    assert validate_reply(raw, [], maren).say == validate_reply(raw, [], maren).say
    picked = {fallback_line(maren, f"output {i}") for i in range(40)}
    assert picked == set(maren.fallback_lines)


def test_unknown_trigger_from_a_server_is_dropped_and_logged(maren, allowed, caplog):
    raw = '{"say": "Aye, friend. There.", "emotion": "determined", "triggers": ["launch_rockets", "light_stove"]}'
    with caplog.at_level(logging.WARNING, logger="xrstory.mind.fallback"):
        reply = validate_reply(raw, allowed, maren)
    assert not reply.fallback
    assert reply.say == "Aye, friend. There." and reply.emotion == "determined"
    assert reply.triggers == ("light_stove",)
    assert any("unknown trigger 'launch_rockets'" in r.getMessage() for r in caplog.records)


def test_disallowed_trigger_is_dropped_and_logged(maren, allowed, caplog):
    # light_lamp is Maren's, but not allowed in storm_night (no oil yet)
    raw = '{"say": "The lamp, then.", "emotion": "determined", "triggers": ["light_lamp"]}'
    with caplog.at_level(logging.WARNING, logger="xrstory.mind.fallback"):
        reply = validate_reply(raw, allowed, maren)
    assert reply.triggers == () and reply.say == "The lamp, then." and not reply.fallback
    assert any("'light_lamp' (not allowed now" in r.getMessage() for r in caplog.records)


def test_another_characters_trigger_and_odd_values_are_dropped(maren, allowed, caplog):
    raw = ('{"say": "Hm.", "emotion": "furious", "triggers": ["fetch_oil", 7, "light_stove", "light_stove"],'
           ' "thoughts": "x"}')
    with caplog.at_level(logging.INFO, logger="xrstory.mind.fallback"):
        reply = validate_reply(raw, allowed, maren)
    assert reply.triggers == ("light_stove",)  # fetch_oil is Tobias's; 7 is not an id; no repeats
    assert reply.emotion == "neutral"  # "furious" is not an emotion of the scene format
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "unknown trigger 'fetch_oil'" in messages and "dropped trigger 7" in messages
    assert "emotion 'furious'" in messages and "repeated trigger" in messages


def test_triggers_not_a_list_fire_nothing(maren, allowed):
    reply = validate_reply('{"say": "Aye.", "emotion": "happy", "triggers": "light_stove"}', allowed, maren)
    assert reply.triggers == () and reply.say == "Aye." and not reply.fallback


def test_code_fenced_json_is_read(maren, allowed):
    raw = '```json\n{"say": "Aye, friend.", "emotion": "happy", "triggers": ["light_stove"]}\n```'
    reply = validate_reply(raw, allowed, maren)
    assert reply.say == "Aye, friend." and reply.triggers == ("light_stove",)


def test_overlong_say_is_cut_at_a_sentence_end(maren, allowed):
    say = "The storm is loud tonight. " * 30  # ~810 characters, over the 400 limit
    raw = json.dumps({"say": say, "emotion": "worried", "triggers": []})
    reply = validate_reply(raw, allowed, maren)
    assert 0 < len(reply.say) <= 400 and reply.say.endswith("tonight.") and not reply.fallback


def test_character_without_fallback_lines_gets_a_generic_line(scene, caplog):
    bare = scene.character("maren").model_copy(update={"fallback_lines": []})
    with caplog.at_level(logging.WARNING, logger="xrstory.mind.fallback"):
        reply = validate_reply("garbage", [], bare)
    assert reply.say == GENERIC_FALLBACK and reply.fallback
    assert any("has no fallback_lines" in r.getMessage() for r in caplog.records)
