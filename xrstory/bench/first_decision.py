"""How sure is a character of its first decision? P(fire) over many phrasings of one request.

The demo's arc opens with a request to Maren to light the stove, from the story's start state and
with no conversation behind it. Whether she fires ``light_stove`` is the decision the whole arc
hangs on, so it is measured as a probability, not a single greedy outcome:

- for each phrasing the runtime's own prompt is built (``mind/prompt.py``, start state, no
  history) and rendered with the model's chat template;
- every trigger list the grammar allows for a one-decision reply is scored under teacher forcing
  (``[]`` and ``["t"]`` for each allowed ``t``; longer lists are left out: they need the model to
  name two triggers and carry almost no mass);
- P(fire) = the asked trigger's share of that mass, i.e. what constrained sampling at
  temperature 1 would choose; greedy decoding fires when it is the largest share.

The phrasings are our own test lines for the measurement (``PHRASINGS``); ``overlap`` reports any
that also occur, normalised, among the training examples, so the figure stays honest.

Run:  PYTHONPATH=$PWD HF_HUB_OFFLINE=1 .venv/bin/python -m xrstory.bench.first_decision \
          scenes/lighthouse --adapter assets/adapters/lighthouse [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from pathlib import Path

# Twelve ways a player might open the demo (to Maren, asking for the stove); none is copied from
# the scene's dialogue.jsonl or playthroughs except the arc's own line, which is listed first.
PHRASINGS = (
    "Maren, Tobias is freezing. Please light the iron stove.",
    "Could you get the stove going? He's shaking.",
    "Light the stove, Maren, quickly.",
    "Maren, please warm Tobias up by lighting the stove.",
    "The sailor is blue with cold. Can you light the fire in the stove?",
    "Would you start the stove for him?",
    "Please, the stove. He needs warmth now.",
    "Maren, could you light the stove?",
    "Get that iron stove lit, will you?",
    "Tobias needs heat. Fire up the stove please.",
    "Can you warm this man up? Light the stove.",
    "Maren, I think you should light the stove right away.",
)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


def _list_json(triggers: list[str]) -> str:
    from xrstory.mind.reply import JSON_ITEM_SEPARATOR, JSON_KEY_SEPARATOR

    whole = json.dumps({"triggers": triggers, "say": ""}, separators=(JSON_ITEM_SEPARATOR, JSON_KEY_SEPARATOR))
    return whole.split('"say"', 1)[0]  # '{"triggers": [...], ' : the decision, up to the next key


def decision_shares(lm, scene, character: str, line: str, state=None) -> dict[str, float]:
    """{trigger list as JSON: share of the one-decision mass} for ``line`` said to ``character``."""
    import torch

    from xrstory.mind.prompt import build_messages, prompt_token_ids, render_prompt
    from xrstory.story.state import Story

    story = Story(scene, state) if state is not None else Story(scene)
    allowed = story.allowed_triggers(character)
    messages = build_messages(scene, story.state, character, line, allowed_triggers=allowed)
    prefix, suffix = render_prompt(lm.tokenizer, messages)
    pre, suf = prompt_token_ids(lm.tokenizer, prefix, suffix)
    prompt = pre + suf
    options = [[]] + [[t] for t in allowed]
    scores = {}
    with torch.no_grad():
        for opt in options:
            cont = lm.tokenizer(_list_json(opt), add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + cont], device=lm.model.device)
            logp = torch.log_softmax(lm.model(input_ids=ids).logits[0, len(prompt) - 1:-1].float(), -1)
            scores[json.dumps(opt)] = float(logp.gather(1, torch.tensor(cont, device=logp.device)[:, None]).sum())
    top = max(scores.values())
    mass = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(mass.values())
    return {k: v / total for k, v in mass.items()}


def measure(scene_dir: Path, adapter: Path | None, character: str = "maren", trigger: str = "light_stove",
            phrasings=PHRASINGS) -> dict:
    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.story import load_scene

    scene = load_scene(scene_dir)
    rows = []
    with load_language_model(ModelSpec(adapter=adapter, device="cpu")) as lm:
        for line in phrasings:
            shares = decision_shares(lm, scene, character, line)
            p = shares.get(json.dumps([trigger]), 0.0)
            rows.append({"line": line, "p_fire": round(p, 3),
                         "greedy": max(shares, key=shares.get), "fires": max(shares, key=shares.get) == json.dumps([trigger])})
    ps = [r["p_fire"] for r in rows]
    return {"scene": scene.scene.id, "adapter": str(adapter) if adapter else None, "character": character,
            "trigger": trigger, "p_fire_median": round(statistics.median(ps), 3), "p_fire_min": min(ps),
            "p_fire_max": max(ps), "greedy_fires": sum(r["fires"] for r in rows), "phrasings": len(rows),
            "overlap": overlap(scene, phrasings), "rows": rows}


def overlap(scene, phrasings) -> list[str]:
    """Phrasings that also occur (normalised) as a player line of the training examples that
    ``xrstory finetune SCENE`` builds by default (its corpus plus the curriculum)."""
    from xrstory.train.corpus_set import scene_splits

    seen = {_norm(e.player) for e in scene_splits(scene).train}
    return [p for p in phrasings if _norm(p) in seen]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path)
    ap.add_argument("--adapter", type=Path, default=None)
    ap.add_argument("--character", default="maren")
    ap.add_argument("--trigger", default="light_stove")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    result = measure(args.scene, args.adapter, args.character, args.trigger)
    for r in result["rows"]:
        print(f"{r['p_fire']:.3f}  {'fires' if r['fires'] else 'holds'}  {r['line']}")
    print(f"P(fire) median {result['p_fire_median']} (min {result['p_fire_min']}, max {result['p_fire_max']}); "
          f"greedy fires {result['greedy_fires']}/{result['phrasings']}; in training: {result['overlap'] or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
