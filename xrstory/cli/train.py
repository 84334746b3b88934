"""``xrstory finetune`` and ``xrstory eval``: the train layer's commands (registered in ``xrstory/cli/__init__.py``).

    xrstory finetune scenes/lighthouse --method lora --out assets/adapters/lighthouse
    xrstory eval scenes/lighthouse --adapter assets/adapters/lighthouse --json --out reports/eval

Exit codes: 0 ok, 2 bad input (scene, corpus line, adapter folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

err = Console(stderr=True)
out = Console()


def _scene_and_splits(scene_dir: Path, seed: int, transcripts: list[Path]):
    from xrstory.story import SceneError, load_scene
    from xrstory.train.dataset import DatasetError, load_splits

    try:
        scene = load_scene(scene_dir)
        return scene, load_splits(scene, seed=seed, transcripts=transcripts)
    except SceneError as exc:
        for issue in exc.issues:
            err.print(f"[red]error[/red] {issue}", highlight=False, soft_wrap=True)
    except DatasetError as exc:
        for p in exc.problems:
            err.print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def finetune(
    scene_dir: Path = typer.Argument(..., help="scene folder with scene.toml and dialogue.jsonl"),
    method: str = typer.Option("lora", "--method", help="lora or full"),
    out_dir: Path = typer.Option(..., "--out", help="folder for the adapter (or model), config and history"),
    epochs: float = typer.Option(3.0, "--epochs"),
    max_steps: int | None = typer.Option(None, "--max-steps", help="optimizer steps; overrides --epochs"),
    lr: float | None = typer.Option(None, "--lr", help="default 3e-4 (lora) / 3e-5 (full)"),
    rank: int = typer.Option(16, "--rank", help="LoRA rank r"),
    alpha: int = typer.Option(32, "--alpha", help="LoRA alpha"),
    dropout: float = typer.Option(0.05, "--dropout", help="LoRA dropout"),
    target_modules: str = typer.Option("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                                       "--target-modules", help="comma-separated module names"),
    lora_layers: int | None = typer.Option(None, "--lora-layers", help="adapt only the last N decoder layers"),
    batch_size: int = typer.Option(4, "--batch-size"),
    grad_accum: int = typer.Option(2, "--grad-accum"),
    max_length: int = typer.Option(1024, "--max-length", help="longer examples are dropped (and counted)"),
    trigger_weight: float = typer.Option(4.0, "--trigger-weight",
                                         help="training-loss weight of the reply's trigger tokens"),
    eval_every: int = typer.Option(10, "--eval-every", help="optimizer steps between validation passes"),
    patience: int = typer.Option(4, "--patience", help="validation passes without improvement before stopping"),
    warmup_ratio: float = typer.Option(0.06, "--warmup-ratio"),
    weight_decay: float = typer.Option(0.01, "--weight-decay"),
    schedule: str = typer.Option("cosine", "--schedule", help="cosine, linear or constant"),
    limit_train: int | None = typer.Option(None, "--limit-train", help="first N training examples only"),
    limit_eval: int | None = typer.Option(None, "--limit-eval", help="first N validation examples only"),
    transcripts: list[Path] = typer.Option([], "--transcript", help="playthrough transcript.jsonl (repeatable)"),
    model: str | None = typer.Option(None, "--model", help="base model: HF id, folder or .gguf (default SmolLM2)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (bf16 on GPU, fp32 on CPU)"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint"),
    seed: int = typer.Option(0, "--seed"),
    split_seed: int = typer.Option(1234, "--split-seed", help="seed of the train/validation/test split"),
):
    """Fine-tune the scene's model on its dialogue (LoRA or full); keep the best by validation loss."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from xrstory.train.config import TrainConfig

    if method not in ("lora", "full"):
        err.print(f"[red]error[/red] --method '{method}': expected 'lora' or 'full'")
        raise typer.Exit(2)
    if schedule not in ("cosine", "linear", "constant"):
        err.print(f"[red]error[/red] --schedule '{schedule}': expected cosine, linear or constant")
        raise typer.Exit(2)
    cfg = TrainConfig(method=method, epochs=epochs, max_steps=max_steps, learning_rate=lr, weight_decay=weight_decay,
                      warmup_ratio=warmup_ratio, schedule=schedule, batch_size=batch_size, grad_accum=grad_accum,
                      max_length=max_length, lora_r=rank, lora_alpha=alpha, lora_dropout=dropout,
                      target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
                      lora_layers=lora_layers, trigger_weight=trigger_weight, eval_every=eval_every,
                      patience=patience, seed=seed,
                      limit_train=limit_train, limit_eval=limit_eval, device=device,
                      extra={"scene": str(scene_dir), "split_seed": split_seed, "base_model": model or "default",
                             "transcripts": [str(t) for t in transcripts]})
    scene, splits = _scene_and_splits(scene_dir, split_seed, transcripts)
    err.print(f"examples: {splits.sizes()}")

    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.train.trainer import finetune as run_finetune

    with load_language_model(ModelSpec(source=model, device=device)) as lm:  # type: ignore[arg-type]
        err.print(f"base model {lm.source} on {lm.device} ({lm.dtype})")
        result = run_finetune(lm.model, lm.tokenizer, splits, cfg, out_dir, resume=resume, base_source=lm.source)
    out.print(f"[green]done[/green] {result.steps} steps in {result.seconds:.0f} s; validation loss "
              f"{result.first_val_loss:.3f} -> best {result.best_val_loss:.3f}"
              + (" (stopped early)" if result.stopped_early else "") + f"; saved in {result.out_dir}")


