"""Prompt assembly (pure, no model): contents, the order that only grows, the token budget, the reply JSON."""

import json

import pytest
from helpers import lighthouse_fixture

from xrstory.mind.prompt import (
    PromptBudget,
    PromptTooLong,
    build_messages,
    history_start,
    plan_prompt,
    system_message,
)
from xrstory.mind.reply import Reply, reply_from_json, reply_to_json
from xrstory.story import Story
from xrstory.story.state import Utterance

scene = lighthouse_fixture()


def test_messages_hold_every_section(scene):
    story = Story(scene)
    msgs = build_messages(scene, story.state, "maren", "Can you light the stove?",
                          history=[Utterance(t=0, speaker="tobias", text="So c-cold...", interrupted=True),
                                   {"speaker": "player", "text": "Hello?"}],
                          memories=["The player brought driftwood earlier."], hints=["The player likes short answers."])
    assert [m["role"] for m in msgs] == ["system", "user"]
    system, user = msgs[0]["content"], msgs[1]["content"]
    for needle in ["Maren Holt", "Short, salty sentences", "Spare paraffin is kept in the cellar",
                   "Get the lamp burning again", "A squat iron stove", '"say"', "worried",
                   "- light_stove: Maren lights", "- light_lamp: "]:  # every trigger she can ever fire
        assert needle in system, needle
    assert "fetch_oil" not in system  # Tobias's trigger, never hers
    for needle in ["Tobias is freezing by the cold stove", "iron stove: cold", "Triggers allowed now: light_stove.",
                   "Tobias: So c-cold... [cut off by the player]", "Player: Hello?",
                   "The player brought driftwood earlier.", "The player likes short answers.",
                   "The player says: Can you light the stove?"]:
        assert needle in user, needle
    assert "light_lamp" not in user  # not allowed in this beat: not offered
    assert "oil_can" not in user and "can of paraffin" not in user  # invisible (in the cellar)
    # the conversation comes first, what changes each turn after it, the player's line last
    assert user.startswith("Conversation so far:\nTobias: So c-cold")
    assert user.index("Player: Hello?") < user.index("Now: ") < user.index("Triggers allowed now")
    assert user.endswith("The player says: Can you light the stove?")


def test_prefix_is_independent_of_state(scene):
    story = Story(scene)
    before = build_messages(scene, story.state, "maren", "hi")[0]
    story.apply("light_stove", by="maren")
    after = build_messages(scene, story.state, "maren", "something else", history=[("player", "x")])
    assert after[0] == before and after[0]["content"] == system_message(scene, "maren")
    assert "iron stove: lit" in after[1]["content"] and "open_cellar" in after[1]["content"]


def test_no_allowed_triggers_is_said(scene):
    story = Story(scene)
    plan = plan_prompt(scene, story.state, "tobias", "Fetch the oil!")
    assert plan.allowed_triggers == []
    assert 'none, so "triggers" must be []' in plan.messages[1]["content"]


def test_budget_drops_the_oldest_half_of_history_at_once_and_reports_it(scene):
    story = Story(scene)
    history = [("player", f"old line number {i} " + "blah " * 20) for i in range(12)]
    full = plan_prompt(scene, story.state, "maren", "hi", history, memories=["m1", "m2"])
    assert not full.dropped
    tight = plan_prompt(scene, story.state, "maren", "hi", history, memories=["m1", "m2"],
                        budget=PromptBudget(max_tokens=full.tokens - 60))
    user = tight.messages[1]["content"]
    # 60 tokens is about two lines, but the cut is half the turn limit (6 lines) in one go
    assert "old line number 5 " not in user and "old line number 6 " in user
    assert [h.text.split(" blah")[0] for h in tight.history] == [f"old line number {i}" for i in range(6, 12)]
    assert "m1" in user and "m2" in user  # memories outrank old conversation
    assert tight.dropped == ["6 older conversation lines (token budget)"]
    assert tight.tokens <= full.tokens - 60
    # two turns later the conversation has grown at its end; the cut stays where it was
    later = plan_prompt(scene, story.state, "maren", "hi", history + [("maren", "Aye."), ("player", "ok")],
                        memories=["m1", "m2"], budget=PromptBudget(max_tokens=full.tokens - 60 + 30))
    assert later.messages[1]["content"].startswith(user[: user.index("Now: ")])


def test_turn_limit_cuts_in_halves_on_the_conversations_own_grid():
    assert [history_start(n, 12) for n in (0, 12, 13, 18, 19, 24, 25)] == [0, 0, 6, 6, 12, 12, 18]
    assert history_start(5, 1) == 4  # a limit of one line still keeps the newest line


def test_turn_limits_are_reported(scene):
    story = Story(scene)
    plan = plan_prompt(scene, story.state, "maren", "x" * 700, [("player", str(i)) for i in range(14)],
                       memories=[f"m{i}" for i in range(9)], hints=["a", "b", "c", "d"])
    text = " ".join(plan.dropped)
    assert "6 older conversation lines (turn limit)" in text and len(plan.history) == 8 and "4 less relevant memories" in text
    assert "1 director hints" in text and "player text cut from 700 to 600" in text


def test_essentials_that_do_not_fit_raise_naming_them(scene):
    story = Story(scene)
    with pytest.raises(PromptTooLong, match=r"essential parts .*persona.*budget is 100"):
        plan_prompt(scene, story.state, "maren", "hi", [("player", "a")], budget=PromptBudget(max_tokens=100))


def test_bad_inputs_are_named(scene):
    story = Story(scene)
    with pytest.raises(KeyError, match="no character 'nobody'"):
        build_messages(scene, story.state, "nobody", "hi")
    with pytest.raises(ValueError, match="player_text is empty"):
        build_messages(scene, story.state, "maren", "   ")
    with pytest.raises(ValueError, match="history item 42"):
        build_messages(scene, story.state, "maren", "hi", history=[42])


def test_reply_json_is_canonical_and_round_trips():
    reply = Reply("maren", 'Aye, "friend". Caf\u00e9.', "determined", ("light_stove",))
    text = reply_to_json(reply)
    assert text == '{"triggers": ["light_stove"], "say": "Aye, \\"friend\\". Caf\u00e9.", "emotion": "determined"}'
    assert json.loads(text)["say"] == reply.say
    assert reply_from_json(text, "maren") == reply
    with pytest.raises(ValueError, match="not JSON"):
        reply_from_json('{"say": "cut', "maren")
    with pytest.raises(ValueError, match="'triggers' must be a list"):
        reply_from_json('{"say": "a", "emotion": "happy", "triggers": "x"}', "maren")
