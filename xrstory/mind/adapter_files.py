"""Reading a PEFT LoRA adapter folder, checked: config, weights, and that the weights are LoRA pairs.

``read_adapter(folder)`` returns the adapter's config and its A/B matrices per adapted module,
or raises ``ModelLoadError`` naming the file and what is wrong (no folder, no config, a config
that is not JSON or not LoRA, no weights, a truncated safetensors file, no tensors, a tensor
that is not a LoRA A/B matrix, an A without its B). Both engines use it: the torch loader
before PEFT sees the folder (PEFT loads an adapter whose names match nothing as the untouched
base model, with a warning only), and the GGUF converter (``gguf_adapter.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from xrstory.mind.errors import ModelLoadError, ModelNotFoundError

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
_UNSUPPORTED = {  # PEFT LoRA options neither the merge nor llama.cpp's LoRA reproduces
    "use_dora": "DoRA (weight-decomposed LoRA)",
    "lora_bias": "LoRA bias terms",
    "use_qalora": "QA-LoRA",
    "target_parameters": "LoRA on raw parameters (target_parameters)",
    "alora_invocation_tokens": "activated LoRA (aLoRA)",
}


@dataclass
class LoraPair:
    module: str  # e.g. "model.layers.18.self_attn.q_proj" (PEFT's "base_model.model." prefix removed)
    a: object = None  # torch.Tensor (r, in_features)
    b: object = None  # torch.Tensor (out_features, r)


@dataclass
class AdapterFiles:
    folder: Path
    config: dict
    weights: Path
    pairs: dict[str, LoraPair] = field(default_factory=dict)  # module -> pair

    @property
    def rank(self) -> int:
        return int(self.config.get("r", 8))

    @property
    def alpha(self) -> float:
        return float(self.config.get("lora_alpha", 8))

    @property
    def rslora(self) -> bool:
        return bool(self.config.get("use_rslora", False))

    def content_hash(self) -> str:
        """sha256 of the config and weight files' bytes (what the converted-adapter cache is keyed by)."""
        h = hashlib.sha256()
        for p in (self.folder / "adapter_config.json", self.weights):
            with p.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()


def _config(folder: Path) -> dict:
    path = folder / "adapter_config.json"
    if not path.is_file():
        listing = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "the folder is empty"
        raise ModelLoadError(f"{folder} is not a PEFT adapter folder (no adapter_config.json; found: {listing})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"adapter config {path} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"adapter config {path} must be a JSON object, got {type(cfg).__name__}")
    kind = cfg.get("peft_type", "LORA")
    if str(kind).upper() != "LORA":
        raise ModelLoadError(f"adapter {folder} is a PEFT '{kind}' adapter; only LoRA adapters are supported")
    for key, what in _UNSUPPORTED.items():
        if cfg.get(key):
            raise ModelLoadError(f"adapter {folder} uses {what} ({key} in adapter_config.json), which is not "
                                 f"supported; train a plain LoRA adapter (xrstory finetune --method lora)")
    r, alpha = cfg.get("r", 8), cfg.get("lora_alpha", 8)
    if not isinstance(r, int) or r <= 0 or not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
        raise ModelLoadError(f"adapter config {path}: 'r' must be a positive integer and 'lora_alpha' a number "
                             f"(got r={r!r}, lora_alpha={alpha!r})")
    return cfg


