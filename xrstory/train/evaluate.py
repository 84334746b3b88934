"""Base model vs fine-tuned adapter on the held-out test split, on the same utterances.

For each model (the base, then the base with the adapter merged) and each test turn:
- perplexity of the gold reply tokens (prompt tokens carry no loss), token-weighted;
- the reply through the runtime's own path (``CharacterMind.ask``: constrained decoding to the
  triggers allowed in that state), scored against the gold triggers: micro precision, recall,
  F1 and exact-set accuracy; emotion accuracy;
- an unconstrained greedy reply (same prompt, same cached prefix, no grammar): ``parse_rate`` is
  the share that parses as JSON with a string ``say``, string ``emotion`` and a list of string
  ``triggers``; this is what the model does on its own, without the grammar's help;
- persona similarity: mean cosine (all-MiniLM-L6-v2) of the constrained ``say`` to the centroid
  of that character's lines in the TRAIN split.

Metric keys are stable (``METRIC_KEYS``); percentages are 0..100, similarity -1..1.

The base model's side is cached (``~/.cache/xrstory/eval``, keyed by the model file, the test
turns, the decoding settings and this package's decoding code), so comparing a series of
adapters costs one base pass, not one per adapter.

Run it:  .venv/bin/xrstory eval scenes/lighthouse --adapter assets/adapters/lighthouse --json
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import DynamicCache

from xrstory.mind.decoder import Sampling
from xrstory.mind.loader import LanguageModel, ModelSpec, load_language_model
from xrstory.mind.mind import CharacterMind
from xrstory.mind.prompt import prompt_token_ids, render_prompt
from xrstory.story.scene import Scene
from xrstory.story.state import Story, StoryState
from xrstory.train.dataset import Example, Splits
from xrstory.train.metrics import perplexity, persona_similarity, trigger_scores
from xrstory.train.tokens import IGNORE, tokenize_example

METRIC_KEYS = ("trigger_precision", "trigger_recall", "trigger_f1", "trigger_exact", "perplexity",
               "parse_rate", "persona_similarity", "emotion_accuracy", "n_test")


@dataclass(frozen=True)
class EvalConfig:
    model: str | None = None  # base model source; None: the default GGUF
    device: str = "auto"
    limit: int | None = None  # first N test examples only
    max_new_tokens: int = 120  # as the runtime's MindConfig (the unconstrained reply gets the same)
    sampling: Sampling = Sampling()  # the runtime's decoding settings unless an experiment overrides them
    engine: str = "torch"  # the engine the constrained replies decode on (scores stay on the torch weights)


@dataclass
class TurnOutput:
    say: str
    emotion: str
    triggers: list[str]
    raw_unconstrained: str
    parses: bool


def parses_as_reply(text: str) -> bool:
    """True when ``text`` is a JSON object with say: str, emotion: str, triggers: list[str]."""
    try:
        d = json.loads(text.strip())
    except (json.JSONDecodeError, ValueError):
        return False
    return (isinstance(d, dict) and isinstance(d.get("say"), str) and isinstance(d.get("emotion"), str)
            and isinstance(d.get("triggers"), list) and all(isinstance(t, str) for t in d["triggers"]))


def load_embedder():
    """all-MiniLM-L6-v2 from its package (offline)."""
    from sentence_transformers import SentenceTransformer

    from xrstory.mind.defaults import default_embedder_path

    return SentenceTransformer(str(default_embedder_path()), device="cpu")


def character_centroids(embedder, train: list[Example]) -> dict[str, np.ndarray]:
    """(d,) mean embedding of each character's own TRAIN-split lines."""
    by_char: dict[str, list[str]] = {}
    for e in train:
        by_char.setdefault(e.character, []).append(e.say)
    return {c: embedder.encode(lines, normalize_embeddings=True).mean(axis=0) for c, lines in by_char.items()}


