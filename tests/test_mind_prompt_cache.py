"""The prompt only grows: a character's turn N starts with its turn N-1 up to the end of the
conversation, in real tokens, so the engines' prompt caches cover all of it but the new part.

Four turns of the lighthouse scene (Maren, Maren, Tobias, Maren), the story moving on between
them (props, beat, allowed triggers, memories and hints change), checked with the default
model's real tokenizer: tokenized whole, as llama.cpp does (its server applies the chat template
and tokenizes the text), and prefix + suffix apart, as the torch loop and training do. The slow
test runs the same turns on the llama.cpp engine and reads its own ``cache_n``.
"""

from __future__ import annotations

import pytest
from helpers import lighthouse_fixture

from xrstory.mind.prompt import HistoryLine, plan_prompt, prompt_token_ids, render_prompt
from xrstory.mind.schema import REPLY_OPENING
from xrstory.story import Story
from xrstory.story.scene import PLAYER

scene = lighthouse_fixture()

# (character, player line, the character's reply as it went into the conversation, trigger fired)
TURNS = [
    ("maren", "Maren, Tobias is freezing. Please light the iron stove.", "Aye. There, the stove's lit.",
     ("light_stove", "maren")),
    ("maren", "What happened to the lamp?", "The oil ran dry, friend. The spare is in the cellar.",
     ("open_cellar", PLAYER)),
    ("tobias", "Tobias, please fetch the oil from the cellar.", "I'll f-fetch it. Here it is.",
     ("fetch_oil", "tobias")),
    ("maren", "Maren, we have the oil now. Please light up the lamp.", "Then up the stairs we go.", None),
]
MEMORIES = [[], ["The player brought driftwood."], [], ["The player is kind.", "The player is cold."]]
HINTS = [[], [], ["Keep it short."], ["The player is looking at the lamp."]]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from xrstory.mind.defaults import default_llm_path

    gguf = default_llm_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def _turn_plans(scene):
    """(character, plan) per turn, the conversation and the story as the runtime keeps them."""
    story, history, plans = Story(scene), [], []
    for i, (character, line, reply, fired) in enumerate(TURNS):
        plans.append((character, plan_prompt(scene, story.state, character, line, list(history),
                                             MEMORIES[i], HINTS[i])))
        history += [HistoryLine(PLAYER, line), HistoryLine(character, reply)]
        if fired is not None:
            assert story.apply(*fired).fired
    return plans


def _history_end(tokenizer, plan) -> str:
    """The rendered prompt up to the end of its conversation block."""
    full = tokenizer.apply_chat_template(plan.messages, tokenize=False, add_generation_prompt=True)
    user = plan.messages[1]["content"]
    history_len = user.index("Now: ")  # the per-turn part starts there; the conversation is before it
    return full[: full.index(user) + history_len]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_each_turn_extends_the_characters_last_prompt_in_real_tokens(scene, tokenizer):
    plans = _turn_plans(scene)
    last: dict[str, object] = {}
    new_tokens = []
    for character, plan in plans:
        full = tokenizer.apply_chat_template(plan.messages, tokenize=False, add_generation_prompt=True)
        whole = _ids(tokenizer, full)
        pre, suf = prompt_token_ids(tokenizer, *render_prompt(tokenizer, plan.messages))
        assert pre + suf == whole  # the torch split tokenizes to the same sequence
        if character in last:
            before = last[character]
            kept = _ids(tokenizer, _history_end(tokenizer, before))
            assert whole[: len(kept)] == kept, f"{character}: the prompt does not start with the last one's history"
            prev = _ids(tokenizer, tokenizer.apply_chat_template(before.messages, tokenize=False,
                                                                 add_generation_prompt=True))
            assert prev[: len(kept)] == kept  # and the last prompt itself tokenized that way
            shared = next((i for i, (a, b) in enumerate(zip(prev, whole, strict=False)) if a != b), len(prev))
            assert shared >= len(kept)
            new_tokens.append(len(whole) - shared)
            assert len(whole) - shared < len(whole) // 2  # most of the prompt is cached
        last[character] = plan
    assert len(new_tokens) == 2  # Maren's turns 2 and 4 (Tobias speaks once)
    # Maren's system message now describes her triggers; the turn names the allowed ones only
    assert "- light_lamp: " in plans[0][1].messages[0]["content"]
    assert "Triggers allowed now: light_stove." in plans[0][1].messages[1]["content"]


