"""A PEFT LoRA adapter as a GGUF LoRA adapter for llama.cpp, converted once and cached.

    path = gguf_lora_for(Path("assets/adapters/lighthouse"), base_gguf)
    # then: CommonAdapterLoraInfo(path=str(path), scale=1.0) in xllamacpp's CommonParams.lora_adapters

What the conversion does (as llama.cpp's ``convert_lora_to_gguf.py``, without needing the base
model's Hugging Face config: everything comes from the base GGUF's header):

- tensor names: PEFT's ``base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`` becomes
  ``blk.N.attn_q.weight.lora_a`` (the ``gguf`` package's name map for the base's architecture);
  A is stored (r, in) and B (out, r) in torch order, i.e. GGUF ne = [in, r] and [r, out];
- metadata: ``general.architecture`` = the base's, ``general.type = adapter``,
  ``adapter.type = lora``, ``adapter.lora.alpha``; llama.cpp scales each product by alpha / r
  with r read from the B matrix;
- the Q/K row permutation: for the ``llama`` architecture the HF->GGUF conversion reorders the
  rows of q_proj and k_proj (llama.cpp's rotary embedding pairs neighbouring dimensions,
  HF's pairs the two halves) and transformers undoes it when it dequantises the GGUF (which is
  how the torch engine and ``xrstory finetune`` see the model). The adapter was trained on the
  un-permuted rows, so its q/k B matrices (the output rows of B @ A) get the same permutation;
- scaling: PEFT scales by alpha / r, or alpha / sqrt(r) with ``use_rslora``, per module with
  ``rank_pattern`` / ``alpha_pattern``; where that differs from llama.cpp's alpha / r the
  factor is folded into B, so every variant runs with the one alpha the file holds;
- checks: every adapted module must exist in the base GGUF with matching shapes, else
  ``AdapterMismatchError`` names the adapter, the module and both shapes.

The result is cached under the loader's cache root (``XRSTORY_CACHE`` or ``~/.cache/xrstory``)
in ``gguf/lora/``, keyed by the adapter's content hash and the base file (path, size, mtime),
written to a temporary name and renamed, so a half-written file is never used. F32 tensors:
the adapter is small (10 MB for the shipped one) and stays exact.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path

import numpy as np

from xrstory.mind.adapter_files import AdapterFiles, read_adapter
from xrstory.mind.errors import AdapterMismatchError, ModelLoadError
from xrstory.mind.gguf_file import GGUFHeader, read_gguf

CONVERTER_VERSION = "1"  # part of the cache key: bump when the conversion changes
PERMUTED_QK_ARCHS = {"llama"}  # archs whose q/k rows transformers un-permutes when it reads the GGUF
# archs whose attention or experts transformers splits/fuses when reading the GGUF: an adapter
# trained on that layout does not map onto the file's tensors one to one
UNSUPPORTED_ARCHS = {"bloom", "gpt2", "t5", "t5encoder", "mamba", "qwen2moe", "qwen3moe", "gpt_oss", "minimax-m2"}


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The same root as the loader's GGUF->safetensors cache."""
    root = cache_dir or os.environ.get("XRSTORY_CACHE") or Path.home() / ".cache" / "xrstory"
    return Path(root) / "gguf"