class FreeRunner:
    """The no-grammar side of evaluation, one turn at a time with the system prefix's KV cached
    (as the runtime feeds prompts): the gold reply's negative log-likelihood (for perplexity) and
    a greedy unconstrained reply (for parse_rate). Both share one prefill of the turn's suffix.
    """

    def __init__(self, lm: LanguageModel):
        self.lm = lm
        self._prefixes: dict[str, tuple[list[int], DynamicCache]] = {}

    def _forward(self, ids: list[int], cache: DynamicCache, last_only: bool = True) -> torch.Tensor:
        x = torch.tensor([ids], dtype=torch.long, device=self.lm.device)  # (1, T)
        out = self.lm.model(input_ids=x, cache=cache, use_cache=True, logits_to_keep=1 if last_only else 0)
        return out.logits[0].float()  # (1 or T, V)

    def _prefix(self, key: str, pre: list[int]) -> DynamicCache:
        held = self._prefixes.get(key)
        if held is not None and held[0] == pre:
            extra = held[1].get_seq_length() - len(pre)
            if extra:
                held[1].crop(-extra)  # drop the previous turn
            return held[1]
        cache = DynamicCache(config=self.lm.model.config)
        self._forward(pre, cache)
        self._prefixes[key] = (pre, cache)
        return cache

    @torch.inference_mode()
    def run(self, ex: Example, max_new_tokens: int) -> tuple[float, int, str]:
        """(summed NLL of the gold reply tokens in nats, their count, greedy unconstrained text)."""
        tok = self.lm.tokenizer
        prefix, suffix = render_prompt(tok, ex.messages)
        pre, suf = prompt_token_ids(tok, prefix, suffix)
        target = [t for t, lab in zip(*_ids_and_labels(tok, ex), strict=True) if lab != IGNORE]  # reply + eos
        cache = self._prefix(ex.character, pre)
        first = self._forward(suf, cache)  # (1, V): predicts the first reply token
        rest = self._forward(target[:-1], cache, last_only=False)  # (T-1, V): predict tokens 2..T
        logits = torch.cat([first, rest])  # (T, V)
        nll = float(torch.nn.functional.cross_entropy(logits, torch.tensor(target, device=logits.device),
                                                      reduction="sum"))
        cache.crop(-(len(target) - 1))  # back to prompt only; greedy decoding starts from `first`
        eos = set(self.lm.eos_token_ids)
        token, out = int(torch.argmax(first[0])), []
        while token not in eos and len(out) < max_new_tokens:
            out.append(token)
            token = int(torch.argmax(self._forward([token], cache)[0]))
        return nll, len(target), tok.decode(out, skip_special_tokens=True)


def _base_cache_file(lm: LanguageModel, examples: list[Example], cfg: EvalConfig,
                     centroids: dict[str, np.ndarray]) -> Path:
    """Where the base model's results for exactly these turns and settings are kept."""
    from xrstory.mind import decoder, grammar, mind, prompt

    h = hashlib.sha256()
    h.update(f"{lm.source}|{lm.device}|{lm.dtype}|{cfg.max_new_tokens}|{cfg.sampling}".encode())
    if cfg.engine != "torch":  # kept out for torch so earlier caches stay valid
        h.update(f"|engine={cfg.engine}".encode())
    for module in (decoder, grammar, mind, prompt):  # a change in how replies are decoded invalidates it
        h.update(Path(module.__file__).read_bytes())
    for e in examples:
        h.update(json.dumps([e.source, e.messages, e.target, e.allowed, e.state_json], sort_keys=True).encode())
    for c in sorted(centroids):  # persona similarity depends on the training split's lines
        h.update(c.encode() + np.round(centroids[c], 5).tobytes())
    root = Path(os.environ.get("XRSTORY_CACHE") or Path.home() / ".cache" / "xrstory")
    return root / "eval" / f"base-{h.hexdigest()[:24]}.json"


def _cached_or_evaluate(lm: LanguageModel, is_base: bool, examples: list[Example], cfg: EvalConfig,
                        centroids: dict[str, np.ndarray], run: Callable[[], tuple]
                        ) -> tuple[dict[str, float], list[TurnOutput]]:
    if not is_base:
        return run()
    path = _base_cache_file(lm, examples, cfg, centroids)
    if path.is_file():
        d = json.loads(path.read_text(encoding="utf-8"))
        return d["metrics"], [TurnOutput(**o) for o in d["outputs"]]
    metrics, outputs = run()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"metrics": metrics, "outputs": [o.__dict__ for o in outputs]}), encoding="utf-8")
    tmp.replace(path)
    return metrics, outputs


def _ids_and_labels(tok, ex: Example) -> tuple[list[int], list[int]]:
    t = tokenize_example(tok, ex)
    return t.input_ids, t.labels


def evaluate_model(lm: LanguageModel, scene: Scene, examples: list[Example], centroids: dict[str, np.ndarray],
                   embedder, cfg: EvalConfig, on_turn: Callable[[int], None] | None = None
                   ) -> tuple[dict[str, float], list[TurnOutput]]:
    """All metrics of one loaded model on ``examples``, and its per-turn outputs."""

    from xrstory.mind.engine import EngineSpec, load_engine

    engine = lm if cfg.engine == "torch" else load_engine(EngineSpec(engine=cfg.engine, model=cfg.model,
                                                                     adapter=lm.adapter))
    try:
        return _evaluate_with(engine, lm, scene, examples, centroids, embedder, cfg, on_turn)
    finally:
        if engine is not lm:
            engine.close()


