"""The reply grammar on the torch path: llguidance matchers and token masks.

The grammar text comes from ``schema.reply_lark`` (the same ``%llguidance`` grammar the
llama.cpp engine enforces, so the engines cannot drift); ``matcher_for`` also compiles any JSON
Schema or Lark grammar a ``DecodeRequest`` carries (``xrstory serve`` takes arbitrary schemas).

Why llguidance: it is a maintained wheel (Rust core) whose masks cost ~0.1-0.6 ms per token on
this CPU with a 49k vocabulary, compiles a schema in a few ms, and gives forced ("fast-forward")
tokens the decoder can feed without sampling. xgrammar and outlines-core are not installed here
(xgrammar's wheel pulls a CUDA-oriented torch pin); ``bench.py`` measures the overhead that
matters, ours, per token.

The grammar fixes the serialisation (no free whitespace, ", " and ": " separators, keys in the
order triggers, say, emotion), so the output is byte-for-byte ``reply_to_json`` of the reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import llguidance
import llguidance.hf
import numpy as np
import torch
from llguidance.torch import allocate_token_bitmask, fill_next_token_bitmask

from xrstory.mind.reply import JSON_ITEM_SEPARATOR, JSON_KEY_SEPARATOR
from xrstory.mind.schema import reply_lark

JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": JSON_ITEM_SEPARATOR,
                "key_separator": JSON_KEY_SEPARATOR}


class GrammarError(RuntimeError):
    """The grammar could not be built, or the matcher rejected a token it had allowed."""


class ReplyGrammar:
    """Owns the llguidance tokenizer (built once, ~1 s) and the mask buffer of one decoder."""

    def __init__(self, hf_tokenizer, vocab_size: int):
        self.vocab_size = vocab_size  # logits width of the model (may exceed the tokenizer's size)
        self.ll_tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size)
        self._bitmask = allocate_token_bitmask(1, vocab_size)  # (1, ceil(V/32)) int32
        self.warm_up_ms = 0.0

    def matcher(self, allowed_triggers: Sequence[str]) -> llguidance.LLMatcher:
        """The reply matcher of one turn: duplicate-free trigger lists only (see ``schema.reply_lark``)."""
        return self.compile(lark=reply_lark(list(allowed_triggers)))

    def compile(self, lark: str | None = None, schema: dict | None = None) -> llguidance.LLMatcher:
        """A matcher for a Lark grammar or a JSON Schema (compact serialisation, lenient keywords)."""
        try:
            if lark is not None:
                grammar = llguidance.LLMatcher.grammar_from_lark(lark)
            else:
                grammar = llguidance.LLMatcher.grammar_from_json_schema(
                    json.dumps(schema), overrides={**JSON_OPTIONS, "lenient": True})
        except (ValueError, TypeError) as exc:
            raise GrammarError(f"grammar rejected: {exc}") from None
        matcher = llguidance.LLMatcher(self.ll_tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise GrammarError(f"grammar rejected: {matcher.get_error()}")
        return matcher

    def allowed_tokens(self, matcher: llguidance.LLMatcher) -> torch.Tensor:
        """(V,) bool: the tokens the grammar allows next."""
        fill_next_token_bitmask(matcher, self._bitmask, 0)
        bits = np.unpackbits(self._bitmask.numpy().view(np.uint8), bitorder="little")  # (32*ceil(V/32),)
        return torch.from_numpy(bits[: self.vocab_size].astype(bool))

    def consume(self, matcher: llguidance.LLMatcher, token_ids: Sequence[int]) -> None:
        if not matcher.consume_tokens(list(token_ids)):
            raise GrammarError(f"grammar rejected tokens {list(token_ids)}: {matcher.get_error()}")

    def decode_bytes(self, token_ids: Sequence[int]) -> bytes:
        return self.ll_tokenizer.decode_bytes(list(token_ids))

    def warm_up(self, allowed_triggers: Sequence[str] = ("a_trigger",)) -> float:
        """Build the lexer now (lazy in llguidance: ~0.7 s per token on first use otherwise).

        Walks a full sample reply through a matcher, computing the mask at every step, so every
        lexer state a reply passes through exists before the first turn. Returns milliseconds.
        """
        t0 = time.perf_counter()
        sample = (f'{{"triggers": ["{allowed_triggers[0]}"], '
                  '"say": "Aye, friend. It\'s cold \\"tonight\\" \\u00e9! Yes?", "emotion": "determined"}')
        for triggers in (list(allowed_triggers), []):
            m = self.matcher(triggers)
            text = sample if triggers else sample.replace(f'"{allowed_triggers[0]}"', "")
            for tok in self.ll_tokenizer.tokenize_str(text):
                self.allowed_tokens(m)
                if not m.consume_token(tok):
                    break  # tokenization may differ from a sampled path; the lexer is warm anyway
        self.warm_up_ms = (time.perf_counter() - t0) * 1000
        return self.warm_up_ms