def _tensors(weights: Path) -> dict:
    """name -> torch tensor; a truncated or corrupt file is a ModelLoadError naming it."""
    import torch

    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(weights), device="cpu")
        return torch.load(str(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors' SafetensorError, pickle errors, EOF: all mean a bad file
        size = weights.stat().st_size
        raise ModelLoadError(f"adapter weights {weights} ({size:,} bytes) cannot be read, the file is truncated "
                             f"or corrupt: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def read_adapter(folder: str | Path) -> AdapterFiles:
    """The checked contents of a PEFT LoRA adapter folder (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelNotFoundError(f"LoRA adapter folder not found: {folder}")
    cfg = _config(folder)
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        raise ModelLoadError(f"adapter {folder} has adapter_config.json but no weights "
                             f"({' or '.join(WEIGHT_FILES)})")
    tensors = _tensors(weights)
    if not tensors:
        raise ModelLoadError(f"adapter weights {weights} hold no tensors")
    files = AdapterFiles(folder, cfg, weights)
    for name, t in tensors.items():
        module = name.removeprefix("base_model.model.")
        side = "a" if module.endswith(".lora_A.weight") else "b" if module.endswith(".lora_B.weight") else None
        if side is None:
            raise ModelLoadError(
                f"adapter weights {weights}: tensor '{name}' is not a LoRA A/B matrix (embeddings, biases or "
                f"modules_to_save are not supported; expected names ending in .lora_A.weight / .lora_B.weight)")
        module = module.removesuffix(".lora_A.weight").removesuffix(".lora_B.weight")
        if getattr(t, "ndim", 0) != 2:
            raise ModelLoadError(f"adapter weights {weights}: tensor '{name}' has shape {tuple(t.shape)}, "
                                 f"expected a matrix")
        pair = files.pairs.setdefault(module, LoraPair(module))
        setattr(pair, side, t)
    for p in files.pairs.values():
        if p.a is None or p.b is None:
            raise ModelLoadError(f"adapter weights {weights}: module {p.module} has only its "
                                 f"lora_{'B' if p.a is None else 'A'} matrix")
        if p.a.shape[0] != p.b.shape[1]:
            raise ModelLoadError(f"adapter weights {weights}: module {p.module} has lora_A {tuple(p.a.shape)} "
                                 f"and lora_B {tuple(p.b.shape)}, whose ranks differ")
    return files


def _mismatch(files: AdapterFiles, base: str, what: str):
    from xrstory.mind.errors import AdapterMismatchError

    return AdapterMismatchError(f"LoRA adapter {files.folder} does not fit the base model {base}: {what}")


def check_fits(files: AdapterFiles, model, base: str) -> None:
    """Every module the adapter's weights adapt exists in ``model`` as a Linear of the same shape."""
    missing, wrong = [], []
    for p in files.pairs.values():
        try:
            layer = model.get_submodule(p.module)
        except AttributeError:
            missing.append(p.module)
            continue
        out_f, in_f = getattr(layer, "out_features", None), getattr(layer, "in_features", None)
        if (out_f, in_f) != (p.b.shape[0], p.a.shape[1]):
            wrong.append(f"{p.module} is {out_f}x{in_f} in the model, {p.b.shape[0]}x{p.a.shape[1]} in the adapter")
    n = len(files.pairs)
    if len(missing) == n:
        raise _mismatch(files, base, f"none of its {n} adapted modules exists in the model (e.g. '{missing[0]}' in "
                                     f"{files.weights.name}); it was made for another model or its names are "
                                     f"not PEFT's")
    if missing:
        raise _mismatch(files, base, f"{len(missing)} of its {n} adapted modules do not exist in the model: "
                                     + ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else ""))
    if wrong:
        raise _mismatch(files, base, f"{len(wrong)} of its {n} modules have other shapes: " + "; ".join(wrong[:3]))


def check_loaded(files: AdapterFiles, peft_model, base: str) -> None:
    """After PEFT's load: each A/B matrix of the file is the one in the model (PEFT warns, and keeps
    freshly initialised LoRA weights, B = 0, for names it could not place)."""
    import torch

    inner = peft_model.base_model.model
    stale = []
    for p in files.pairs.values():
        layer = inner.get_submodule(p.module)
        loras_a, loras_b = getattr(layer, "lora_A", None), getattr(layer, "lora_B", None)
        name = getattr(peft_model, "active_adapter", "default")
        if loras_a is None or name not in loras_a:
            stale.append(p.module)
            continue
        a, b = loras_a[name].weight, loras_b[name].weight
        if not (torch.equal(a.detach().cpu().to(p.a.dtype), p.a) and torch.equal(b.detach().cpu().to(p.b.dtype), p.b)):
            stale.append(p.module)
    if stale:
        raise _mismatch(files, base, f"PEFT did not load {len(stale)} of its {len(files.pairs)} weight pairs "
                                     f"(e.g. {stale[0]}); the adapter would run as the base model there")
    # A module the config targets but the file holds no weights for keeps PEFT's initial LoRA
    # weights: zero B by default, but random with init_lora_weights=false. Make it add nothing,
    # as on llama.cpp (the GGUF conversion carries only the file's matrices).
    with torch.no_grad():
        for module_name, layer in inner.named_modules():
            loras_b = getattr(layer, "lora_B", None)
            if module_name not in files.pairs and loras_b is not None and name in loras_b:
                loras_b[name].weight.zero_()
