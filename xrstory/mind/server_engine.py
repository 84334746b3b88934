"""The decoding behind ``xrstory serve``: chat messages + any JSON Schema -> streamed JSON, on an ``Engine``.

An OpenAI-compatible server receives arbitrary ``response_format`` schemas (not only the
reply schema); ``LocalJsonEngine`` hands each request to the same ``engine.Engine`` the
runtime decodes with (llama.cpp in process on a CPU, torch on CUDA), as one ``DecodeRequest``
carrying the schema: the server has no decode loop of its own. With no schema it decodes freely,
as a server without structured output would.

Interface (what ``server.py`` needs):
``generate_json(messages, schema | None, max_tokens, on_token, temperature=0.0, ...) -> Generation``,
``on_token(text)`` called with each decoded piece; ``matcher(schema)`` raises ``SchemaError``
for a schema that cannot be compiled (checked before the server answers 200).

Not thread-safe: the server serialises requests with a lock (one model).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import llguidance

from xrstory.mind.engine import DecodeRequest, Engine, Sampling
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
    """The server's side of an ``Engine`` (a loaded ``loader.LanguageModel`` runs on the torch engine)."""

    def __init__(self, engine: Engine | object):
        if not isinstance(engine, Engine):
            from xrstory.mind.engine_torch import TorchEngine

            engine = TorchEngine(engine)
        self.engine = engine
        self._warned: set[str] = set()  # schema warnings already logged
        t0 = time.perf_counter()
        engine.warm_up(("a_trigger",))
        self.warm_up_ms = (time.perf_counter() - t0) * 1000

    @property
    def context_tokens(self) -> int | None:
        """Tokens one request may hold (prompt + reply), when the engine says."""
        return getattr(self.engine, "context_tokens", None)

    def count_prompt_tokens(self, messages: list[dict]) -> int:
        """Tokens of ``messages`` as the chat template lays them out: their contents counted by the
        engine's tokenizer plus each message's role markers (4 tokens, as ChatML spends)."""
        return sum(self.engine.count_tokens(str(m.get("content") or "")) + 4 for m in messages) + 2

    def matcher(self, schema: dict) -> None:
        """Compile ``schema`` (no model needed); ``SchemaError`` names what is wrong."""
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

    def generate_json(self, messages: list[dict], schema: dict | None, max_tokens: int,
                      on_token: Callable[[str], None], temperature: float = 0.0,
                      frequency_penalty: float = 0.0, presence_penalty: float = 0.0) -> Generation:
        """Decode one reply through the engine; penalties as in the OpenAI API. No repetition
        rules of our own (a server's client chooses its penalties), no sentence limit."""
        t0 = time.perf_counter()
        if schema is not None:
            self.matcher(schema)
        sampling = Sampling(temperature=temperature, repetition_penalty=1.0, frequency_penalty=frequency_penalty,
                            presence_penalty=presence_penalty, no_repeat_ngram=0, max_sentences=1 << 20,
                            dry_multiplier=0.0, llamacpp_frequency_penalty=0.0, llamacpp_presence_penalty=0.0)
        request = DecodeRequest(key="serve", messages=messages, schema=schema, max_tokens=max_tokens,
                                say_tokens=max_tokens, sampling=sampling)
        result, finish = None, "length"
        stream = self.engine.stream(request)
        for delta, result in stream:
            if delta:
                on_token(delta)
            if result.complete:
                finish = "stop"
            elif result.tokens >= max_tokens:  # the torch loop's own cap is say-based: hold the request's
                stream.close()
                break
        assert result is not None  # every engine yields at least its final result
        return Generation(text=result.text, finish_reason=finish, prompt_tokens=result.prompt_tokens,
                          completion_tokens=result.tokens, prefill_ms=result.prefill_ms,
                          total_ms=(time.perf_counter() - t0) * 1000)
