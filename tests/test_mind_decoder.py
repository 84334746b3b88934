"""Our Llama forward with a static KV cache matches transformers; the constrained decoder's
outputs are byte-for-byte the canonical reply JSON, and greedy decoding is deterministic."""

import json

import pytest
import torch

from xrstory.mind.decoder import ConstrainedDecoder, NgramBan, Sampling
from xrstory.mind.kv import HFBackend, LlamaRunner
from xrstory.mind.loader import ModelSpec, load_language_model
from xrstory.mind.reply import reply_from_json, reply_to_json
from xrstory.story.scene import EMOTIONS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lm():
    with load_language_model(ModelSpec()) as model:
        yield model


@pytest.fixture(scope="module")
def decoder(lm):
    dec = ConstrainedDecoder(lm)
    dec.grammar.warm_up(["light_stove", "share_tea"])
    return dec


@pytest.fixture(scope="module")
def prompt(lm):
    msgs = [{"role": "system", "content": "You are Maren, a lighthouse keeper. Answer as JSON with say, emotion, triggers."},
            {"role": "user", "content": "Triggers allowed now:\n- light_stove: light the stove.\nThe player says: Light the stove, please!"}]
    pre = lm.tokenizer.apply_chat_template(msgs[:1], tokenize=False)
    full = lm.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    enc = lm.tokenizer
    return enc(pre, add_special_tokens=False)["input_ids"], enc(full[len(pre):], add_special_tokens=False)["input_ids"]


def test_runner_matches_transformers_forward(lm, prompt):
    assert LlamaRunner.supports(lm.model)
    ids = prompt[0] + prompt[1]
    with torch.inference_mode():
        ref = lm.model(input_ids=torch.tensor([ids])).logits[0].float()  # (T, V)
        runner = LlamaRunner(lm.model, "cpu")
        assert runner.start("k", ids) == 0
        got = runner.feed(ids[:-3])  # prefill
        assert torch.allclose(got, ref[len(ids) - 4], atol=1e-3)
        for tok in ids[-3:]:  # one-token steps
            got = runner.feed([tok])
        assert torch.allclose(got, ref[-1], atol=1e-3)
        # the same start again: all but the last token restored, not recomputed
        assert runner.start("k", ids) == len(ids) - 1
        assert torch.allclose(runner.feed(ids[-1:]), ref[-1], atol=1e-3)
        # another key in between parks this one's cache and brings it back
        assert runner.start("other", prompt[0] + [0]) == 0
        runner.feed(prompt[0] + [0])
        cut = len(prompt[0]) + 5
        assert runner.start("k", ids[:cut] + [0, 1]) == cut  # the common start only
        assert runner.start("k", ids) == cut
        assert torch.allclose(runner.feed(ids[cut:]), ref[-1], atol=1e-3)
        hf = HFBackend(lm.model, "cpu")
        assert hf.start("k", ids) == 0
        hf.feed(ids)
        assert hf.start("k", ids[:cut] + [0]) == cut
        assert torch.allclose(hf.feed([0]), lm.model(input_ids=torch.tensor([ids[:cut] + [0]])).logits[0, -1].float(),
                              atol=1e-3)
        assert hf.start("k", ids) == cut
        assert torch.allclose(hf.feed(ids[cut:]), ref[-1], atol=1e-3)


def test_runner_refuses_to_overflow_its_cache(lm):
    runner = LlamaRunner(lm.model, "cpu", max_len=16)
    with pytest.raises(ValueError, match="more than the KV cache holds \\(16\\)"):
        runner.feed(list(range(20)))


def _decode(decoder, prompt, allowed, **kw):
    *_, (_, res) = decoder.stream("maren", prompt[0], prompt[1], allowed, **kw)
    return res


def test_output_is_canonical_json_and_deterministic(decoder, prompt):
    first = _decode(decoder, prompt, ["light_stove"], max_new_tokens=16)
    again = _decode(decoder, prompt, ["light_stove"], max_new_tokens=16)
    assert first.complete and again.text == first.text
    reply = reply_from_json(first.text, "maren")
    assert reply_to_json(reply) == first.text  # the decoder emits exactly the canonical form
    assert reply.emotion in EMOTIONS and set(reply.triggers) <= {"light_stove"}
    assert first.forced_tokens > 5  # '{"triggers": [', '", "say": "', ... went through unsampled
    assert again.cached_prompt_tokens == len(prompt[0]) + len(prompt[1]) - 1  # all but the last prompt token


def test_token_limit_closes_say_and_still_parses(decoder, prompt):
    res = _decode(decoder, prompt, [], max_new_tokens=12)
    assert res.complete and res.cut_at_limit
    assert json.loads(res.text)["triggers"] == []


def test_seeded_sampling_is_reproducible(decoder, prompt):
    s = Sampling(temperature=0.9, top_p=0.9, seed=7)
    a = _decode(decoder, prompt, ["light_stove", "share_tea"], max_new_tokens=20, sampling=s)
    b = _decode(decoder, prompt, ["light_stove", "share_tea"], max_new_tokens=20, sampling=s)
    assert a.complete and a.text == b.text
    assert set(json.loads(a.text)["triggers"]) <= {"light_stove", "share_tea"}


def test_hf_backend_decodes_the_same_reply(lm, decoder, prompt):
    hf_decoder = ConstrainedDecoder(lm, grammar=decoder.grammar, own_forward=False)
    assert isinstance(hf_decoder.backend, HFBackend)
    ours = _decode(decoder, prompt, ["light_stove"], max_new_tokens=14)
    theirs = _decode(hf_decoder, prompt, ["light_stove"], max_new_tokens=14)
    assert theirs.text == ours.text


def test_token_limit_with_triggers_still_completes(decoder, prompt):
    """The trigger list comes first; under a tight limit say is cut short and the reply still parses."""
    allowed = ["light_stove", "share_tea"]
    for limit in (10, 16):
        res = _decode(decoder, prompt, allowed, max_new_tokens=limit)
        assert res.complete, (limit, res.text)
        assert json.loads(res.text)["say"], res.text
        assert res.tokens - res.forced_tokens <= limit + 2 * decoder.close_reserve  # tokens the model chose


def test_ngram_ban_blocks_a_repeat_unless_nothing_else_is_allowed():
    ban = NgramBan(3, avoid=[[5, 6, 7]])
    allowed = torch.ones(10, dtype=torch.bool)
    for t in (5, 6):
        ban.add(t)
    ban.restrict(allowed)  # 5 6 -> 7 is in the avoided line
    assert not allowed[7] and allowed.sum() == 9
    for t in (8, 9, 8, 9):
        ban.add(t)
    allowed = torch.ones(10, dtype=torch.bool)
    ban.restrict(allowed)  # 8 9 was followed by 8 in this reply
    assert not allowed[8]
    only = torch.zeros(10, dtype=torch.bool)
    only[8] = True
    ban.restrict(only)  # banning the grammar's only choice would stall the reply: kept
    assert only[8] and only.sum() == 1


def test_say_does_not_copy_the_characters_previous_line(lm, decoder, prompt):
    free = _decode(decoder, prompt, ["light_stove"], max_new_tokens=30)
    said = json.loads(free.text)["say"]
    line = lm.tokenizer(said, add_special_tokens=False)["input_ids"]
    assert len(line) >= 4, said
    again = _decode(decoder, prompt, ["light_stove"], max_new_tokens=30, avoid=[line])
    assert again.complete
    assert said not in json.loads(again.text)["say"], (said, again.text)
