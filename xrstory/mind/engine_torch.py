"""The torch engine: our constrained decode loop (``decoder.ConstrainedDecoder``) on a transformers model.

The default with CUDA and what training and ``xrstory eval`` use (the fine-tuned weights are
torch weights). The prompt is rendered with the tokenizer's chat template into a cacheable
prefix (the system message) and a per-turn suffix, exactly as ``xrstory.train.dataset`` renders
training examples; the prefix KV cache is kept per key (character).

Try it:  .venv/bin/python -m xrstory.cli ask scenes/lighthouse maren "Light the stove?" --engine torch
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from xrstory.mind.engine import (
    ContextOverflow,
    DecodeRequest,
    DecodeResult,
    Engine,
    EngineSpec,
    Stop,
)
from xrstory.mind.loader import LanguageModel, ModelSpec, load_language_model
from xrstory.mind.prompt import prompt_token_ids, render_prompt

FREE_TEXT = "%llguidance {}\nstart: /(.|\\n)*/\n"  # no grammar: any text until end of sequence


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, lm: LanguageModel, owns: bool = False):
        # torch is imported here, not at module import
        from xrstory.mind.decoder import ConstrainedDecoder

        self.lm = lm
        self._owns = owns  # close the model with the engine (True when ``load`` loaded it)
        self.decoder = ConstrainedDecoder(lm)
        self.source, self.notes, self.load_ms = lm.source, list(lm.notes), lm.load_ms
        self.context_tokens = int(getattr(self.decoder.backend, "max_len", 0) or 1 << 30)
        self._tokenizer = lm.tokenizer

    @classmethod
    def load(cls, spec: EngineSpec) -> TorchEngine:
        lm = load_language_model(ModelSpec(source=spec.model, adapter=spec.adapter, threads=spec.threads,
                                           device=spec.device, chat_template=spec.chat_template))  # type: ignore[arg-type]
        return cls(lm, owns=True)

    @property
    def special_tokens(self) -> tuple[str, ...]:
        from xrstory.mind.untrusted import special_token_strings

        return tuple(special_token_strings(self._tokenizer))  # special and added tokens

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def warm_up(self, allowed_triggers: tuple[str, ...]) -> None:
        self.decoder.grammar.warm_up(tuple(allowed_triggers) or ("a_trigger",))

    def forget(self, key: str | None = None) -> None:
        self.decoder.forget(key)

    def prefill(self, key: str, messages: list[dict]) -> DecodeResult:
        """Feed the prompt into ``key``'s KV cache (``kv.py`` keeps the longest common start)."""
        import torch

        prefix, suffix = render_prompt(self._tokenizer, messages)
        ids = [i for part in prompt_token_ids(self._tokenizer, prefix, suffix) for i in part]
        t0 = time.perf_counter()
        backend = self.decoder.backend
        with torch.inference_mode():
            cached = backend.start(key, ids)
            backend.feed(ids[cached:])
        return DecodeResult(prompt_tokens=len(ids), cached_prompt_tokens=cached,
                            prefill_ms=(time.perf_counter() - t0) * 1000)

    def stream(self, request: DecodeRequest, should_stop: Stop | None = None) -> Iterator[tuple[str, DecodeResult]]:
        prefix, suffix = render_prompt(self._tokenizer, request.messages)
        prefix_ids, suffix_ids = prompt_token_ids(self._tokenizer, prefix, suffix)
        need = len(prefix_ids) + len(suffix_ids) + request.max_tokens
        if need > self.context_tokens:
            raise ContextOverflow(f"prompt of {len(prefix_ids) + len(suffix_ids)} tokens plus {request.max_tokens} "
                                  f"for the reply exceeds the torch engine's context of {self.context_tokens} "
                                  f"tokens: lower PromptBudget.max_tokens or max_new_tokens")
        grammar = self.decoder.grammar
        if request.lark is None and request.schema is None:
            matcher = grammar.compile(lark=FREE_TEXT)
        else:
            matcher = grammar.compile(lark=request.lark, schema=request.schema)
        avoid = [self._tokenizer(t, add_special_tokens=False)["input_ids"] for t in request.avoid]
        # the say budget: the decoder steers say to close after ``say_tokens``; its overall cap is
        # say_tokens + the trigger list + a reserve, so ``max_tokens`` bounds it only from outside
        try:
            yield from self.decoder.stream(request.key, prefix_ids, suffix_ids, request.allowed_triggers,
                                           min(request.say_tokens, request.max_tokens), request.sampling,
                                           should_stop, avoid=avoid, matcher=matcher)
        except ValueError as exc:
            if "KV cache" in str(exc):
                raise ContextOverflow(str(exc)) from None
            raise

    def close(self) -> None:
        if self._owns:
            self.lm.close()