def _evaluate_with(engine, lm: LanguageModel, scene: Scene, examples: list[Example], centroids, embedder,
                   cfg: EvalConfig, on_turn) -> tuple[dict[str, float], list[TurnOutput]]:
    from xrstory.mind.mind import MindConfig

    mind = CharacterMind(engine, scene, MindConfig(max_new_tokens=cfg.max_new_tokens, sampling=cfg.sampling))
    free = FreeRunner(lm)
    outputs: list[TurnOutput] = []
    nll_sum, n_tokens = 0.0, 0
    for i, ex in enumerate(examples):
        story = Story(scene, StoryState.model_validate_json(ex.state_json))
        turn = mind.ask(story, ex.character, ex.player, history=ex.history)
        nll, n, raw = free.run(ex, cfg.max_new_tokens)
        nll_sum, n_tokens = nll_sum + nll, n_tokens + n
        outputs.append(TurnOutput(turn.reply.say, turn.reply.emotion, list(turn.reply.triggers), raw,
                                  parses_as_reply(raw)))
        if on_turn is not None:
            on_turn(i)
    metrics: dict[str, float] = trigger_scores([e.triggers for e in examples], [o.triggers for o in outputs])
    metrics["perplexity"] = perplexity(nll_sum / max(n_tokens, 1))  # token-weighted over all test replies
    metrics["parse_rate"] = 100.0 * sum(o.parses for o in outputs) / max(len(outputs), 1)
    sims = [persona_similarity(embedder.encode([o.say]), centroids[e.character])
            for o, e in zip(outputs, examples, strict=True) if e.character in centroids]
    metrics["persona_similarity"] = float(np.mean(sims)) if sims else float("nan")
    gold_emotions = [json.loads(e.target)["emotion"] for e in examples]
    metrics["emotion_accuracy"] = 100.0 * sum(o.emotion == g for o, g in zip(outputs, gold_emotions, strict=True)) \
        / max(len(outputs), 1)
    metrics["n_test"] = len(examples)
    return metrics, outputs


def compare(scene: Scene, splits: Splits, adapter: str | Path, cfg: EvalConfig | None = None,
            progress: bool = True) -> dict:
    """``{"base", "adapter", "delta", "examples", "meta"}`` on the test split (stable keys)."""
    cfg = cfg or EvalConfig()
    t0 = time.perf_counter()
    examples = splits.test[: cfg.limit] if cfg.limit else splits.test
    if not examples:
        raise ValueError("the test split is empty: the corpus needs at least 3 conversations")
    embedder = load_embedder()
    centroids = character_centroids(embedder, splits.train)
    reference = [persona_similarity(embedder.encode([e.say]), centroids[e.character])
                 for e in examples if e.character in centroids]

    from rich.progress import Progress

    results: dict[str, tuple[dict, list[TurnOutput]]] = {}
    with Progress(disable=not progress, transient=True) as bar:
        for name, adapter_dir in (("base", None), ("adapter", adapter)):
            task = bar.add_task(f"evaluating {name}", total=len(examples))
            spec = ModelSpec(source=cfg.model, adapter=adapter_dir, device=cfg.device)  # type: ignore[arg-type]
            with load_language_model(spec) as lm:
                def run(lm=lm, task=task):
                    return evaluate_model(lm, scene, examples, centroids, embedder, cfg,
                                          on_turn=lambda i: bar.update(task, completed=i + 1))
                results[name] = _cached_or_evaluate(lm, adapter_dir is None, examples, cfg, centroids, run)
    base, tuned = results["base"][0], results["adapter"][0]
    delta = {k: tuned[k] - base[k] for k in METRIC_KEYS if k != "n_test"}
    delta["n_test"] = 0
    rows = []
    for e, b, a in zip(examples, results["base"][1], results["adapter"][1], strict=True):
        rows.append({"source": e.source, "character": e.character, "player": e.player, "allowed": e.allowed,
                     "gold": {"say": e.say, "triggers": e.triggers},
                     "base": {"say": b.say, "emotion": b.emotion, "triggers": b.triggers, "parses": b.parses,
                              "unconstrained": b.raw_unconstrained},
                     "adapter": {"say": a.say, "emotion": a.emotion, "triggers": a.triggers, "parses": a.parses,
                                 "unconstrained": a.raw_unconstrained}})
    return {"base": base, "adapter": tuned, "delta": delta, "examples": rows,
            "meta": {"adapter": str(adapter), "model": cfg.model or "default", "test_turns": len(examples),
                     "gold_persona_similarity": float(np.mean(reference)) if reference else float("nan"),
                     "seconds": round(time.perf_counter() - t0, 1)}}