@pytest.mark.slow
def test_llamacpp_reuses_the_grown_prompt_from_its_cache(scene, tokenizer):
    """The real engine reports ``cache_n``: from a character's second turn on it covers at least
    the last prompt's system message and conversation."""
    pytest.importorskip("xllamacpp")
    from xrstory.mind.engine import EngineSpec, load_engine
    from xrstory.mind.mind import CharacterMind, MindConfig

    with load_engine(EngineSpec(engine="llamacpp")) as engine:
        mind = CharacterMind(engine, scene, MindConfig(max_new_tokens=24))
        story, history, last = Story(scene), [], {}
        for i, (character, line, reply, fired) in enumerate(TURNS):
            plan = plan_prompt(scene, story.state, character, line, list(history), MEMORIES[i], HINTS[i])
            timings = mind.ask(story, character, line, history=list(history), memories=MEMORIES[i],
                               hints=HINTS[i]).timings
            whole = len(_ids(tokenizer, tokenizer.apply_chat_template(plan.messages, tokenize=False,
                                                                      add_generation_prompt=True)))
            whole += len(_ids(tokenizer, REPLY_OPENING))  # the engine writes the reply's opening into the prompt
            assert abs(timings.prompt_tokens - whole) <= 2, (timings.prompt_tokens, whole)  # BOS and the like
            assert timings.prefill_ms > 0
            if character in last:
                kept = len(_ids(tokenizer, _history_end(tokenizer, last[character])))
                assert timings.cached_prompt_tokens >= kept - 2, (character, timings.cached_prompt_tokens, kept)
                assert timings.prompt_tokens - timings.cached_prompt_tokens < timings.prompt_tokens // 2
            last[character] = plan
            history += [HistoryLine(PLAYER, line), HistoryLine(character, reply)]
            if fired is not None:
                story.apply(*fired)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["llamacpp", "torch"])
def test_a_primed_turn_prefills_only_its_own_part(scene, tokenizer, kind):
    """With ``MindConfig.prime`` (sessions) every character's system message is computed at load
    and, after each turn, the next prompt up to the player's line (conversation, beat, props,
    allowed triggers), so a turn prefills little more than the line, from the first turn on and on
    both engines."""
    if kind == "llamacpp":
        pytest.importorskip("xllamacpp")
    from xrstory.mind.engine import EngineSpec, load_engine
    from xrstory.mind.mind import CharacterMind, MindConfig

    with load_engine(EngineSpec(engine=kind)) as engine:
        mind = CharacterMind(engine, scene, MindConfig(max_new_tokens=24, prime=True))
        story, history = Story(scene), []
        for character, line, _, fired in TURNS[:3]:
            plan = plan_prompt(scene, story.state, character, line, list(history))
            out = mind.ask(story, character, line, history=list(history))
            kept = len(_ids(tokenizer, _history_end(tokenizer, plan)))
            t = out.timings
            assert t.cached_prompt_tokens >= kept - 2, (kind, character, t.cached_prompt_tokens, kept)
            user = plan.messages[1]["content"]
            per_turn = len(_ids(tokenizer, user[user.index("Now: "):]))  # beat, props, triggers, the line
            the_line = len(_ids(tokenizer, user[user.rindex("The player says:"):]))
            assert t.prompt_tokens - t.cached_prompt_tokens <= the_line + 12, (kind, character, t, per_turn)
            history += [HistoryLine(PLAYER, line), HistoryLine(character, out.reply.say)]  # as the runtime notes it
            if fired is not None:
                story.apply(*fired)


@pytest.mark.slow
def test_priming_carries_the_hints_and_follows_the_players_prop_change(scene, tokenizer):
    """The director's hints come before the player's line: with ``hints_for`` priming computes them
    too, and ``refresh_prime`` (the brain, when idle) primes again a character whose hints changed.
    And when the player changes a prop between turns (opens the cellar: Tobias's props and
    allowed triggers change), priming again (``BrainWorker`` queues a ``Reprime``) leaves the
    next turn only its line, where it prefilled ~50 tokens more before (spoken arc, turn 2)."""
    pytest.importorskip("xllamacpp")
    from xrstory.mind.engine import EngineSpec, load_engine
    from xrstory.mind.mind import CharacterMind, MindConfig

    hints = {"maren": ["The player prefers short answers: one or two sentences."],
             "tobias": ["The player likes doing things: offer hands-on actions.", "The player enjoys Maren's company."]}
    with load_engine(EngineSpec(engine="llamacpp")) as engine:
        mind = CharacterMind(engine, scene, MindConfig(max_new_tokens=24, prime=True), hints_for=lambda c: hints[c])
        story, history = Story(scene), []
        for character, line, fired in (("maren", TURNS[0][1], ("light_stove", "maren")),
                                       ("tobias", TURNS[2][1], None)):
            plan = plan_prompt(scene, story.state, character, line, list(history), hints=hints[character])
            assert "Director's notes:" in plan.messages[1]["content"]
            out = mind.ask(story, character, line, history=list(history), hints=hints[character])
            user = plan.messages[1]["content"]
            the_line = len(_ids(tokenizer, user[user.rindex("The player says:"):]))
            t = out.timings
            assert t.prompt_tokens - t.cached_prompt_tokens <= the_line + 12, (character, t)
            history += [HistoryLine(PLAYER, line), HistoryLine(character, out.reply.say)]
            if fired is not None:
                story.apply(*fired)
                assert story.apply("open_cellar", by=PLAYER).fired  # the player's press, between turns
                mind.prime(story, history)  # what the brain's Reprime job does
                assert mind.refresh_prime() == {}  # no hint changed: nothing is computed
                hints["tobias"] = ["The player prefers short answers: one or two sentences.", *hints["tobias"]]
                assert set(mind.refresh_prime()) == {"tobias"}  # the director learned something
