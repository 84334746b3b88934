"""The decoding engine behind ``xrstory serve``: chat messages + any JSON Schema -> streamed JSON.

An OpenAI-compatible server receives arbitrary ``response_format`` schemas (not only the
reply schema), so this engine compiles whatever schema a request carries with llguidance and
masks the local model's logits token by token (greedy, or sampled with a temperature). With
no schema it decodes freely, as a server without structured output would.

Interface (what ``server.py`` needs, so another engine can stand in):
``engine.generate_json(messages, schema | None, max_tokens, on_token, temperature=0.0) -> Generation``,
``on_token(text)`` called with each decoded piece as soon as it is complete UTF-8.

Not thread-safe: the server serialises requests with a lock (one model, one KV cache).
"""

from __future__ import annotations

import codecs
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import llguidance
import llguidance.hf
import torch
from llguidance.torch import (
    allocate_token_bitmask,
    apply_token_bitmask_inplace,
    fill_next_token_bitmask,
)

from xrstory.mind.loader import LanguageModel
from xrstory.mind.reply import JSON_ITEM_SEPARATOR, JSON_KEY_SEPARATOR

log = logging.getLogger("xrstory.mind.server_engine")

# Compact JSON (no free whitespace) keeps replies short: fewer tokens, same meaning.
# lenient: keywords llguidance does not implement (e.g. "uniqueItems") are ignored with a
# warning instead of failing the request, as vLLM and llama.cpp do; the client validates
# the reply anyway (xrstory's RemoteMind drops repeated triggers).
JSON_OVERRIDES = {"whitespace_flexible": False, "item_separator": JSON_ITEM_SEPARATOR,
                  "key_separator": JSON_KEY_SEPARATOR, "lenient": True}


class SchemaError(ValueError):
    """The request's JSON Schema cannot be compiled into a grammar (message says why)."""


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop" (grammar complete or end of sequence) or "length" (max_tokens hit)
    prompt_tokens: int
    completion_tokens: int
    prefill_ms: float
    total_ms: float


class LocalJsonEngine:
    def __init__(self, lm: LanguageModel):
        self.lm = lm
        self.vocab_size = int(lm.model.get_output_embeddings().weight.shape[0])  # logits width
        self.ll_tokenizer = llguidance.hf.from_tokenizer(lm.tokenizer, n_vocab=self.vocab_size)
        self._bitmask = allocate_token_bitmask(1, self.vocab_size)  # (1, ceil(V/32)) int32
        self._eos = set(lm.eos_token_ids)
        self._warned: set[str] = set()  # schema warnings already logged
        # transformers 5.x renamed past_key_values to cache (the old name warns on every call)
        params = inspect.signature(lm.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self.warm_up_ms = self._warm_up()

    def _warm_up(self) -> float:
        """Build llguidance's lexer now (lazy: ~0.7 s per token on first use otherwise) by walking
        a sample reply through a matcher, computing the mask at each step; no model calls."""
        t0 = time.perf_counter()
        schema = {"type": "object", "properties": {
            "triggers": {"type": "array", "items": {"type": "string", "enum": ["a_trigger"]}},
            "say": {"type": "string"}, "emotion": {"type": "string", "enum": ["neutral", "happy"]}}}
        sample = ('{"triggers": ["a_trigger"], "say": "Aye, friend. It\'s cold \\"tonight\\" \\u00e9! Yes? 3.5", '
                  '"emotion": "happy"}')
        m = self.matcher(schema)
        for tok in self.ll_tokenizer.tokenize_str(sample):
            fill_next_token_bitmask(m, self._bitmask, 0)
            if not m.consume_token(tok):
                break  # a tokenization the grammar path does not take; the lexer is warm anyway
        return (time.perf_counter() - t0) * 1000

    def matcher(self, schema: dict) -> llguidance.LLMatcher:
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), overrides=JSON_OVERRIDES)
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"response_format schema rejected: {exc}") from None
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
        if is_error:
            raise SchemaError(f"response_format schema rejected: {'; '.join(messages)}")
        for w in messages:
            if w not in self._warned:
                self._warned.add(w)
                log.warning("response_format schema: %s (ignored)", w)
        m = llguidance.LLMatcher(self.ll_tokenizer, grammar, log_level=0)
        if m.is_error():
            raise SchemaError(f"response_format schema rejected: {m.get_error()}")
        return m

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        ids = self.lm.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                    return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    @torch.inference_mode()
    def generate_json(self, messages: list[dict], schema: dict | None, max_tokens: int,
                      on_token: Callable[[str], None], temperature: float = 0.0,
                      frequency_penalty: float = 0.0, presence_penalty: float = 0.0) -> Generation:
        """Decode one reply; penalties as in the OpenAI API (logit -= count * frequency_penalty
        + presence_penalty for each token already generated): small models loop without them."""
        t0 = time.perf_counter()
        matcher = self.matcher(schema) if schema is not None else None
        model, device = self.lm.model, self.lm.device
        prompt = self.prompt_ids(messages)
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces: list[str] = []
        cache = None
        feed = prompt  # tokens to run through the model next
        generated = 0
        finish = "length"
        prefill_ms = 0.0
        counts = torch.zeros(self.vocab_size)  # (V,) times each token was generated
        while generated < max_tokens:
            out = model(input_ids=torch.tensor([feed], device=device), use_cache=True, logits_to_keep=1,
                        **{self._cache_kwarg: cache})
            cache = getattr(out, self._cache_kwarg)
            if not prefill_ms:
                prefill_ms = (time.perf_counter() - t0) * 1000
            logits = out.logits[0, -1].float().cpu()  # (V,)
            if frequency_penalty or presence_penalty:
                logits -= counts * frequency_penalty + (counts > 0).float() * presence_penalty
            if matcher is not None:
                fill_next_token_bitmask(matcher, self._bitmask, 0)
                apply_token_bitmask_inplace(logits, self._bitmask)
            if temperature > 0:
                token = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1))
            else:
                token = int(torch.argmax(logits))
            if token in self._eos:
                finish = "stop"
                break
            tokens = [token]
            if matcher is not None:
                if not matcher.consume_token(token):
                    raise RuntimeError(f"grammar rejected token {token} it allowed: {matcher.get_error()}")
                # forced continuation (e.g. '", "emotion": "'): no sampling needed
                ff = matcher.compute_ff_tokens()[: max(0, max_tokens - generated - 1)]
                if ff and matcher.consume_tokens(ff):
                    tokens += ff
            generated += len(tokens)
            counts[tokens] += 1
            text = utf8.decode(self.ll_tokenizer.decode_bytes(tokens))
            if text:
                pieces.append(text)
                on_token(text)
            if matcher is not None and matcher.is_stopped():
                finish = "stop"
                break
            feed = tokens
        tail = utf8.decode(b"", final=True)
        if tail:
            pieces.append(tail)
            on_token(tail)
        return Generation(text="".join(pieces), finish_reason=finish, prompt_tokens=len(prompt),
                          completion_tokens=generated, prefill_ms=prefill_ms,
                          total_ms=(time.perf_counter() - t0) * 1000)
