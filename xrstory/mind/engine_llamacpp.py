"""The llama.cpp engine: llama.cpp's server in process (``xllamacpp``), on the GGUF file itself.

Why: on a CPU it decodes the quantized GGUF ~5x faster than our fp32 torch loop (``xrstory bench``
section ``llm``), and its prompt cache makes a turn prefill only the tokens that changed.

- The reply grammar is ``schema.reply_lark`` (``%llguidance``), the torch path's grammar; llama.cpp
  has LLGuidance compiled in and enforces it token by token. The opening every reply shares
  (``{"triggers":``) is written into the prompt as an assistant prefill rather than generated:
  forced tokens still cost a decode step each (~14 ms here), and the first words of ``say`` come
  4 steps sooner (``schema.split_opening``).
- One slot per character (``n_parallel``; ``id_slot`` pinned per key), each with its own KV
  cache, so one character's turn never evicts the other's prompt (``cache_prompt``).
- Streaming: ``handle_chat_completions`` calls back with each token's chunk on a worker thread;
  the callback returns True to stop (barge-in ends generation before the next token).
- Repetition: no per-token Python hook exists, so llama.cpp's samplers do it (repeat penalty,
  DRY; ``engine.Sampling``).
- A LoRA adapter (PEFT folder) is folded into the weights by default (``adapter_mode="merged"``:
  ``gguf_merge.merged_gguf_for``, a cached Q8_0 GGUF: no extra matmuls per token, faster kernels);
  ``adapter_mode="lora"`` runs it as a runtime GGUF LoRA on the base file (``gguf_adapter``).
- Flash attention off (``FLASH_ATTN``): on this CPU build it made a primed turn's prefill and the
  decode slower (docs/ENGINES.md, "Where a primed turn's time goes").

Try it:  .venv/bin/python -m xrstory.cli ask scenes/lighthouse maren "Light the stove?" --engine llamacpp
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from xrstory.mind.engine import (
    ContextOverflow,
    DecodeRequest,
    DecodeResult,
    Engine,
    EngineError,
    EngineSpec,
    Stop,
)
from xrstory.mind.schema import MAX_SAY_CHARS, split_opening

log = logging.getLogger(__name__)

# 1 thread: on the 2-core machines this runs on, the frame loop (llvmpipe), Whisper and TTS need
# the other core, and llama.cpp's threads wait for each other at every layer: with 2 threads on
# a busy machine one is often descheduled and decode collapsed (2 threads: under 1 tok/s at load
# 8-14; 1 thread: 13-18 tok/s at load 14). Figures in docs/ENGINES.md ("Threads").
DEFAULT_THREADS = 1
# threads sleep instead of spinning while they wait for work (llama.cpp's default polls at 50):
# spinning takes CPU from the frame loop and from the engine's own other thread
POLL = 0
# llama.cpp's flash attention: -1 auto (on for the CPU), 0 off, 1 on. Off: a primed turn's prefill
# (20-58 new tokens on ~600 cached) 5.8-8.1 ms/token against 7.2-9.2 with it, decode 88-103 tok/s
# against 65-80 (1 thread, 2026-12-01 15:17-15:23 UTC, load 3.6-6.2, bench/llm_prefill.py)
FLASH_ATTN = 0
ADAPTER_MODES = ("merged", "lora")
_END = object()  # queue marker: generation returned


def check_gguf(path: Path) -> None:
    """A clear error for a missing or non-GGUF file (llama.cpp itself only says 'failed to load')."""
    if not path.is_file():
        raise EngineError(f"GGUF model file not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise EngineError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF')")


def gguf_special_tokens(path: Path) -> tuple[str, ...]:
    """Control tokens of the GGUF's vocabulary (token types CONTROL and USER_DEFINED)."""
    from gguf import GGUFReader

    try:
        fields = GGUFReader(str(path)).fields
        types, tokens = fields["tokenizer.ggml.token_type"], fields["tokenizer.ggml.tokens"]
    except Exception as exc:  # a truncated or corrupt file: name it
        raise EngineError(f"cannot read GGUF file {path} (truncated or corrupt?): {type(exc).__name__}: {exc}") from None
    out = []
    for i, part in enumerate(types.data):
        if int(types.parts[part][0]) in (3, 4):
            out.append(bytes(tokens.parts[tokens.data[i]]).decode("utf-8", errors="replace"))
    return tuple(t for t in out if len(t) > 1)


