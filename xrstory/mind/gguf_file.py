"""A GGUF file's header, read fast and checked: metadata, tensor names and shapes, truncation.

``read_gguf(path)`` parses the header (key/value metadata and tensor table) without touching
the tensor data and checks that every tensor's bytes lie inside the file, so a truncated or
corrupt model is refused with a message naming the file *before* llama.cpp or transformers see
it (llama.cpp aborts the process on some malformed files; transformers raises deep inside).
``gguf.GGUFReader`` reads the same, but builds a Python object per vocabulary entry (1.8 s for
SmolLM2's header, 11 s for Gemma 3's 262k-token vocabulary); this reader keeps long arrays
as their length only and takes ~0.1-0.3 s.

Used by the loader (both engines), the chat-template reader and the LoRA converter. xllamacpp
itself says only "Failed to init server, please check the input params" for a bad file, so
the llama.cpp engine should call ``read_gguf`` before it starts a server.

Try it:  .venv/bin/python -c "from xrstory.mind.gguf_file import read_gguf; print(read_gguf('FILE.gguf').tensors.keys())"
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

from xrstory.mind.errors import ModelLoadError, ModelNotFoundError

GGUF_MAGIC = b"GGUF"
MAX_KEPT_ARRAY = 64  # longer arrays (vocabularies, merges) are kept as their length only

# GGUF value types -> struct format (scalars); 8 = string, 9 = array
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class GGUFFileError(ModelLoadError):
    """The file is not a readable GGUF model (missing, truncated, corrupt); the message names it."""


@dataclass(frozen=True)
class GGUFTensorInfo:
    name: str
    shape: tuple[int, ...]  # GGUF order (ne): shape[0] is the row length (a Linear's in_features)
    type_id: int
    offset: int  # from the start of the data section


@dataclass
class GGUFHeader:
    path: Path
    version: int
    metadata: dict[str, object]  # scalars and short arrays; a long array is stored as ArrayLen
    tensors: dict[str, GGUFTensorInfo] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def file_type(self) -> str:
        return str(self.metadata.get("general.type", "model"))

    def arch_int(self, key: str) -> int | None:
        """``{architecture}.{key}`` as an int (e.g. ``attention.head_count``), or None."""
        v = self.metadata.get(f"{self.architecture}.{key}")
        if isinstance(v, list):  # per-layer values: all equal for the models we adapt
            v = v[0] if v else None
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class ArrayLen:
    """A long metadata array left unread: its item type and length."""

    item_type: int
    length: int


class _Cursor:
    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise GGUFFileError(f"GGUF file {self.path} is truncated: the header ends at byte {len(self.buf)} "
                                f"in the middle of its metadata (the file is incomplete or not a GGUF model)")
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return v

    def string(self) -> str:
        n = self.take("<Q")
        if n > len(self.buf) - self.pos:
            raise GGUFFileError(f"GGUF file {self.path} is corrupt: a string of {n} bytes at byte {self.pos} "
                                f"runs past the end of the file ({len(self.buf)} bytes)")
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int):
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            item, count = self.take("<I"), self.take("<Q")
            if item in _SCALARS and count > MAX_KEPT_ARRAY:
                size = struct.calcsize(_SCALARS[item]) * count
                if self.pos + size > len(self.buf):
                    raise GGUFFileError(f"GGUF file {self.path} is truncated inside a metadata array")
                self.pos += size  # skip numbers without unpacking them
                return ArrayLen(item, count)
            values = [self.value(item) for _ in range(count)]
            return values if count <= MAX_KEPT_ARRAY else ArrayLen(item, count)
        raise GGUFFileError(f"GGUF file {self.path} is corrupt: unknown metadata value type {vtype} "
                            f"at byte {self.pos}")


def _tensor_nbytes(info: GGUFTensorInfo, path: Path) -> int:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(info.type_id)]
    except (ValueError, KeyError):
        raise GGUFFileError(f"GGUF file {path}: tensor {info.name} has unknown type id {info.type_id}") from None
    return prod(info.shape) // block * size


def read_gguf(path: str | Path, check_data: bool = True) -> GGUFHeader:
    """The header of a GGUF file; ``GGUFFileError`` (naming the file and what is wrong) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"GGUF model file not found: {path}")
    with path.open("rb") as f:
        size = path.stat().st_size
        if size < 24:
            raise GGUFFileError(f"GGUF file {path} is {size} bytes: too short to be a GGUF model (truncated?)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(buf, path, size, check_data)


def _parse(buf, path: Path, size: int, check_data: bool) -> GGUFHeader:
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise GGUFFileError(f"{path} is not a GGUF file (it starts with {bytes(buf[:4])!r}, not b'GGUF')")
    c = _Cursor(buf, path)
    c.pos = 4
    version = c.take("<I")
    if version not in (2, 3):
        raise GGUFFileError(f"GGUF file {path} has version {version}; llama.cpp reads versions 2 and 3")
    n_tensors, n_kv = c.take("<Q"), c.take("<Q")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise GGUFFileError(f"GGUF file {path} is corrupt: it claims {n_tensors} tensors and {n_kv} metadata keys")
    meta: dict[str, object] = {}
    for _ in range(n_kv):
        key = c.string()
        meta[key] = c.value(c.take("<I"))
    tensors: dict[str, GGUFTensorInfo] = {}
    for _ in range(n_tensors):
        name = c.string()
        n_dims = c.take("<I")
        if n_dims > 8:
            raise GGUFFileError(f"GGUF file {path} is corrupt: tensor {name} has {n_dims} dimensions")
        shape = tuple(c.take("<Q") for _ in range(n_dims))
        tensors[name] = GGUFTensorInfo(name, shape, c.take("<I"), c.take("<Q"))
    header = GGUFHeader(path, version, meta, tensors)
    if check_data and tensors:
        align = int(meta.get("general.alignment", 32) or 32)
        data_start = (c.pos + align - 1) // align * align
        for t in tensors.values():
            end = data_start + t.offset + _tensor_nbytes(t, path)
            if end > size:
                raise GGUFFileError(
                    f"GGUF file {path} is truncated: tensor {t.name} needs bytes up to {end:,} but the file has "
                    f"{size:,} (copy or download it again)")
    return header
