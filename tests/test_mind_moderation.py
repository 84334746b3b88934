"""Moderation: word lists see through obfuscation, clean lines pass, refused lines become the
character's fallback line (logged) before any Sentence reaches TTS.

Uses the real packaged classifier (alt-profanity-check) and the demo scene's characters. The
turn streams are lists of the mind's real event types, standing in for a model's output so
each case is exact; the full path with a real model is in tests/test_mind_remote.py.
"""

import logging

import pytest

from xrstory.mind.moderation import ModerationConfig, ModerationError, Moderator, moderate_turn
from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings
from xrstory.story import load_scene


@pytest.fixture(scope="module")
def moderator():
    return Moderator()


@pytest.fixture(scope="module")
def words_only():
    return Moderator(ModerationConfig(classifier=False))


@pytest.fixture(scope="module")
def maren():
    return load_scene("scenes/lighthouse").character("maren")


OBFUSCATED = ["What the fuck is that?", "FUCK this storm", "Fück the lamp", "f*ck", "sh1t", "$hit",
              "a$$hole", "fuuuuck", "f u c k it", "f.u.c.k", "f-u-c-k off", "you bitches",
              "fucking driftwood", "Ｆｕｃｋ"]
CLEAN = ["Aye, friend. Driftwood's dry. There.", "Scunthorpe is a long way off.", "Check the cockpit.",
         "A class act, that sailor.", "The assistant keeper left in May.", "Shiitake soup, then?",
         "He is hit by the waves.", "Not now, friend. The lamp first.", "A chink of light in the fog.",
         "The rocks will kill them if the lamp stays dark."]


@pytest.mark.parametrize("line", OBFUSCATED)
def test_blocked_words_are_caught_through_obfuscation(line, words_only):
    verdict = words_only.check(line)
    assert not verdict.allowed, line
    assert verdict.category == "profanity" and verdict.matched


@pytest.mark.parametrize("line", CLEAN)
def test_clean_lines_pass_both_checks(line, moderator):
    verdict = moderator.check(line)
    assert verdict.allowed, (line, verdict)
    assert verdict.score is not None and verdict.score < moderator.config.classifier_threshold


def test_classifier_catches_what_no_list_names(moderator, words_only):
    line = "You stupid worthless idiot."
    assert words_only.check(line).allowed
    verdict = moderator.check(line)
    assert not verdict.allowed and verdict.category == "classifier" and verdict.score >= 0.98


def test_scene_and_user_configs_layer(tmp_path):
    (tmp_path / "moderation.toml").write_text(
        '[moderation]\nallowed = ["bastard"]\nclassifier = false\n[moderation.blocked]\nspoiler = ["the butler did it"]\n')
    scene_mod = Moderator.for_scene(tmp_path)
    assert scene_mod.check("Ye bastard sea!").allowed  # a salty scene allows it
    verdict = scene_mod.check("Everyone knows THE BUTLER   did it.")
    assert not verdict.allowed and verdict.category == "spoiler"
    # a child's profile adds words and turns the classifier back on, stricter
    child = ModerationConfig(blocked={"mild": ["damn*"]}, classifier=True, classifier_threshold=0.9)
    strict = Moderator.for_scene(tmp_path, user=child)
    assert strict.config.classifier and strict.config.classifier_threshold == 0.9
    assert strict.check("Damned storm.").category == "mild"
    assert strict.check("Ye bastard sea!").allowed  # the scene's allowance stays
    assert not strict.check("the butler did it").allowed  # the scene's list stays


def test_bad_config_names_file_and_field(tmp_path):
    path = tmp_path / "moderation.toml"
    path.write_text("classifier_threshold = 3.0\n")
    with pytest.raises(ModerationError, match=r"moderation.toml: field 'classifier_threshold'"):
        ModerationConfig.load(path)
    path.write_text("blocklist = ['x']\n")
    with pytest.raises(ModerationError, match="field 'blocklist'"):
        ModerationConfig.load(path)


def test_refused_sentence_never_released_fallback_used_and_logged(moderator, maren, caplog):
    events = [ReplyStarted("maren", 1.0), Sentence("maren", "Aye, friend.", 0, 1.1),
              Sentence("maren", "Fetch the f*cking oil.", 1, 1.2), Sentence("maren", "Now.", 2, 1.3),
              Reply("maren", "Aye, friend. Fetch the f*cking oil. Now.", "angry", ("light_stove",))]
    with caplog.at_level(logging.WARNING):
        out = list(moderate_turn(iter(events), moderator, maren))
    texts = [e.text for e in out if isinstance(e, Sentence)]
    assert texts == ["Aye, friend."]  # the clean sentence before it; the refused one and after: never
    assert isinstance(out[-1], TurnTimings) and out[-1].extra["refused_by_moderation"] == "profanity"
    final = out[-2]
    assert isinstance(final, Reply) and final.fallback and final.say in maren.fallback_lines
    assert final.triggers == () and final.fallback_reason.startswith("moderation: profanity")
    assert any("refused by moderation" in r.getMessage() and r.name == "xrstory.mind.moderation"
               for r in caplog.records)
    assert any("replaced by a fallback line" in r.getMessage() for r in caplog.records)


def test_clean_turn_passes_unchanged_and_tail_of_say_is_checked(moderator, maren):
    clean = [ReplyStarted("maren", 1.0), Sentence("maren", "Aye, friend.", 0, 1.1),
             Reply("maren", "Aye, friend.", "happy", ("light_stove",))]
    assert list(moderate_turn(iter(clean), moderator, maren)) == clean
    # a say whose last words never became a Sentence (no end punctuation) is still checked
    tail = [ReplyStarted("maren", 1.0), Reply("maren", "Aye, friend. Sh1t", "happy", ())]
    final = list(moderate_turn(iter(tail), moderator, maren))[-2]
    assert final.fallback and final.triggers == ()


def test_refusal_closes_the_generator_so_decoding_stops(moderator, maren):
    produced = []

    def turn():
        for i, text in enumerate(["Aye.", "Bloody shit.", "More.", "And more."]):
            produced.append(text)
            yield Sentence("maren", text, i, float(i))
        yield Reply("maren", "never reached", "neutral", ())

    out = list(moderate_turn(turn(), moderator, maren))
    assert produced == ["Aye.", "Bloody shit."]  # nothing generated after the refusal
    assert out[-2].fallback


def test_sentence_filter_for_the_local_mind(moderator, caplog):
    assert moderator.filter("Aye, friend.") == "Aye, friend."
    with caplog.at_level(logging.WARNING, logger="xrstory.mind.moderation"):
        assert moderator.filter("sh1t") is None
    assert "refused by moderation" in caplog.text


def test_disabled_moderation_allows_everything():
    assert Moderator(ModerationConfig(enabled=False)).check("fuck").allowed
