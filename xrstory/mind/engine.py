"""One interface for the engines that decode a character's reply, and the choice between them.

``CharacterMind`` (and ``xrstory serve``) talk to an ``Engine``: chat messages + a grammar in,
a stream of ``(text delta, running DecodeResult)`` out, stoppable between any two tokens.
Three engines sit behind it:

- ``llamacpp`` (``engine_llamacpp.LlamaCppEngine``): llama.cpp in process (``xllamacpp``) on the
  GGUF file itself; the default on a CPU (5x our torch loop on the same model, measured in
  ``xrstory bench``). Its prompt cache lives in one slot per character.
- ``torch`` (``engine_torch.TorchEngine``): our own constrained decode loop on a transformers
  model (``decoder.ConstrainedDecoder``); the default with CUDA, and what training uses.
- ``remote`` (``engine_remote.RemoteEngine``): an OpenAI-compatible server (vLLM, llama-server,
  ``xrstory serve``) through the ``RemoteMind`` client.

The grammar of a reply comes from one place (``schema.reply_lark``), so every engine enforces
the same rules; ``choose_engine`` says which engine ``auto`` means here and why.
Nothing here imports torch or xllamacpp: ``xrstory info`` and ``--help`` stay fast.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ENGINES = ("auto", "llamacpp", "torch", "remote")


class EngineError(RuntimeError):
    """An engine could not load or decode; the message names the file, the limit or the server."""


class ContextOverflow(EngineError):
    """The prompt does not fit the engine's context (the message names both sizes)."""


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0: greedy (deterministic, the default)
    top_p: float = 1.0
    seed: int = 0
    # small models loop ("The lamp is burning. The lamp is burning. ..."): penalise tokens
    # already generated in this reply (CTRL-style: positive logits divided, negative multiplied).
    # Kept mild: 1.3 pushed the model into misspellings ("Aye, aaye") to dodge its own words.
    repetition_penalty: float = 1.1
    # subtracted from a word's logit per earlier use in this reply's say (OpenAI-style frequency
    # penalty): "please, please, please" costs more each time, where the ratio above does not grow
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0  # llama.cpp and servers (OpenAI-style); the torch loop has none
    no_repeat_ngram: int = 4  # torch: tokens; 0 turns the n-gram ban off
    max_sentences: int = 3  # torch: after this many sentences of say, steer it to close
    # llama.cpp has no per-token Python hook: its own samplers stand in for the n-gram ban and the
    # echo avoidance. DRY penalises continuing any sequence already in the context (the recent
    # lines of the conversation included) once it is longer than ``dry_allowed_length`` tokens,
    # growing by ``dry_base`` per extra token; JSON punctuation breaks sequences, so the reply's
    # structure is never penalised. llama.cpp's repeat penalty cannot spare punctuation (the
    # torch loop's applies to word tokens only): on every token of the last ``repeat_last_n`` it
    # made a second "." costlier than closing say, and replies shrank to one sentence (3 of 50
    # replies had two or more at 1.1, torch 5+), so it is off there unless set here.
    llamacpp_repeat_penalty: float = 1.0
    # OpenAI-style penalties over the last ``repeat_last_n`` tokens, added to the ones above on
    # llama.cpp. Held-out turns (37, base model), distinct-2 of say, old prompt layout: 0.55 with
    # DRY 0.8/3 alone, 0.62 with DRY 1.5/2, 0.78 with DRY 1.5/2 and these at 0.2 (torch loop:
    # 0.78). With the prompt that only grows (2026-12-01 13:11-13:17, load 7-9): DRY 0.8/3 alone
    # 0.691 (9 replies repeating a bigram of their own), DRY 1.5/2 + 0.15 0.826 (6), + 0.2 0.848
    # (5); trigger decisions the same in all three (15/37 exact). 0.15: the penalties also hit
    # punctuation, and replies of two or more sentences went 11 -> 6 (0.15) -> 5 (0.2) of 37.
    llamacpp_frequency_penalty: float = 0.15
    llamacpp_presence_penalty: float = 0.15
    repeat_last_n: int = 64
    dry_multiplier: float = 1.5
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_last_n: int = 512


