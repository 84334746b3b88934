"""Two base models side by side on the llama.cpp engine, each with its adapter merged, on the
demo's real prompts (issue 18: "the model, chosen by measurement"). Per model, one engine load:
merged file size, prompt tokens of the same text, decode tokens/s on the constrained reply and on
bare xllamacpp, first token cold / on a cached turn, prefill tokens/s (``llm_engines``).

Quality on the held-out scenes is ``xrstory eval corpus --heldout --engine llamacpp --model M
[--chat-template T] --adapter A``; docs/FINETUNING.md has both for SmolLM2-135M and Gemma 3 270M.

Run:  PYTHONPATH=$PWD .venv/bin/python -m xrstory.bench.llm_models \\
        --side smollm2::assets/adapters/general: \\
        --side gemma:$G:/work/train/gemma-general:assets/chat_templates/gemma.jinja [--json FILE]
(a side is NAME:MODEL:ADAPTER:TEMPLATE; an empty MODEL is the default GGUF, empty ADAPTER none)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from xrstory.bench.llm_engines import engine_and_bare
from xrstory.mind.engine import EngineSpec


def parse_side(text: str) -> tuple[str, EngineSpec]:
    parts = text.split(":")
    if len(parts) != 4 or not parts[0]:
        raise argparse.ArgumentTypeError(f"--side {text!r}: expected NAME:MODEL:ADAPTER:TEMPLATE")
    name, model, adapter, template = parts
    return name, EngineSpec(engine="llamacpp", model=model or None, adapter=adapter or None,
                            chat_template=template or None)


def measure(spec: EngineSpec, scene_dir: Path, repeats: int) -> dict:
    m = engine_and_bare(spec, scene_dir, repeats, 48)
    return {"weights": m["source"], "size_mb": round(Path(m["source"]).stat().st_size / 1e6, 1),
            "prompt_tokens": m["prompt_tokens"],
            **{k: m["reply"][k] for k in ("tokens_per_s", "first_token_cold_ms", "first_token_cached_ms",
                                          "prefill_tokens_per_s", "cached_turn_prefill_ms")},
            "bare_tokens_per_s": m["bare"]["tokens_per_s"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=parse_side, action="append", required=True)
    ap.add_argument("--scene", type=Path, default=Path("scenes/lighthouse"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    out: dict = {"load_before": os.getloadavg()}
    for name, spec in args.side:
        out[name] = measure(spec, args.scene, args.repeats)
        print(name, json.dumps(out[name]), flush=True)
    out["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