def evaluate(
    scene_dir: Path = typer.Argument(..., help="scene folder"),
    adapter: Path | None = typer.Option(None, "--adapter", help="LoRA adapter folder (default: the scene's own)"),
    json_out: bool = typer.Option(False, "--json", help="print the metrics as JSON"),
    out_dir: Path | None = typer.Option(None, "--out", help="write metrics.json and report.html here"),
    limit: int | None = typer.Option(None, "--limit", help="first N test examples only"),
    model: str | None = typer.Option(None, "--model", help="base model (default SmolLM2)"),
    device: str = typer.Option("auto", "--device"),
    split_seed: int = typer.Option(1234, "--split-seed"),
    engine: str = typer.Option("torch", "--engine", help="engine of the constrained replies: torch (default, the "
                                                         "trained weights), llamacpp, or auto"),
):
    """Base vs fine-tuned on the held-out test split: perplexity, triggers, parse rate, persona."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    scene, splits = _scene_and_splits(scene_dir, split_seed, [])
    if adapter is None and getattr(scene.scene, "adapter", None):
        adapter = (Path(scene.folder) / scene.scene.adapter).resolve()
    if adapter is None:
        err.print("[red]error[/red] no --adapter given and the scene names none (scene.toml 'adapter')")
        raise typer.Exit(2)
    if not (adapter / "adapter_config.json").is_file():
        err.print(f"[red]error[/red] {adapter}: not a PEFT adapter folder (no adapter_config.json)")
        raise typer.Exit(2)

    from xrstory.mind.engine import choose_engine
    from xrstory.train.evaluate import EvalConfig, compare

    try:
        engine_name, engine_why = choose_engine(engine, model=model, adapter=adapter)
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    if engine_name == "remote":
        err.print("[red]error[/red] --engine remote: eval runs a local model")
        raise typer.Exit(2)
    err.print(f"replies decode on {engine_name} ({engine_why})")
    cfg = EvalConfig(model=model, device=device, limit=limit, engine=engine_name)
    result = compare(scene, splits, adapter, cfg, progress=not json_out)
    if out_dir is not None:
        from xrstory.train.report import write_report

        write_report(result, out_dir, adapter)
        err.print(f"report: {out_dir / 'report.html'}")
    if json_out:
        print(json.dumps(result, indent=2))
    else:
        from rich.table import Table

        t = Table(title=f"held-out test split ({result['base']['n_test']} turns)")
        for col in ("metric", "base", "fine-tuned", "delta"):
            t.add_column(col)
        for k, v in result["base"].items():
            if k == "n_test":
                continue
            t.add_row(k, f"{v:.3f}", f"{result['adapter'][k]:.3f}", f"{result['delta'][k]:+.3f}")
        out.print(t)