def _base_key(base: Path) -> str:
    st = base.stat()
    return hashlib.sha1(f"{base.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def permute_rows(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """HF -> GGUF row order of a q/k projection (convert_hf_to_gguf.py's LlamaModel.permute)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _pattern_value(patterns: dict, module: str, default):
    """PEFT's rank_pattern / alpha_pattern lookup: a key matches a module name or its dotted tail."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _gguf_name(header: GGUFHeader, module: str) -> str | None:
    import gguf

    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == header.architecture), None)
    if arch is None:
        return None
    n_blocks = header.arch_int("block_count") or 0
    names = gguf.get_tensor_name_map(arch, n_blocks)
    for lm_prefix, repl in (("model.language_model.", "model."), ("language_model.", "")):  # multimodal bases
        if module.startswith(lm_prefix):
            module = module.replace(lm_prefix, repl, 1)
            break
    name = names.get_name(module)
    return f"{name}.weight" if name else None


def _convert(adapter: AdapterFiles, header: GGUFHeader) -> tuple[float, list[tuple[str, np.ndarray]]]:
    """(alpha to write, [(gguf tensor name, float32 array)]); AdapterMismatchError when it does not fit."""
    arch = header.architecture
    if arch in UNSUPPORTED_ARCHS:
        raise ModelLoadError(f"LoRA adapters on a '{arch}' GGUF ({header.path}) are not supported by the "
                             f"converter; run that model with the torch engine")
    n_head, n_head_kv = header.arch_int("attention.head_count"), header.arch_int("attention.head_count_kv")
    cfg = adapter.config
    # the alpha written to the file: llama.cpp multiplies by alpha / r_tensor
    alpha_file = adapter.alpha * (math.sqrt(adapter.rank) if adapter.rslora else 1.0)
    out: list[tuple[str, np.ndarray]] = []
    for module, pair in sorted(adapter.pairs.items()):
        name = _gguf_name(header, module)
        base = header.tensors.get(name) if name else None
        if base is None:
            raise AdapterMismatchError(
                f"LoRA adapter {adapter.folder} does not fit the base model {header.path}: its module "
                f"'{module}' has no counterpart in the GGUF ({name or 'no GGUF name for it'}; architecture "
                f"'{arch}', {len(header.tensors)} tensors)")
        a = pair.a.float().numpy()  # (r, in)
        b = pair.b.float().numpy()  # (out, r)
        rows, cols = (int(base.shape[1]), int(base.shape[0])) if len(base.shape) == 2 else (-1, -1)
        if a.shape[1] != cols or b.shape[0] != rows:
            raise AdapterMismatchError(
                f"LoRA adapter {adapter.folder} does not fit the base model {header.path}: module '{module}' "
                f"adapts a {b.shape[0]}x{a.shape[1]} weight but {name} is {rows}x{cols}")
        r = a.shape[0]
        alpha_m = float(_pattern_value(cfg.get("alpha_pattern"), module, adapter.alpha))
        want = alpha_m / (math.sqrt(r) if adapter.rslora else r)  # PEFT's scaling of this module
        have = alpha_file / r  # llama.cpp's
        if not math.isclose(want, have, rel_tol=1e-6):
            b = b * np.float32(want / have)
        if arch in PERMUTED_QK_ARCHS and name.endswith((".attn_q.weight", ".attn_k.weight")):
            if not n_head:
                raise ModelLoadError(f"GGUF {header.path} lacks {arch}.attention.head_count; cannot place "
                                     f"the adapter's q/k rows")
            b = permute_rows(b, n_head, n_head if name.endswith(".attn_q.weight") else (n_head_kv or n_head))
        out += [(f"{name}.lora_a", np.ascontiguousarray(a, dtype=np.float32)),
                (f"{name}.lora_b", np.ascontiguousarray(b, dtype=np.float32))]
    return alpha_file, out


def _write(path: Path, arch: str, alpha: float, tensors: list[tuple[str, np.ndarray]], source: str) -> None:
    import gguf

    writer = gguf.GGUFWriter(path, arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_string("xrstory.adapter_source", source)
    for name, t in tensors:
        writer.add_tensor(name, t)
    write_and_close(writer)


def write_and_close(writer) -> None:
    """Write a ``gguf.GGUFWriter``'s header, metadata and tensors, and close it whatever happens."""
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def gguf_lora_for(adapter_dir: str | Path, base_gguf: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The GGUF LoRA file for ``adapter_dir`` on ``base_gguf``: from the cache, or converted now.

    Raises ``ModelLoadError`` (a bad adapter folder or base file) or ``AdapterMismatchError``
    (an adapter made for another model), each naming the file and what is wrong.
    """
    adapter_dir, base_gguf = Path(adapter_dir), Path(base_gguf)
    header = read_gguf(base_gguf)  # checks the base file first: missing, truncated, not GGUF
    adapter = read_adapter(adapter_dir)
    key = f"{adapter.content_hash()[:16]}-{_base_key(base_gguf)}-v{CONVERTER_VERSION}"
    target = cache_root(cache_dir) / "lora" / f"{adapter_dir.resolve().name}-{key}.gguf"
    if target.is_file():
        return target
    alpha, tensors = _convert(adapter, header)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        _write(tmp, header.architecture, alpha, tensors, str(adapter_dir.resolve()))
        tmp.replace(target)  # atomic: a half-written adapter is never picked up
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelLoadError(f"cannot write the converted adapter {target}: {exc}") from exc
    return target
