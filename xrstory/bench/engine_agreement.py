"""Do the torch engine and llama.cpp (xllamacpp) make the same trigger decision on the held-out turns?

For each turn of the scene's held-out test split (``train/dataset.py``'s split, seed 1234: 37
turns for the lighthouse), both engines get the exact runtime prompt (``mind/prompt.py``: the
same plan, the same chat template rendering, the same token ids) and the same reply grammar
(``mind/schema.py``'s JSON Schema, with the torch grammar's fixed separators):

- torch: ``CharacterMind.ask`` on the base dequantised from the GGUF, adapter merged (what
  ``xrstory eval`` and training use);
- llama.cpp: what the runtime's llama.cpp engine runs: by default the adapter merged into a Q8_0
  GGUF (``gguf_merge.merged_gguf_for``), or with ``--adapter-mode lora`` the quantised base with
  the adapter converted by ``gguf_lora_for`` and applied at run time; greedy, ``json_schema`` in
  the request, flash attention as the engine sets it.

The decision compared is the committed trigger set (duplicates dropped, as ``reply_from_json``
does). Returns the agreement in percent and every differing turn. It is a measurement, not a
timed test; ``tests/test_mind_gguf_adapter.py`` asserts the >= 95 % it must reach.

Run:  PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python -m xrstory.bench.engine_agreement \
          scenes/lighthouse --adapter assets/adapters/lighthouse [--adapter-mode lora] [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from xrstory.mind.grammar import JSON_OPTIONS
from xrstory.mind.schema import reply_schema


def llama_request(prompt_ids: list[int], allowed: list[str], max_tokens: int = 200) -> dict:
    """A greedy completion request under the reply grammar (separators fixed as the torch grammar's)."""
    schema = reply_schema(list(allowed))
    schema["properties"]["triggers"].pop("uniqueItems", None)  # llguidance does not implement it
    schema["x-guidance"] = dict(JSON_OPTIONS)
    return {"prompt": list(prompt_ids), "max_tokens": max_tokens, "temperature": 0.0, "json_schema": schema,
            "cache_prompt": True}


def _llama_triggers(text: str, character: str) -> tuple[list[str], bool]:
    from xrstory.mind.reply import reply_from_json

    try:
        return list(reply_from_json(text, character).triggers), True
    except ValueError:  # cut at max_tokens inside say: the decision (first key) is complete anyway
        head = text.split('"say"', 1)[0].rstrip(", ") + "}"
        try:
            return list(dict.fromkeys(json.loads(head).get("triggers", []))), False
        except json.JSONDecodeError:
            return [], False


def measure(scene_dir: Path, adapter: Path | None, limit: int | None = None, threads: int = 1,
            base_gguf: Path | None = None, split_seed: int = 1234, adapter_mode: str = "merged") -> dict:
    """``{"agreement_pct", "turns", "agree", "differences": [...], "rows": [...], "seconds"}``."""
    import xllamacpp as xlc

    from xrstory.mind.defaults import default_llm_path
    from xrstory.mind.engine_llamacpp import ADAPTER_MODES, FLASH_ATTN
    from xrstory.mind.gguf_adapter import gguf_lora_for
    from xrstory.mind.gguf_merge import merged_gguf_for
    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.mind.mind import CharacterMind, MindConfig
    from xrstory.mind.prompt import plan_prompt, prompt_token_ids, render_prompt
    from xrstory.story import Story, load_scene
    from xrstory.story.state import StoryState
    from xrstory.train.dataset import load_splits

    if adapter_mode not in ADAPTER_MODES:
        raise ValueError(f"adapter_mode {adapter_mode!r}: expected one of {', '.join(ADAPTER_MODES)}")
    t0 = time.perf_counter()
    base_gguf = Path(base_gguf) if base_gguf else default_llm_path()
    scene = load_scene(scene_dir)
    examples = load_splits(scene, seed=split_seed).test
    examples = examples[:limit] if limit else examples
    config = MindConfig()
    rows: list[dict] = []
    with load_language_model(ModelSpec(source=base_gguf, adapter=adapter, threads=threads)) as lm:
        mind = CharacterMind(lm, scene, config)

        def count(text: str) -> int:
            return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])

        for ex in examples:
            story = Story(scene, StoryState.model_validate_json(ex.state_json))
            allowed = story.allowed_triggers(ex.character)
            plan = plan_prompt(scene, story.state, ex.character, ex.player, list(ex.history), (), (),
                               allowed_triggers=allowed, budget=config.budget, count_tokens=count)
            pre, suf = prompt_token_ids(lm.tokenizer, *render_prompt(lm.tokenizer, plan.messages))
            turn = mind.ask(story, ex.character, ex.player, history=ex.history)
            rows.append({"source": ex.source, "character": ex.character, "player": ex.player, "allowed": allowed,
                         "gold": ex.triggers, "torch": sorted(turn.reply.triggers), "torch_say": turn.reply.say,
                         "prompt_ids": pre + suf})
    torch_s = time.perf_counter() - t0

    params = xlc.CommonParams()
    merged = adapter is not None and adapter_mode == "merged"
    params.model.path = str(merged_gguf_for(adapter, base_gguf) if merged else base_gguf)
    params.flash_attn_type = FLASH_ATTN
    params.n_ctx = 4096
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    if adapter is not None and not merged:
        info = xlc.CommonAdapterLoraInfo()
        info.path, info.scale = str(gguf_lora_for(adapter, base_gguf)), 1.0
        params.lora_adapters = [info]
    server = xlc.Server(params)
    try:
        for row in rows:
            res = server.handle_completions(llama_request(row.pop("prompt_ids"), row["allowed"]))
            text = res["choices"][0]["text"]
            triggers, complete = _llama_triggers(text, row["character"])
            row.update(llama=sorted(triggers), llama_say=text, llama_complete=complete)
    finally:
        del server
    agree = sum(r["torch"] == r["llama"] for r in rows)
    return {"agreement_pct": round(100.0 * agree / max(len(rows), 1), 1), "turns": len(rows), "agree": agree,
            "differences": [r for r in rows if r["torch"] != r["llama"]], "rows": rows,
            "adapter": str(adapter) if adapter else None, "adapter_mode": adapter_mode if adapter else None,
            "base": str(base_gguf), "llama_model": params.model.path,
            "seconds": {"torch": round(torch_s, 1), "total": round(time.perf_counter() - t0, 1)}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path)
    ap.add_argument("--adapter", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=None, help="base GGUF (default SmolLM2-135M)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--adapter-mode", choices=("merged", "lora"), default="merged",
                    help="llama.cpp side: the adapter merged into the weights (the runtime default) or a runtime LoRA")
    ap.add_argument("--json", type=Path, default=None, help="write the full result here")
    a = ap.parse_args(argv)
    result = measure(a.scene, a.adapter, a.limit, a.threads, a.model, adapter_mode=a.adapter_mode)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"trigger decision agreement torch vs llama.cpp ({result['adapter_mode'] or 'base'}): "
          f"{result['agree']}/{result['turns']} "
          f"= {result['agreement_pct']} %  ({result['seconds']})")
    for d in result["differences"]:
        print(f"  {d['source']} {d['character']}: {d['player']!r} allowed={d['allowed']} gold={d['gold']} "
              f"torch={d['torch']} llama.cpp={d['llama']}")


if __name__ == "__main__":
    main()