@dataclass
class DecodeResult:
    text: str = ""  # the generated text (the reply's JSON)
    tokens: int = 0  # generated tokens (sampled + forced)
    forced_tokens: int = 0  # tokens the grammar forced, fed without sampling
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # prompt tokens whose KV came from the cache
    prefill_ms: float = 0.0  # time to prefill the uncached prompt tokens
    first_token_ms: float = 0.0
    total_ms: float = 0.0
    mask_ms: float = 0.0  # torch: total grammar time: computing and applying masks, consuming tokens
    forward_ms: float = 0.0  # torch: total time in the model's forward passes after prefill
    complete: bool = False  # the grammar accepted the output (it parses)
    cut_at_limit: bool = False  # say was steered to close early by the token limit
    finish_reason: str = ""  # "stop", "length", "interrupted" (should_stop), "error"
    steps: list[float] = field(default_factory=list)  # torch: ms per decode step


@dataclass(frozen=True)
class DecodeRequest:
    """One generation. ``lark`` (a ``%llguidance`` grammar) or ``schema`` (JSON Schema) constrain
    it; neither: free text. ``key`` names whose prompt cache (a character id) it uses."""

    key: str
    messages: list[dict]
    lark: str | None = None
    schema: dict | None = None
    allowed_triggers: tuple[str, ...] = ()
    max_tokens: int = 160  # all generated tokens, hard cap
    say_tokens: int = 120  # tokens of say before it is closed (torch steers; llama.cpp bounds chars)
    sampling: Sampling = Sampling()
    avoid: tuple[str, ...] = ()  # recent lines of the characters, not to be echoed (torch n-gram ban)


Stop = Callable[[], bool]


