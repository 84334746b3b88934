"""SayStream: sentences of `say` are released from partial JSON, whatever the delta boundaries."""

import json

import pytest

from xrstory.mind.say_stream import SayStream

CASES = [
    ("Aye, friend. Driftwood's dry! There?", ["Aye, friend.", "Driftwood's dry!", "There?"]),
    ('She said "Go!" Then left.', ['She said "Go!"', "Then left."]),
    ("It costs 3.5 shillings. Fine.", ["It costs 3.5 shillings.", "Fine."]),
    ("Wait... the lamp. Now", ["Wait...", "the lamp.", "Now"]),
    ("Line one.\nLine two, caf\u00e9 \U0001F30A.", ["Line one.", "Line two, caf\u00e9 \U0001F30A."]),
    ("No end mark at all", ["No end mark at all"]),
]


def _drive(payload: str, chunk: int) -> tuple[list[str], SayStream]:
    stream, out = SayStream(), []
    for i in range(0, len(payload), chunk):
        out += stream.feed(payload[i:i + chunk])
    if stream.closed:
        tail = stream.rest()
        if tail:
            out.append(tail)
    return out, stream


@pytest.mark.parametrize("say,expected", CASES)
@pytest.mark.parametrize("ascii_escapes", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_sentences_from_any_split(say, expected, ascii_escapes, chunk):
    payload = json.dumps({"say": say, "emotion": "happy", "triggers": ["x"]}, ensure_ascii=ascii_escapes,
                         separators=(", ", ": "))
    sentences, stream = _drive(payload, chunk)
    assert sentences == expected
    assert stream.say == say and stream.closed


def test_first_sentence_released_before_say_closes():
    stream = SayStream()
    assert stream.feed('{"say": "Aye, friend. Drift') == ["Aye, friend."]
    assert not stream.closed and stream.in_say
    assert stream.feed("wood's dry") == []
    assert stream.feed('.", "emotion"') == ["Driftwood's dry."]
    assert stream.closed


def test_sentence_end_detected_before_whitespace_arrives():
    stream = SayStream()
    stream.feed('{"say": "One. Two.')
    assert stream.at_sentence_end
    stream.feed(" Thr")
    assert not stream.at_sentence_end


CLAUSE_CASES = [  # first_clause_words=4: a long first sentence is released from its first clause
    ("Aye, there she is, the stove is burning now. Warm up.", ["Aye, there she is,", "the stove is burning now.",
                                                              "Warm up."]),
    ("Aye, friend. Driftwood's dry, I'll light it now, see.", ["Aye, friend.", "Driftwood's dry, I'll light it now, see."]),
    ("It costs 3,000 shillings, and the oil is dear.", ["It costs 3,000 shillings,", "and the oil is dear."]),
    ("The c-cold sailor - he needs the stove. Now.", ["The c-cold sailor - he needs the stove.", "Now."]),
    ("Fetch the oil from the cellar \u2014 quickly, before it strikes.", ["Fetch the oil from the cellar \u2014",
                                                                      "quickly, before it strikes."]),
    ("Keep my beam on the starboard bow; turn to port.", ["Keep my beam on the starboard bow;", "turn to port."]),
    ("Short one, friend", ["Short one, friend"]),
]


@pytest.mark.parametrize("say,expected", CLAUSE_CASES)
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_a_long_first_sentence_is_released_from_its_first_clause(say, expected, chunk):
    payload = json.dumps({"triggers": [], "say": say, "emotion": "happy"}, ensure_ascii=False)
    stream, out = SayStream(first_clause_words=4), []
    for i in range(0, len(payload), chunk):
        out += stream.feed(payload[i:i + chunk])
    tail = stream.rest()
    if tail:
        out.append(tail)
    assert out == expected
    assert " ".join(out) == say  # nothing lost or doubled


def test_whole_sentences_by_default():
    payload = json.dumps({"triggers": [], "say": "Aye, there she is, the stove is lit. Good.", "emotion": "happy"})
    assert SayStream().feed(payload) == ["Aye, there she is, the stove is lit.", "Good."]
