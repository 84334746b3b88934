"""A long first sentence is spoken from its first clause, on the real llama.cpp engine and model.

The engine is wrapped only to stamp when each text delta arrived (every delta passes through
unchanged): the first released chunk must come before the delta that ends the first sentence.
"""

from __future__ import annotations

import time

import pytest
from helpers import lighthouse_fixture

from xrstory.mind.reply import Sentence
from xrstory.mind.say_stream import SayStream
from xrstory.story import Story

pytest.importorskip("xllamacpp")
pytestmark = pytest.mark.slow

scene = lighthouse_fixture()
LINES = [("maren", "Tell me everything about the lamp, the oil and the storm tonight, please."),
         ("tobias", "Tobias, what happened to your boat, and where is the rest of your crew?"),
         ("maren", "Describe the cellar, the stairs and the old radio, in one long sentence."),
         ("tobias", "How did you end up on these rocks, with the storm, the cold and the dark?")]


@pytest.fixture(scope="module")
def engine():
    from xrstory.mind.engine import EngineSpec, load_engine

    with load_engine(EngineSpec(engine="llamacpp")) as eng:
        yield eng


def _sentence_or_closed(text: str) -> bool:
    whole = SayStream()  # whole sentences only
    return bool(whole.feed(text)) or whole.closed


def test_first_clause_is_released_before_the_first_full_stop(engine, scene):
    from xrstory.mind.mind import CharacterMind, MindConfig

    mind = CharacterMind(engine, scene, MindConfig(max_new_tokens=60))
    stamps: list[tuple[float, str]] = []
    inner = engine.stream

    def stamped(request, should_stop=None):
        for delta, res in inner(request, should_stop):
            stamps.append((time.monotonic(), res.text))
            yield delta, res

    engine.stream = stamped
    try:
        clause_turns = 0
        for character, line in LINES:
            stamps.clear()
            events = list(mind.respond(Story(scene), character, line))
            first = next(e for e in events if isinstance(e, Sentence))
            # when the generated text first held a complete first sentence (or say closed without one)
            end_t = next((t for t, text in stamps if _sentence_or_closed(text)), None)
            if first.text[-1] in ",;:\u2014\u2013-":
                clause_turns += 1
                assert len(first.text.split()) >= 4, first.text
                assert end_t is not None and first.t < end_t, (first.text, first.t, end_t)
                print(f"{character}: first chunk {first.text!r}, {(end_t - first.t) * 1000:.0f} ms before the first full stop")
            else:  # a short first sentence goes out whole, as before
                assert first.text[-1] in ".!?\u2026\"'", first.text
        assert clause_turns >= 1, "no reply opened with a long first sentence"
    finally:
        engine.stream = inner


def test_a_say_closed_by_the_character_bound_is_not_spoken_as_a_fragment(engine, scene):
    """llama.cpp bounds say in characters (6 per say token); the bound closes it wherever it falls.
    The unfinished tail is then left out of what is spoken once something was said already."""
    from xrstory.mind.mind import CharacterMind, MindConfig
    from xrstory.mind.reply import reply_from_json

    mind = CharacterMind(engine, scene, MindConfig(max_new_tokens=12))  # say: at most 72 characters
    cut = 0
    for character, line in LINES:
        out = mind.ask(Story(scene), character, line)
        raw = reply_from_json(out.timings.extra["raw"], character).say
        assert len(raw) <= 72
        spoken = " ".join(s.text for s in out.sentences)
        assert spoken == out.reply.say
        if out.timings.extra["cut_at_limit"]:
            cut += 1
            assert out.reply.fallback_reason == "say cut at the token limit"
            assert len(out.reply.say) < len(raw) and out.reply.say[-1] in ".!?\u2026\"',;:\u2014\u2013-", out.reply.say
    assert cut >= 1, "no reply reached the character bound"