def _gguf_lora(adapter: Path, base: Path, notes: list[str]) -> Path:
    """A cached GGUF LoRA for a PEFT adapter (``gguf_adapter``), applied at run time."""
    from xrstory.mind.gguf_adapter import gguf_lora_for

    path = Path(gguf_lora_for(adapter, base))
    notes.append(f"LoRA adapter {adapter} as runtime GGUF LoRA {path}")
    return path


def _merged(adapter: Path, base: Path, notes: list[str]) -> Path:
    """A cached GGUF with the adapter folded into its weights (``gguf_merge``)."""
    from xrstory.mind.gguf_merge import merged_gguf_for

    t0 = time.perf_counter()
    path = Path(merged_gguf_for(adapter, base))
    notes.append(f"LoRA adapter {adapter} merged into {path} ({(time.perf_counter() - t0) * 1000:.0f} ms)")
    return path


def _hard_cap(request: DecodeRequest) -> int:
    """Tokens llama.cpp may generate. The grammar bounds ``say`` in characters (6 per say token, as
    ``CharacterMind`` sets it) and closes the JSON itself; the cap must never cut it first, and a
    character can cost 3 tokens (byte-level BPE on CJK: a 12-token say of Chinese was cut before
    "emotion" under a cap of say tokens + 48). The torch loop steers per token instead."""
    if request.lark is None or request.say_tokens == 0:  # a client's schema (serve), the warm-up
        return request.max_tokens
    return max(request.max_tokens, 3 * min(MAX_SAY_CHARS, 6 * request.say_tokens) + 48)


