"""The fine-tuning loop: LoRA (PEFT) or full, AdamW with warmup and a schedule, gradient
accumulation, validation-loss early stopping, checkpoints and resume.

Written out by hand (nanoGPT-style) rather than through ``transformers.Trainer`` so every
step is readable: batches -> reply-only loss -> accumulate -> clip -> step -> schedule.
Output folder: the adapter (or full model) of the best validation loss (weighted like the
training loss, so the trigger decision counts as much as in training) or, where the splits carry
``selection`` turns (scenes never trained on, or a scene's own hand-written validation turns), of the
best decision on those (``decision_score``; lower loss on the training phrasing came with worse
decisions on new stories), ``train_config.json``,
``history.json`` (losses per step; per validation pass the plain and weighted loss and the share
of validation turns whose trigger list is right token for token), and ``checkpoint/`` for resuming.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from xrstory.train.config import TrainConfig
from xrstory.train.dataset import Splits
from xrstory.train.tokens import (
    Tokenized,
    collate,
    reply_loss,
    reply_scores,
    tokenize_example,
)


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    best_val_loss: float  # plain validation loss of the kept adapter (chosen by the weighted loss)
    first_val_loss: float
    history: dict = field(default_factory=dict)
    stopped_early: bool = False
    seconds: float = 0.0
    tokens_per_s: float = 0.0


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    warm = max(1, int(total * cfg.warmup_ratio))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "constant":
        return cfg.lr
    frac = (step - warm) / max(1, total - warm)
    if cfg.schedule == "linear":
        return cfg.lr * max(0.0, 1 - frac)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def prepare_model(model, cfg: TrainConfig):
    """Wrap for LoRA (only adapter weights train) or unfreeze everything for full tuning."""
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        n_layers = model.config.num_hidden_layers
        layers = None
        if cfg.lora_layers is not None:
            if not 1 <= cfg.lora_layers <= n_layers:
                raise ValueError(f"lora_layers={cfg.lora_layers}: the model has {n_layers} decoder layers")
            layers = list(range(n_layers - cfg.lora_layers, n_layers))
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.target_modules), layers_to_transform=layers,
                          task_type="CAUSAL_LM", bias="none")
        return get_peft_model(model, lora)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def load_initial_adapter(model, folder: Path, cfg: TrainConfig) -> None:
    """Copy a saved adapter's LoRA weights into ``model`` (just wrapped by prepare_model).

    Every LoRA tensor of the new adapter must come from the file with the same shape: a folder made
    with another rank, module list, layer range or base model is refused by name, not half-loaded.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    if cfg.method != "lora":
        raise ValueError(f"init_adapter {folder}: warm start needs --method lora")
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"init_adapter {folder}: no adapter_model.safetensors there")
    saved = load_file(str(weights))
    # PEFT saves keys without the adapter name; compare shapes on that form
    wanted = {k.replace(".default", ""): v.shape for k, v in model.state_dict().items() if "lora_" in k}
    missing = sorted(k for k in wanted if k not in saved)
    wrong = sorted(k for k in wanted if k in saved and tuple(saved[k].shape) != tuple(wanted[k]))
    if missing or wrong or len(saved) != len(wanted):
        first = (missing or wrong or sorted(set(saved) - set(wanted)))[:1]
        raise ValueError(f"init_adapter {weights}: its LoRA tensors do not match this model and config "
                         f"({len(missing)} missing, {len(wrong)} of another shape, {len(saved)} saved vs "
                         f"{len(wanted)} wanted; e.g. {first[0] if first else '?'}): use the same --rank, "
                         f"--target-modules, --lora-layers and base model")
    set_peft_model_state_dict(model, saved)


@dataclass(frozen=True)
class Validation:
    loss: float  # mean reply-token cross-entropy
    weighted_loss: float  # the same, weighted like the training loss (trigger tokens x trigger_weight)
    trigger_exact: float  # share of examples whose trigger list is predicted right token for token
    exact_rows: tuple[bool, ...] = ()  # the same, per example of ``data``


