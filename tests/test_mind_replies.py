"""The real default model (SmolLM2-135M, GGUF) answering the demo characters in many story states.

Done-when checks of the mind: 50 varied utterances all parse into a Reply, no reply carries a
trigger that was not allowed at the start of its turn, sentences are delivered while the reply
is still being generated, and the cached persona prefix gives the same reply as a cold prompt.
Replies are kept short (max_new_tokens) so the module fits the CI budget on a 2-core CPU.
"""

import time

import pytest
from helpers import lighthouse_fixture, mind_fixture, story_at

from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings, reply_from_json
from xrstory.story.scene import EMOTIONS

pytestmark = pytest.mark.slow

scene = lighthouse_fixture()
mind = mind_fixture(max_new_tokens=20)

UTTERANCES = {  # state index (steps of helpers.LIGHTHOUSE_ARC applied) -> (character, what the player says)
    0: [("maren", "It's freezing in here. Can you get the stove going?"),
        ("maren", "Who are you?"), ("maren", "Why is the lamp dark?"), ("maren", "Light the lamp, quickly!"),
        ("maren", "Is there anything to drink?"), ("tobias", "Are you alright?"),
        ("tobias", "What happened to your ship?"), ("tobias", "Go fetch the oil from the cellar."),
        ("tobias", "Can you call your captain on the radio?"), ("maren", "What's your favourite colour?")],
    1: [("maren", "The stove is lovely. What now?"), ("maren", "Could you open the cellar door?"),
        ("maren", "Some tea would be nice."), ("tobias", "Feeling warmer?"),
        ("tobias", "Can you carry things now?"), ("maren", "Tell me about your husband."),
        ("tobias", "How many are still aboard?"), ("maren", "Where is the paraffin kept?")],
    2: [("tobias", "The cellar's open. Please bring up a can of paraffin."), ("tobias", "Fetch the oil!"),
        ("maren", "Tobias is going down, right?"), ("maren", "Pour us some tea, please."),
        ("tobias", "Is it dark down there?"), ("maren", "How long have you kept this light?"),
        ("tobias", "Who is your captain?"), ("maren", "Can you fire a flare?")],
    3: [("maren", "Here's the paraffin. Light the lamp!"), ("maren", "Fill the lamp and light it."),
        ("tobias", "Thank you for carrying that."), ("maren", "Will the ships see it?"),
        ("tobias", "Call the Marigold!"), ("maren", "Tea first?"), ("tobias", "Are your hands alright?"),
        ("maren", "What does the lens do?")],
    4: [("tobias", "The lamp burns! Radio the Marigold on channel sixteen."), ("tobias", "Call your ship now."),
        ("maren", "Guide the ship home!"), ("maren", "It looks beautiful."), ("tobias", "Do you think they see us?"),
        ("maren", "Should we fire a flare?"), ("tobias", "What's channel sixteen?"), ("maren", "Ring the bell?")],
    5: [("maren", "They answered! Guide them home past the rocks."), ("maren", "Fire a flare so they see the way."),
        ("tobias", "Your captain is safe?"), ("maren", "Talk them in, Maren."), ("tobias", "Tell Ada we're here."),
        ("maren", "Will they make it?"), ("tobias", "What will you do tomorrow?"), ("maren", "Thank you, Maren.")],
}


def run_turn(mind, story, character, text):
    """One turn; returns (events, decode steps polled after the first sentence was received)."""
    events, polls_after_first_sentence = [], [0]
    seen_sentence = [False]

    def should_stop() -> bool:  # polled by the decoder between steps
        if seen_sentence[0]:
            polls_after_first_sentence[0] += 1
        return False

    for event in mind.respond(story, character, text, should_stop=should_stop):
        if isinstance(event, Sentence):
            seen_sentence[0] = True
        events.append(event)
    return events, polls_after_first_sentence[0]


def test_fifty_utterances_parse_and_stay_within_allowed_triggers(mind, scene):
    cases = [(step, who, text) for step, lines in UTTERANCES.items() for who, text in lines]
    assert len(cases) == 50
    multi_sentence, fired_any, t0 = 0, 0, time.perf_counter()
    for step, who, text in cases:
        story = story_at(scene, step)
        allowed = story.allowed_triggers(who)
        events, polls_after = run_turn(mind, story, who, text)
        where = f"step {step}, {who}: {text!r}"
        assert isinstance(events[0], ReplyStarted), where
        assert isinstance(events[-2], Reply) and isinstance(events[-1], TurnTimings), where
        reply, timings = events[-2], events[-1]
        sentences = [e for e in events if isinstance(e, Sentence)]
        assert timings.extra["complete"], f"{where}: grammar did not accept {timings.extra['raw']!r}"
        parsed = reply_from_json(timings.extra["raw"], who)  # the raw output itself parses
        assert parsed.triggers == reply.triggers and not reply.fallback, where
        assert reply.say.strip() and reply.emotion in EMOTIONS, where
        assert set(reply.triggers) <= set(allowed), f"{where}: {reply.triggers} not within {allowed}"
        assert timings.extra["allowed_triggers"] == allowed
        # sentences arrive in order, all before the committed reply, and the decoder kept
        # working after the first one was handed over (emotion and triggers at least)
        assert sentences and [s.index for s in sentences] == list(range(len(sentences))), where
        assert events.index(sentences[-1]) < events.index(reply)
        assert polls_after >= 1, f"{where}: first sentence only came when decoding had finished"
        assert " ".join(s.text for s in sentences).split() == reply.say.split(), where
        multi_sentence += len(sentences) >= 2
        fired_any += bool(reply.triggers)
        for trig in reply.triggers:  # complete mediation: the story accepts what the grammar allowed
            assert story.apply(trig, by=who).fired or story.state.ended, (where, trig)
    print(f"\n50 turns in {time.perf_counter() - t0:.1f} s; {multi_sentence} with 2+ sentences; "
          f"{fired_any} fired triggers")
    assert multi_sentence >= 5  # streaming is exercised, not just single-sentence replies


def test_cached_prefix_gives_the_same_reply_as_a_cold_prompt(mind, scene):
    story = story_at(scene, 0)
    text = "It's freezing in here. Can you get the stove going?"
    mind.decoder.forget("maren")
    cold = mind.ask(story, "maren", text)
    warm = mind.ask(story, "maren", text)
    assert cold.timings.cached_prompt_tokens == 0
    assert warm.timings.cached_prompt_tokens > 200  # the whole system message
    assert warm.timings.prompt_tokens - warm.timings.cached_prompt_tokens < cold.timings.prompt_tokens / 2
    assert warm.reply == cold.reply  # greedy: same tokens whether the prefix KV was cached or not


def test_moderation_hook_sees_every_sentence_before_release(mind, scene):
    story = story_at(scene, 0)
    seen = []

    def moderate(text):
        seen.append(text)
        return None if len(seen) == 1 else text.upper()  # withhold the first, rewrite the rest

    out = mind.ask(story, "maren", "Tell me about the lamp and the stove.", moderate=moderate)
    assert seen and [s.text for s in out.sentences] == [t.upper() for t in seen[1:]]
    assert out.timings.extra["withheld_sentences"] == 1
    assert "moderation" in out.reply.fallback_reason


def test_barge_in_stops_the_turn_without_triggers(mind, scene):
    story = story_at(scene, 0)
    out = mind.ask(story, "maren", "Light the stove please!", should_stop=lambda: True)
    assert out.reply.fallback and out.reply.triggers == ()
    assert not out.timings.extra["complete"]
