"""Bad model and adapter input is refused with an error naming the file and what is wrong (issue 20).

Every case is built from real files: the shipped SmolLM2 GGUF cut short, random bytes named
.gguf, real PEFT-format adapters written here (config + safetensors) with LoRA matrices of the
base model's shapes, one with names of no module of the model (PEFT loads that as the untouched
base model, with a warning only), the shipped adapter's weights cut in half. The commands
(``ask``, ``play``) must exit 2 with the message and no traceback.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from xrstory.mind.defaults import default_llm_path
from xrstory.mind.errors import ModelNotFoundError
from xrstory.mind.gguf_adapter import gguf_lora_for
from xrstory.mind.gguf_file import GGUFFileError, read_gguf
from xrstory.mind.loader import AdapterMismatchError, ModelLoadError, ModelSpec, load_language_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_ADAPTER = ROOT / "assets" / "adapters" / "lighthouse"


def _adapter(folder: Path, prefix: str = "base_model.model.model.layers", shapes=((576, 576), (192, 576)),
             target=("q_proj", "k_proj")) -> Path:
    """A PEFT LoRA adapter folder (r=4) on layer 0's q_proj/k_proj, names under ``prefix``."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": list(target), "task_type": "CAUSAL_LM",
         "base_model_name_or_path": "test"}), encoding="utf-8")
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for module, (out_f, in_f) in zip(target, shapes, strict=True):
        tensors[f"{prefix}.0.self_attn.{module}.lora_A.weight"] = torch.randn(4, in_f, generator=g) * 0.05
        tensors[f"{prefix}.0.self_attn.{module}.lora_B.weight"] = torch.randn(out_f, 4, generator=g) * 0.05
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def _cut(src: Path, dst: Path, n_bytes: int) -> Path:
    with src.open("rb") as f:
        dst.write_bytes(f.read(n_bytes))
    return dst


# -- GGUF files -------------------------------------------------------------------------------

def test_missing_gguf_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="GGUF model file not found: .*nope.gguf"):
        load_language_model(ModelSpec(source=tmp_path / "nope.gguf"))


def test_corrupt_gguf_is_named(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(GGUFFileError, match=r"junk.gguf is not a GGUF file \(it starts with"):
        load_language_model(ModelSpec(source=junk))


def test_truncated_gguf_is_named_before_loading(tmp_path):
    cut = _cut(default_llm_path(), tmp_path / "cut.gguf", 20_000_000)  # header intact, tensor data cut
    with pytest.raises(GGUFFileError, match=r"cut.gguf is truncated: tensor \S+ needs bytes up to .* has 20,000,000"):
        load_language_model(ModelSpec(source=cut))
    tiny = _cut(default_llm_path(), tmp_path / "tiny.gguf", 3000)  # cut inside the metadata
    with pytest.raises(GGUFFileError, match="tiny.gguf is truncated"):
        read_gguf(tiny)
    assert isinstance(GGUFFileError("x"), ModelLoadError)


def test_converter_refuses_a_truncated_base(tmp_path):
    cut = _cut(default_llm_path(), tmp_path / "cut.gguf", 20_000_000)
    with pytest.raises(GGUFFileError, match="cut.gguf is truncated"):
        gguf_lora_for(SHIPPED_ADAPTER, cut, cache_dir=tmp_path / "cache")


# -- model folders ----------------------------------------------------------------------------

def test_model_folder_with_only_config_is_named(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"model folder .*model has config.json but no weights .*found: config.json"):
        load_language_model(ModelSpec(source=folder))


def test_truncated_safetensors_in_a_model_folder_is_named(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    _cut(SHIPPED_ADAPTER / "adapter_model.safetensors", folder / "model.safetensors", 1_000_000)
    with pytest.raises(ModelLoadError, match=r"weights file .*model.safetensors \(1,000,000 bytes\) is truncated"):
        load_language_model(ModelSpec(source=folder))


# -- adapters ---------------------------------------------------------------------------------

def test_empty_adapter_folder_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"empty is not a PEFT adapter folder .*the folder is empty"):
        load_language_model(ModelSpec(adapter=tmp_path / "empty"))
    with pytest.raises(ModelLoadError, match="not a PEFT adapter folder"):
        gguf_lora_for(tmp_path / "empty", default_llm_path(), cache_dir=tmp_path / "cache")


def test_truncated_adapter_weights_are_named(tmp_path):
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "adapter_config.json").write_bytes((SHIPPED_ADAPTER / "adapter_config.json").read_bytes())
    size = (SHIPPED_ADAPTER / "adapter_model.safetensors").stat().st_size
    _cut(SHIPPED_ADAPTER / "adapter_model.safetensors", folder / "adapter_model.safetensors", size // 2)
    with pytest.raises(ModelLoadError, match=r"adapter weights .*cut/adapter_model.safetensors .* truncated or corrupt"):
        load_language_model(ModelSpec(adapter=folder))
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        gguf_lora_for(folder, default_llm_path(), cache_dir=tmp_path / "cache")


def test_adapter_config_without_weights_is_named(tmp_path):
    folder = tmp_path / "noweights"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4, "lora_alpha": 8}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="has adapter_config.json but no weights"):
        load_language_model(ModelSpec(adapter=folder))