@torch.no_grad()
def validate(model, data: list[Tokenized], pad_id: int, batch_size: int, device) -> Validation:
    """Teacher-forced scores over ``data``; the model's train/eval mode is kept."""
    was_training = model.training
    model.eval()
    scores = [reply_scores(model, {k: v.to(device) for k, v in collate(data[i:i + batch_size], pad_id).items()})
              for i in range(0, len(data), batch_size)]
    model.train(was_training)
    tokens = sum(s.tokens for s in scores)
    return Validation(sum(s.loss for s in scores) / max(tokens, 1),
                      sum(s.weighted_loss for s in scores) / max(sum(s.weight for s in scores), 1e-9),
                      sum(s.trigger_exact for s in scores) / max(len(data), 1),
                      tuple(e for s in scores for e in s.exact_rows))


@dataclass(frozen=True)
class Decisions:
    fire: float  # share of firing turns whose trigger list is right (teacher forced: what greedy names)
    hold: float  # share of the other turns whose (empty) trigger list is right
    score: float  # their mean: a checkpoint cannot win by always firing or never firing


def decision_score(model, data: list[Tokenized], fires: list[bool], pad_id: int, batch_size: int,
                   device) -> Decisions:
    """How well the model decides fire vs hold back on ``data`` (``fires[i]``: turn i's gold fires)."""
    exact = validate(model, data, pad_id, batch_size, device).exact_rows

    def share(want: bool) -> float:
        rows = [e for e, f in zip(exact, fires, strict=True) if f == want]
        return sum(rows) / len(rows) if rows else 1.0

    fire, hold = share(True), share(False)
    return Decisions(fire, hold, (fire + hold) / 2)


def _save(model, out: Path, cfg: TrainConfig) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)  # PEFT: adapter only; full: the whole model (safetensors)
    cfg.save(out / "train_config.json")