class LlamaCppEngine(Engine):
    name = "llamacpp"

    def __init__(self, model: Path, adapter: Path | None = None, threads: int | None = None, slots: int = 2,
                 context_tokens: int = 2048, chat_template: str | Path | None = None,
                 adapter_mode: str = "merged"):
        import xllamacpp as xlc

        from xrstory.mind.chat_template import chat_template_for
        from xrstory.mind.gguf_file import read_gguf

        if adapter_mode not in ADAPTER_MODES:
            raise ValueError(f"adapter_mode {adapter_mode!r}: expected one of {', '.join(ADAPTER_MODES)}")
        t0 = time.perf_counter()
        self.source = str(model)
        self.notes = []
        read_gguf(model)  # a missing, truncated or corrupt file is named here (ModelLoadError: exit 2)
        check_gguf(model)
        template = chat_template_for(model, chat_template)  # NoChatTemplateError says how to give one
        self._special = gguf_special_tokens(model)
        self.threads = threads or DEFAULT_THREADS
        self.context_tokens = context_tokens
        lora = None
        weights = model
        if adapter and adapter_mode == "lora":
            lora = _gguf_lora(Path(adapter), model, self.notes)
        elif adapter:
            weights = _merged(Path(adapter), model, self.notes)
        self.weights = weights  # the file llama.cpp runs (the merged one with an adapter)
        params = xlc.CommonParams()
        params.model.path = str(weights)
        params.flash_attn_type = FLASH_ATTN
        params.use_jinja = True
        params.chat_template = template
        params.n_parallel = max(1, slots)
        params.n_ctx = context_tokens * params.n_parallel  # split evenly between the slots
        for cpu in (params.cpuparams, params.cpuparams_batch):
            cpu.n_threads = self.threads
            cpu.poll = POLL
        params.endpoint_slots = True  # _wait_until_listening asks /slots: the main loop answers it
        params.n_threads_http = 1  # only our token counter talks to it
        # llama.cpp logs every slot event to stderr; XRSTORY_LLAMA_LOG=3 brings them back
        params.verbosity = int(os.environ.get("XRSTORY_LLAMA_LOG", "0"))
        if lora is not None:
            info = xlc.CommonAdapterLoraInfo()
            info.path = str(lora)
            info.scale = 1.0
            params.lora_adapters = [info]
        try:
            self._server = xlc.Server(params)
        except RuntimeError as exc:  # llama.cpp logs the reason to stderr and raises this
            raise EngineError(f"llama.cpp could not load {weights}"
                              + (f" with LoRA {lora}" if lora else "") + f": {exc}") from None
        self._url = self._server.listening_address
        self._wait_until_listening()
        self._slots: dict[str, int] = {}
        self._n_slots = params.n_parallel
        self._token_counts: dict[str, int] = {}
        self._lock = threading.Lock()  # one generation at a time (the runtime has one model worker)
        self.load_ms = (time.perf_counter() - t0) * 1000
        self.notes.append(f"llama.cpp in process, {self.threads} threads, {self._n_slots} slots x {context_tokens} tokens")

    def _wait_until_listening(self, timeout_s: float = 30.0) -> None:
        """Return once the server's HTTP thread and its main loop both answer. Why: destroying the
        server before either has started hangs for ever, because ~Server joins a thread that never
        sees the stop. cpp-httplib ignores a stop() that comes before listen() (CI froze in
        ~Server -> std::thread::join on 2026-12-01), and llama.cpp's ``start_loop`` sets
        ``running = true`` itself, undoing a ``terminate()`` that came first (CI timed out in
        tests/test_mind_engine_close.py on 2026-12-02). /health answers from the HTTP thread
        alone; /slots is answered by the main loop, so a reply proves the loop is running."""
        deadline = time.monotonic() + timeout_s
        for path in ("/health", "/slots"):
            while True:
                try:
                    with urllib.request.urlopen(self._url + path, timeout=2):  # loopback, our own server
                        break
                except OSError as exc:  # refused before listen(); 503 while loading is an HTTPError (OSError)
                    if time.monotonic() > deadline:
                        raise EngineError(f"llama.cpp's server for {self.source} did not answer {path} within "
                                          f"{timeout_s:.0f} s ({exc})") from None
                    time.sleep(0.01)

    @classmethod
    def load(cls, spec: EngineSpec) -> LlamaCppEngine:
        from xrstory.mind.defaults import default_llm_path

        model = Path(spec.model) if spec.model is not None else default_llm_path()
        return cls(model, Path(spec.adapter) if spec.adapter else None, spec.threads, spec.slots,
                   spec.context_tokens, spec.chat_template, spec.adapter_mode)

    # -- small services ---------------------------------------------------------------------
    @property
    def special_tokens(self) -> tuple[str, ...]:
        return self._special

    def count_tokens(self, text: str) -> int:
        hit = self._token_counts.get(text)
        if hit is None:
            body = json.dumps({"content": text, "add_special": False, "parse_special": False}).encode()
            req = urllib.request.Request(self._url + "/tokenize", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:  # loopback, our own server
                hit = len(json.loads(resp.read())["tokens"])
            if len(self._token_counts) > 4096:
                self._token_counts.clear()
            self._token_counts[text] = hit
        return hit

    def slot_of(self, key: str) -> int:
        """The slot (KV cache) of ``key``: one per character while slots last, then shared.
        Keys starting with "__" (warm-up) borrow slot 0 without taking one."""
        if key.startswith("__"):
            return 0
        if key not in self._slots:
            if len(self._slots) >= self._n_slots:
                log.warning("llama.cpp engine: %d slots for %d characters; '%s' shares slot %d",
                            self._n_slots, len(self._slots) + 1, key, len(self._slots) % self._n_slots)
            self._slots[key] = len(self._slots) % self._n_slots
        return self._slots[key]

    def warm_up(self, allowed_triggers: tuple[str, ...]) -> None:
        from xrstory.mind.schema import reply_lark

        req = DecodeRequest("__warm_up__", [{"role": "user", "content": "Hello."}],
                            lark=reply_lark(list(allowed_triggers)), max_tokens=4, say_tokens=0)
        for _ in self.stream(req):
            pass

    def prefill(self, key: str, messages: list[dict]) -> DecodeResult:
        """One generated token on ``key``'s slot: llama.cpp keeps the prompt's KV (``cache_prompt``),
        and the next prompt reuses its common start."""
        *_, (_, result) = self.stream(DecodeRequest(key, messages, max_tokens=1, say_tokens=0))
        return result

    # -- the request ------------------------------------------------------------------------
    def _body(self, request: DecodeRequest) -> tuple[dict, str]:
        """The request body, and the reply's opening written into the prompt (``schema.split_opening``:
        an assistant prefill, so the 4 tokens every reply starts with cost no decode steps)."""
        s = request.sampling
        opening, lark = split_opening(request.lark) if request.lark is not None else ("", None)
        messages = request.messages + ([{"role": "assistant", "content": opening}] if opening else [])
        body = {"messages": messages, "stream": True, "cache_prompt": True,
                "id_slot": self.slot_of(request.key), "max_tokens": _hard_cap(request),
                "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed,
                "repeat_penalty": s.llamacpp_repeat_penalty, "repeat_last_n": s.repeat_last_n,
                "frequency_penalty": s.frequency_penalty + s.llamacpp_frequency_penalty,
                "presence_penalty": s.presence_penalty + s.llamacpp_presence_penalty,
                "dry_multiplier": s.dry_multiplier,
                "dry_base": s.dry_base, "dry_allowed_length": s.dry_allowed_length,
                "dry_penalty_last_n": s.dry_last_n}
        if lark is not None:
            body["grammar"] = lark
        elif request.schema is not None:
            body["json_schema"] = request.schema
        return body, opening

    def stream(self, request: DecodeRequest, should_stop: Stop | None = None) -> Iterator[tuple[str, DecodeResult]]:
        body, opening = self._body(request)
        chunks: queue.Queue = queue.Queue()
        stop = threading.Event()  # set by should_stop (polled per chunk) or by closing this generator

        def on_chunk(chunk: dict) -> bool:
            chunks.put(chunk)
            if should_stop is not None and should_stop():
                stop.set()
            return stop.is_set()  # True: llama.cpp stops before the next token

        def run() -> None:
            try:
                self._server.handle_chat_completions(body, on_chunk)
            except Exception as exc:  # noqa: BLE001 - handed to the consumer below
                chunks.put({"error": {"message": f"{type(exc).__name__}: {exc}"}})
            finally:
                chunks.put(_END)

        res = DecodeResult()
        t0 = time.perf_counter()
        with self._lock:
            worker = threading.Thread(target=run, name=f"llamacpp-{request.key}", daemon=True)
            worker.start()
            try:
                while True:
                    chunk = chunks.get()
                    if chunk is _END:
                        break
                    delta = self._take(chunk, res, request, t0)
                    if delta and opening and res.tokens == 1:  # the reply as a whole: opening first,
                        delta = opening + delta  # with the first generated token (its clock is that token's)
                        res.text = opening + res.text
                    if delta:
                        yield delta, res
            finally:
                stop.set()  # the consumer went away (GeneratorExit) or we are done
                worker.join()
        res.total_ms = (time.perf_counter() - t0) * 1000
        if stop.is_set() and not res.finish_reason:
            res.finish_reason = "interrupted"
        res.complete = res.finish_reason == "stop"
        yield "", res

    def _take(self, chunk: dict, res: DecodeResult, request: DecodeRequest, t0: float) -> str:
        """Fold one streamed chunk into ``res``; the text delta it carries."""
        if "error" in chunk:
            err = chunk["error"]
            msg = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            if isinstance(err, dict) and err.get("type") == "exceed_context_size_error":
                raise ContextOverflow(f"prompt of {err.get('n_prompt_tokens')} tokens exceeds the llama.cpp "
                                      f"context of {err.get('n_ctx')} tokens per character ({self.source}): "
                                      f"lower PromptBudget.max_tokens or raise EngineSpec.context_tokens")
            raise EngineError(f"llama.cpp ({self.source}) failed for '{request.key}': {msg}")
        timings = chunk.get("timings")
        if timings:
            res.cached_prompt_tokens = int(timings.get("cache_n", 0))
            res.prompt_tokens = res.cached_prompt_tokens + int(timings.get("prompt_n", 0))
            res.prefill_ms = float(timings.get("prompt_ms", 0.0))
            res.tokens = int(timings.get("predicted_n", res.tokens))
        choices = chunk.get("choices") or []
        if not choices:
            return ""
        choice = choices[0]
        if choice.get("finish_reason"):
            res.finish_reason = choice["finish_reason"]
        delta = (choice.get("delta") or {}).get("content") or ""
        if delta:
            res.tokens += 1  # llama.cpp streams one chunk per sampled token
            res.text += delta
            if res.tokens == 1:
                res.first_token_ms = (time.perf_counter() - t0) * 1000
        res.total_ms = (time.perf_counter() - t0) * 1000
        return delta

    def forget(self, key: str | None = None) -> None:
        # slots are overwritten by the next prompt; forgetting a key frees its slot for reuse
        if key is None:
            self._slots.clear()
        else:
            self._slots.pop(key, None)

    def close(self) -> None:
        server, self._server = getattr(self, "_server", None), None
        if server is not None:
            del server  # the extension stops its loop and frees the model in its destructor