@pytest.mark.slow
def test_adapter_whose_names_match_nothing_is_refused_not_loaded_as_base(tmp_path):
    good = _adapter(tmp_path / "good")
    with load_language_model(ModelSpec(adapter=good)) as lm:  # the control: the same weights, PEFT's names
        assert any("merged LoRA adapter" in n for n in lm.notes)
    renamed = _adapter(tmp_path / "renamed", prefix="base_model.model.transformer.h")
    with pytest.raises(AdapterMismatchError, match=r"renamed does not fit the base model .*none of its 2 adapted "
                                                   r"modules exists in the model \(e.g. 'transformer.h.0.self_attn"):
        load_language_model(ModelSpec(adapter=renamed))
    with pytest.raises(AdapterMismatchError, match="'transformer.h.0.self_attn.k_proj' has no counterpart in the GGUF"):
        gguf_lora_for(renamed, default_llm_path(), cache_dir=tmp_path / "cache")


@pytest.mark.slow
def test_adapter_for_another_model_is_refused_on_both_engines(tmp_path):
    other = _adapter(tmp_path / "other", shapes=((64, 64), (64, 64)))  # a model with 64-wide layers
    with pytest.raises(AdapterMismatchError, match=r"other does not fit .*2 of its 2 modules have other shapes: "
                                                   r".*model.layers.0.self_attn.q_proj is 576x576 in the model, 64x64"):
        load_language_model(ModelSpec(adapter=other))
    with pytest.raises(AdapterMismatchError, match=r"adapts a 64x64 weight but blk.0.attn_\w.weight is \d+x576"):
        gguf_lora_for(other, default_llm_path(), cache_dir=tmp_path / "cache")


@pytest.mark.slow
def test_modules_the_file_has_no_weights_for_add_nothing(tmp_path):
    """The config targets q/k of all 30 layers, the file holds layer 0 only: with
    init_lora_weights=false PEFT would leave random LoRA weights in the other 29 layers."""
    def logits(folder):
        with load_language_model(ModelSpec(adapter=folder)) as lm:
            ids = lm.tokenizer("The lamp is dark.", return_tensors="pt")["input_ids"]
            with torch.inference_mode():
                return lm.model(input_ids=ids).logits[0, -1]

    zero_init = _adapter(tmp_path / "zero")
    random_init = _adapter(tmp_path / "random")
    cfg = json.loads((random_init / "adapter_config.json").read_text(encoding="utf-8"))
    (random_init / "adapter_config.json").write_text(json.dumps(cfg | {"init_lora_weights": False}), encoding="utf-8")
    assert torch.allclose(logits(zero_init), logits(random_init), atol=1e-5)


# -- the commands -----------------------------------------------------------------------------

def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "xrstory.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_ask_and_play_exit_2_with_the_message(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"NOPE" + os.urandom(100))
    (tmp_path / "empty").mkdir()
    scene = str(ROOT / "scenes" / "lighthouse")
    runs = {
        "ask --model junk": _cli("ask", scene, "maren", "hello", "--model", str(junk), cwd=tmp_path),
        "ask --adapter empty": _cli("ask", scene, "maren", "hello", "--adapter", str(tmp_path / "empty"), cwd=tmp_path),
        "play --model junk": _cli("play", scene, "--display", "headless", "--model", str(junk), "--frames", "1",
                                  cwd=tmp_path),
    }
    for name, r in runs.items():
        assert r.returncode == 2, f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, f"{name}: {r.stderr[-2000:]}"
    assert "junk.gguf is not a GGUF file" in runs["ask --model junk"].stderr
    assert "not a PEFT adapter folder" in runs["ask --adapter empty"].stderr
    assert "junk.gguf is not a GGUF file" in " ".join(runs["play --model junk"].stderr.split())