def finetune(model, tokenizer, splits: Splits, cfg: TrainConfig, out_dir: str | Path, *,
             resume: bool = False, progress: bool = True, base_source: str = "") -> TrainResult:
    """Fine-tune ``model`` on ``splits.train``; keep the best by weighted validation loss in ``out_dir``."""
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def tok(examples, limit):
        items = [tokenize_example(tokenizer, e, cfg.trigger_weight) for e in (examples[:limit] if limit else examples)]
        kept = [t for t in items if len(t.input_ids) <= cfg.max_length]
        return kept, len(items) - len(kept)

    train, dropped_train = tok(splits.train, cfg.limit_train)
    val, dropped_val = tok(splits.validation, cfg.limit_eval)
    chosen = splits.selection
    if cfg.limit_selection is not None and len(chosen) > cfg.limit_selection:  # evenly spread: every scene, kind
        chosen = [chosen[i * len(chosen) // cfg.limit_selection] for i in range(cfg.limit_selection)]
    selection = [(tokenize_example(tokenizer, e, cfg.trigger_weight), bool(e.triggers)) for e in chosen]
    selection = [(t, f) for t, f in selection if len(t.input_ids) <= cfg.max_length]
    if not train or not val:
        raise ValueError(f"need training and validation examples (train {len(train)}, validation {len(val)}; "
                         f"{dropped_train + dropped_val} longer than max_length {cfg.max_length} were dropped)")
    model = prepare_model(model, cfg)
    if cfg.init_adapter and not resume:
        load_initial_adapter(model, Path(cfg.init_adapter), cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    per_epoch = math.ceil(len(train) / (cfg.batch_size * cfg.grad_accum))
    total_steps = cfg.max_steps or max(1, int(per_epoch * cfg.epochs))

    history = {"step": [], "train_loss": [], "val_step": [], "val_loss": [], "val_weighted_loss": [],
               "val_trigger_exact": [], "lr": [], "sel_fire": [], "sel_hold": [], "sel_decision": [],
               "selection_examples": len(selection),
               "dropped_long_examples": dropped_train + dropped_val, "train_examples": len(train),
               "val_examples": len(val), "base_model": base_source, "method": cfg.method}
    step, best, bad_evals, stopped_early = 0, float("inf"), 0, False
    ckpt = out / "checkpoint"
    if resume and (ckpt / "state.pt").is_file():
        state = torch.load(ckpt / "state.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        step, best, bad_evals, history = state["step"], state["best"], state["bad_evals"], state["history"]
        rng.setstate(state["rng"])
        # a checkpoint from before the weighted selection: its passes count as unweighted ones
        history.setdefault("val_weighted_loss", list(history["val_loss"]))
        history.setdefault("val_trigger_exact", [float("nan")] * len(history["val_loss"]))

    for key in ("sel_fire", "sel_hold", "sel_decision"):  # a checkpoint from before selection scenes
        history.setdefault(key, [])

    def rank(i: int) -> tuple[float, float]:
        """Validation pass i's rank, lower is better: the decision on the selection scenes first."""
        sel = history["sel_decision"]
        return (-sel[i] if i < len(sel) else 0.0, history["val_weighted_loss"][i])

    def record(at: int) -> tuple[Validation, tuple[float, float]]:
        v = validate(model, val, pad_id, cfg.batch_size, device)
        history["val_step"].append(at)
        history["val_loss"].append(v.loss)
        history["val_weighted_loss"].append(v.weighted_loss)
        history["val_trigger_exact"].append(v.trigger_exact)
        if selection:
            d = decision_score(model, [t for t, _ in selection], [f for _, f in selection], pad_id,
                               cfg.batch_size, device)
            history["sel_fire"].append(d.fire)
            history["sel_hold"].append(d.hold)
            history["sel_decision"].append(d.score)
        return v, rank(len(history["val_loss"]) - 1)

    if not history["val_loss"]:
        best = record(0)[1]
        _save(model, out, cfg)
    first_val = history["val_loss"][0]

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]fine-tuning[/bold] {task.completed}/{task.total}"), BarColumn(),
                   TextColumn("{task.fields[info]}"), TimeRemainingColumn(), disable=not progress)
    order: list[int] = []
    reply_tokens = 0
    with bar:
        task = bar.add_task("train", total=total_steps, completed=step, info=f"val {first_val:.3f}")
        if not isinstance(best, tuple):  # resumed from a checkpoint that ranked by loss alone
            best = (0.0, best)
        while step < total_steps:
            running = 0.0
            for _ in range(cfg.grad_accum):
                if len(order) < cfg.batch_size:
                    order = list(range(len(train)))
                    rng.shuffle(order)
                idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
                batch = {k: v.to(device) for k, v in collate([train[i] for i in idx], pad_id).items()}
                loss, n = reply_loss(model, batch, weighted=True)
                (loss / cfg.grad_accum).backward()
                running += float(loss.detach()) / cfg.grad_accum
                reply_tokens += n
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            lr = _lr_at(step, total_steps, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            history["step"].append(step)
            history["train_loss"].append(running)
            history["lr"].append(lr)
            info = f"loss {running:.3f} · best val {best[1]:.3f}"
            if step % cfg.eval_every == 0 or step == total_steps:
                v, now = record(step)
                if now[0] < best[0] - 1e-9 or (now[0] <= best[0] + 1e-9 and now[1] < best[1] - 1e-4):
                    best, bad_evals = now, 0
                    _save(model, out, cfg)
                else:
                    bad_evals += 1
                info = (f"loss {running:.3f} · val {v.loss:.3f} (weighted {v.weighted_loss:.3f}, best {best[1]:.3f}) "
                        f"· triggers right {100 * v.trigger_exact:.0f}%")
                if selection:
                    info += (f" · selection: fire {100 * history['sel_fire'][-1]:.0f}% hold "
                             f"{100 * history['sel_hold'][-1]:.0f}% (best {-100 * best[0]:.1f})")
                if bad_evals >= cfg.patience:
                    stopped_early = True
            if step % cfg.checkpoint_every == 0 or stopped_early or step == total_steps:
                ckpt.mkdir(parents=True, exist_ok=True)
                torch.save({"model": {k: v for k, v in model.state_dict().items()
                                      if cfg.method == "full" or "lora_" in k},
                            "optimizer": opt.state_dict(), "step": step, "best": best,
                            "bad_evals": bad_evals, "history": history, "rng": rng.getstate()},
                           ckpt / "state.tmp")
                (ckpt / "state.tmp").replace(ckpt / "state.pt")
            bar.update(task, completed=step, info=info)
            if progress and not bar.console.is_terminal:  # a log file gets one line per step instead
                bar.console.print(f"step {step}/{total_steps} · lr {lr:.2e} · {info}", highlight=False)
            if stopped_early:
                break
    seconds = time.perf_counter() - t_start
    history["stopped_early"] = stopped_early
    history["seconds"] = seconds
    (out / "history.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
    kept = min(range(len(history["val_loss"])), key=rank)
    return TrainResult(out, step, history["val_loss"][kept], first_val, history, stopped_early, seconds,
                       reply_tokens / seconds if seconds else 0.0)
