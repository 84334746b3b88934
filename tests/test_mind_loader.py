"""Model loading: the default GGUF and its safetensors cache, LoRA adapters, and clear errors.

Adapters here are real PEFT adapters made in the test (random LoRA weights): one for the real
base model (it must change the logits once merged) and one for a differently shaped model
(it must be refused with an error naming the adapter).
"""

import pytest
import torch

from xrstory.mind.defaults import default_llm_path
from xrstory.mind.loader import AdapterMismatchError, ModelLoadError, ModelSpec, load_language_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base():
    with load_language_model(ModelSpec()) as lm:
        yield lm


def _logits(lm, text="The lamp is dark."):
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return lm.model(input_ids=ids).logits[0, -1]


def test_default_model_loads_on_cpu_with_chat_template(base):
    assert base.device == "cpu" and base.dtype == "float32"
    assert base.source.endswith(".gguf")
    assert base.tokenizer.chat_template and base.eos_token_ids
    assert torch.isfinite(_logits(base)).all()


def test_gguf_is_cached_as_safetensors(tmp_path):
    first = load_language_model(ModelSpec(cache_dir=tmp_path))
    assert "cached at" in first.notes[0]
    assert list(tmp_path.glob("gguf/*/model.safetensors"))
    second = load_language_model(ModelSpec(cache_dir=tmp_path))
    assert "from cache" in second.notes[0]
    assert torch.equal(_logits(first), _logits(second))
    first.close()
    second.close()


def test_lora_adapter_is_merged(base, tmp_path):
    from peft import LoraConfig, get_peft_model

    fresh = load_language_model(ModelSpec())
    lora = get_peft_model(fresh.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    fresh.close()
    with load_language_model(ModelSpec(adapter=tmp_path / "adapter")) as tuned:
        assert any("merged LoRA adapter" in n for n in tuned.notes)
        assert not torch.allclose(_logits(tuned), _logits(base), atol=1e-3)


def test_adapter_for_another_model_is_refused(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4))
    get_peft_model(tiny, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "other")
    with pytest.raises(AdapterMismatchError, match=r"adapter .*other does not fit the base model .*gguf"):
        load_language_model(ModelSpec(adapter=tmp_path / "other"))


def test_missing_things_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="GGUF model file not found: .*nope.gguf"):
        load_language_model(ModelSpec(source=tmp_path / "nope.gguf"))
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_language_model(ModelSpec(source=tmp_path))
    with pytest.raises(FileNotFoundError, match="LoRA adapter folder not found: .*missing"):
        load_language_model(ModelSpec(adapter=tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a PEFT adapter folder"):
        load_language_model(ModelSpec(adapter=tmp_path / "empty"))
    assert default_llm_path().is_file()


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="cannot load model 'no-such-org/no-such-model'.*offline"):
        load_language_model(ModelSpec(source="no-such-org/no-such-model"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_is_resident_in_half_precision():
    with load_language_model(ModelSpec(device="cuda")) as lm:
        assert lm.device == "cuda" and lm.dtype in ("bfloat16", "float16")
        assert next(lm.model.parameters()).is_cuda
