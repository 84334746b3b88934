"""The remote engine: an OpenAI-compatible server (vLLM, llama-server, ``xrstory serve``) behind ``Engine``.

``CharacterMind`` on this engine builds the prompt locally, sends it with the reply's JSON Schema
(``schema.reply_schema``, the JSON Schema rendering of the grammar every local engine enforces)
as ``response_format``, streams the reply back, and commits it through ``fallback.validate_reply``
when the server's output does not parse (a server may ignore the schema). The connection
settings are ``remote.RemoteConfig`` (the ``RemoteMind`` client's; its validation applies);
``RemoteMind`` itself stays the whole-turn client sessions use with ``--remote``.

Server errors and timeouts become ``EngineError`` (the turn ends in the fallback line).
There is no tokenizer here: prompt budgets use a conservative character estimate.
See docs/ENGINES.md for pointing it at vLLM or llama-server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from xrstory.mind.engine import DecodeRequest, DecodeResult, Engine, EngineError, Stop
from xrstory.mind.remote import RemoteConfig
from xrstory.mind.schema import reply_schema


class RemoteEngine(Engine):
    name = "remote"

    def __init__(self, base_url: str, scene=None, config: RemoteConfig | None = None):
        from openai import OpenAI

        self.config = config or RemoteConfig(base_url=base_url)
        self.source = self.config.base_url
        self.notes = [f"OpenAI-compatible server at {self.config.base_url} (model {self.config.model})"]
        # max_retries=0: a turn is interactive; the fallback line beats a silent retry
        self._client = OpenAI(base_url=self.config.base_url, api_key=self.config.api_key,
                              timeout=self.config.timeout_s, max_retries=0)

    def count_tokens(self, text: str) -> int:
        return int(len(text) / 3.5) + 1  # conservative for English BPE (as prompt._approx_tokens)

    def stream(self, request: DecodeRequest, should_stop: Stop | None = None) -> Iterator[tuple[str, DecodeResult]]:
        from openai import APIError

        cfg = self.config
        schema = request.schema
        if schema is None and request.lark is not None:  # servers speak JSON Schema, not our Lark
            schema = reply_schema(list(request.allowed_triggers), cfg.max_triggers)
        extra = {}
        if schema is not None:
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "reply", "schema": schema, "strict": True}}
        res = DecodeResult()
        t0 = time.perf_counter()
        try:
            stream = self._client.chat.completions.create(
                model=cfg.model, messages=request.messages, stream=True, max_tokens=request.max_tokens,
                temperature=request.sampling.temperature, frequency_penalty=cfg.frequency_penalty,
                presence_penalty=cfg.presence_penalty, stream_options={"include_usage": True}, **extra)
            with stream:
                for chunk in stream:
                    if chunk.usage is not None:
                        res.prompt_tokens = chunk.usage.prompt_tokens or 0
                        res.tokens = chunk.usage.completion_tokens or res.tokens
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    res.finish_reason = choice.finish_reason or res.finish_reason
                    piece = choice.delta.content or ""
                    if not piece:
                        continue
                    res.text += piece
                    res.tokens += 1
                    if not res.first_token_ms:
                        res.first_token_ms = res.prefill_ms = (time.perf_counter() - t0) * 1000
                    res.total_ms = (time.perf_counter() - t0) * 1000
                    yield piece, res
                    if should_stop is not None and should_stop():
                        res.finish_reason = "interrupted"
                        break
        except APIError as exc:
            raise EngineError(f"remote server {cfg.base_url}: {type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - transport errors mid-stream, malformed event data
            raise EngineError(f"remote server {cfg.base_url} stream failed: {type(exc).__name__}: {exc}") from None
        res.total_ms = (time.perf_counter() - t0) * 1000
        res.complete = res.finish_reason == "stop"
        yield "", res

    def close(self) -> None:
        self._client.close()