class Engine(ABC):
    """A decoding engine (see the module docstring). A context manager: ``close`` frees the model."""

    name: str = ""
    source: str = ""  # what was loaded, for reports
    notes: list[str]  # fallbacks, caches, adapters: human-readable
    load_ms: float = 0.0
    context_tokens: int = 2048  # prompt + reply tokens one key (character) can hold

    @abstractmethod
    def stream(self, request: DecodeRequest, should_stop: Stop | None = None) -> Iterator[tuple[str, DecodeResult]]:
        """Yield (text delta, running result); the last result is final. ``should_stop()`` is
        polled before each token: True ends generation with ``finish_reason`` "interrupted".
        Raises ``ContextOverflow`` / ``EngineError``, never a bare library error."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as the model's tokenizer splits it (no special tokens added)."""

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The control tokens of the model's tokenizer (``<|im_start|>``...): text from outside
        that spells one is broken apart before it reaches the prompt."""
        return ()

    def prefill(self, key: str, messages: list[dict]) -> DecodeResult | None:
        """Compute ``key``'s prompt cache for ``messages`` ahead of its next turn, whose prompt
        starts with them (``CharacterMind.prime``); None where the engine keeps no cache."""
        return None

    def warm_up(self, allowed_triggers: tuple[str, ...]) -> None:  # noqa: B027 - optional
        """Build lazily built parts (grammar lexers, kernels) now, not on the first turn."""

    def forget(self, key: str | None = None) -> None:  # noqa: B027 - optional
        """Drop the cached prompt of ``key`` (all when None)."""

    def describe(self) -> dict:
        return {"engine": self.name, "source": self.source, "notes": list(self.notes)}

    def close(self) -> None:  # noqa: B027 - optional
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- which engine ---------------------------------------------------------------------------

def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def gguf_conversion_available() -> bool:
    """Whether PEFT adapters can be converted for llama.cpp (``mind.gguf_adapter``, issue 16 item 4)."""
    return importlib.util.find_spec("xrstory.mind.gguf_adapter") is not None


def choose_engine(requested: str = "auto", *, model: str | Path | None = None, remote_url: str | None = None,
                  cuda: bool | None = None, adapter: str | Path | None = None) -> tuple[str, str]:
    """(engine, why). ``auto``: remote when a server URL is given; torch with CUDA (bf16/fp16 on
    the GPU beats llama.cpp's CPU build, and it is what training uses); llama.cpp on a CPU when
    xllamacpp is installed and the model is a GGUF file (a LoRA adapter is converted for it);
    else torch."""
    if requested not in ENGINES:
        raise ValueError(f"--engine {requested!r}: expected one of {', '.join(ENGINES)}")
    if requested == "remote" and not remote_url:
        raise ValueError("--engine remote needs a server URL (--remote http://HOST:PORT/v1)")
    if requested != "auto":
        return requested, f"--engine {requested}"
    if remote_url:
        return "remote", f"a server URL was given ({remote_url})"
    if cuda if cuda is not None else _cuda_available():
        return "torch", "CUDA is available: torch on the GPU"
    if model is not None and not str(model).endswith(".gguf"):
        return "torch", f"model {model} is not a GGUF file (llama.cpp runs GGUF files only)"
    if importlib.util.find_spec("xllamacpp") is None:
        return "torch", "no CUDA, but xllamacpp is not installed (pip install xllamacpp)"
    if adapter is not None:
        if not gguf_conversion_available():
            return "torch", (f"no CUDA, but the LoRA adapter {Path(adapter).name} cannot run on llama.cpp "
                             f"(no GGUF adapter conversion: xrstory.mind.gguf_adapter)")
        # folded into a merged GGUF (mind/gguf_merge.py; EngineSpec.adapter_mode "lora": a runtime
        # GGUF LoRA, mind/gguf_adapter.py); since the prompt that only grows, the demo's spoken arc
        # passes on llama.cpp with its adapter (2026-12-01)
        return "llamacpp", (f"no CUDA: llama.cpp in process on the CPU (xllamacpp), the LoRA adapter "
                            f"{Path(adapter).name} merged into a GGUF")
    return "llamacpp", "no CUDA: llama.cpp in process on the CPU (xllamacpp)"


@dataclass(frozen=True)
class EngineSpec:
    """How to load an engine (the CLI and ``SessionConfig`` fill it)."""

    engine: str = "auto"
    model: str | Path | None = None  # None: the default GGUF; torch also takes HF ids/folders
    adapter: str | Path | None = None  # PEFT LoRA folder
    remote_url: str | None = None
    threads: int | None = None  # CPU threads of the engine (None: the engine's default)
    chat_template: str | Path | None = None  # a Jinja file for a model whose GGUF carries none
    slots: int = 2  # llama.cpp: prompt caches kept side by side (one per character)
    context_tokens: int = 2048  # llama.cpp: per slot
    # llama.cpp: an adapter folded into the weights ("merged", cached Q8_0 GGUF) or applied at run
    # time ("lora", GGUF LoRA on the base file); merged prefills and decodes faster (docs/ENGINES.md)
    adapter_mode: str = "merged"
    device: str = "auto"  # torch


def load_engine(spec: EngineSpec, scene=None) -> Engine:
    """Load the engine ``spec`` names (``auto`` resolved by ``choose_engine``)."""
    name, _why = choose_engine(spec.engine, model=spec.model, remote_url=spec.remote_url, adapter=spec.adapter)
    if name == "llamacpp":
        from xrstory.mind.engine_llamacpp import LlamaCppEngine

        return LlamaCppEngine.load(spec)
    if name == "remote":
        from xrstory.mind.engine_remote import RemoteEngine

        return RemoteEngine(spec.remote_url, scene)
    from xrstory.mind.engine_torch import TorchEngine

    return TorchEngine.load(spec)
