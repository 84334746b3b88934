"""A PEFT LoRA adapter folded into the weights of its base GGUF: one merged GGUF, made once and cached.

    path = merged_gguf_for(Path("assets/adapters/lighthouse"), base_gguf)   # then load it as any GGUF

Why (measured in ``xrstory.bench.llm_prefill``, docs/ENGINES.md "Where a primed turn's time goes"):
llama.cpp's runtime LoRA adds two small matrix products per adapted projection to every token,
prefill and decode; the merged file has none. And its matrices are written as Q8_0, whose
kernels prefill faster on this CPU (AVX2, one thread) than the shipped file's Q4_1.

How: the adapter is converted exactly as for the runtime LoRA (``gguf_adapter._convert``: PEFT
names -> GGUF names, the scale folded into B, the q/k row permutation of the ``llama``
architecture), then for each adapted tensor W' = dequant(W) + (alpha / r) * B @ A in float32,
and every quantized matrix of the file is written as ``weight_type`` (Q8_0 by default: the
rounding of a Q8_0 block is ~1/254 of its largest weight, far below the adapter's change and
the Q4_1 steps it re-encodes; F16 keeps more but prefills slower here). Tensors that are not
matrices (norms, F32) and the token embedding keep their bytes. All metadata is copied
(tokenizer, chat template); ``general.file_type`` follows the new type and
``xrstory.merged_adapter`` names the adapter.

Cached beside the GGUF LoRA (``gguf_adapter.cache_root()/merged/``), keyed by the adapter's
content hash, the base file (path, size, mtime), the weight type and the merge version; written
to a temporary name and renamed, so a half-written file is never loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xrstory.mind.adapter_files import read_adapter
from xrstory.mind.errors import ModelLoadError
from xrstory.mind.gguf_adapter import _base_key, _convert, cache_root, write_and_close
from xrstory.mind.gguf_file import read_gguf

MERGE_VERSION = "1"  # part of the cache key: bump when the merge changes
WEIGHT_TYPES = ("q8_0", "f16", "keep")  # keep: untouched matrices keep their type, merged ones Q8_0
DEFAULT_WEIGHT_TYPE = "q8_0"
_KEEP_BYTES = {"token_embd.weight"}  # the embedding (also the tied output): only rows are read
_FILE_TYPE = {"q8_0": 7, "f16": 1}  # llama_ftype: MOSTLY_Q8_0, MOSTLY_F16


def _deltas(adapter, header) -> dict[str, np.ndarray]:
    """GGUF tensor name -> the adapter's float32 change of that weight, (out, in) as numpy reads it."""
    alpha, tensors = _convert(adapter, header)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, t in tensors:
        base, part = name.rsplit(".", 1)  # "blk.18.attn_q.weight", "lora_a"
        pairs.setdefault(base, {})[part] = t
    out = {}
    for name, p in pairs.items():
        a, b = p["lora_a"], p["lora_b"]  # (r, in), (out, r); B already carries PEFT's scale over alpha / r
        out[name] = (np.float32(alpha / a.shape[0]) * (b @ a)).astype(np.float32)
    return out


def _encode(x: np.ndarray, qtype) -> tuple[np.ndarray, object]:
    from gguf import GGMLQuantizationType as QT
    from gguf.quants import quantize

    if qtype == QT.F16:
        return x.astype(np.float16), QT.F16
    return quantize(np.ascontiguousarray(x, dtype=np.float32), qtype), qtype


def _write_merged(base_gguf: Path, deltas: dict[str, np.ndarray], path: Path, weight_type: str, source: str) -> None:
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(base_gguf))
    writer = gguf.GGUFWriter(path, reader.fields["general.architecture"].contents())
    target = {"q8_0": QT.Q8_0, "f16": QT.F16, "keep": QT.Q8_0}[weight_type]
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue  # written by the writer itself
        if key == "general.file_type" and weight_type in _FILE_TYPE:
            writer.add_uint32(key, _FILE_TYPE[weight_type])
            continue
        vtype = f.types[0]
        writer.add_key_value(key, f.contents(), vtype, f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None)
    writer.add_string("xrstory.merged_adapter", source)
    float_types = (QT.F32, QT.F16, QT.BF16)
    for t in reader.tensors:
        delta = deltas.get(t.name)
        matrix = len(t.shape) == 2 and t.tensor_type not in float_types and t.name not in _KEEP_BYTES
        if delta is None and (not matrix or weight_type == "keep"):
            writer.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
            continue
        w = dequantize(t.data, t.tensor_type).astype(np.float32)  # (out, in)
        if delta is not None:
            if w.shape != delta.shape:
                raise ModelLoadError(f"merging {source} into {base_gguf}: {t.name} is {w.shape}, the adapter's "
                                     f"change is {delta.shape}")
            w += delta
        data, qtype = _encode(w, target if t.tensor_type not in float_types else QT.F16)
        writer.add_tensor(t.name, data, raw_shape=data.shape, raw_dtype=qtype)
    write_and_close(writer)


def merged_gguf_for(adapter_dir: str | Path, base_gguf: str | Path, weight_type: str = DEFAULT_WEIGHT_TYPE,
                    cache_dir: str | Path | None = None) -> Path:
    """The merged GGUF of ``adapter_dir`` on ``base_gguf``: from the cache, or merged now (~10-20 s).

    Raises ``ModelLoadError`` (a bad adapter folder or base file, an unsupported architecture) or
    ``AdapterMismatchError`` (an adapter made for another model), each naming the file.
    """
    if weight_type not in WEIGHT_TYPES:
        raise ValueError(f"weight_type {weight_type!r}: expected one of {', '.join(WEIGHT_TYPES)}")
    adapter_dir, base_gguf = Path(adapter_dir), Path(base_gguf)
    header = read_gguf(base_gguf)  # a missing, truncated or non-GGUF base file is named here
    adapter = read_adapter(adapter_dir)
    key = f"{adapter.content_hash()[:16]}-{_base_key(base_gguf)}-{weight_type}-m{MERGE_VERSION}"
    target = cache_root(cache_dir) / "merged" / f"{base_gguf.stem}+{adapter_dir.resolve().name}-{key}.gguf"
    if target.is_file():
        return target
    deltas = _deltas(adapter, header)  # AdapterMismatchError before anything is written
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        _write_merged(base_gguf, deltas, tmp, weight_type, str(adapter_dir.resolve()))
        tmp.replace(target)  # atomic: a half-written model is never picked up
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelLoadError(f"cannot write the merged model {target}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
