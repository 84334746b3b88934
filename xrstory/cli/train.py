"""``xrstory finetune`` and ``xrstory eval``: the train layer's commands (registered in ``xrstory/cli/__init__.py``).

    xrstory finetune scenes/lighthouse --method lora --out assets/adapters/lighthouse
    xrstory finetune corpus/night_train --dry-run        # corpus + curriculum: counts per kind, a sample
    xrstory finetune corpus --general --out assets/adapters/general   # every non-held-out corpus scene
    xrstory finetune corpus/night_train --build-corpus   # dialogue.txt -> dialogue.jsonl
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


def _scene_and_splits(scene_dir: Path, seed: int, transcripts: list[Path], adapter: Path | None = None):
    """The scene and its splits; a scene with no dialogue.jsonl is split from its curriculum, generated
    as the adapter's training generated it (``train_config.json``), so its test turns are unseen."""
    from xrstory.story import SceneError, load_scene
    from xrstory.train.dataset import DatasetError, load_splits

    try:
        scene = load_scene(scene_dir)
        if not (Path(scene.folder) / "dialogue.jsonl").is_file() and not transcripts:
            from xrstory.train.corpus_set import scene_splits
            from xrstory.train.curriculum import CurriculumConfig

            extra, run_seed = {}, 0
            if adapter is not None and (adapter / "train_config.json").is_file():
                saved = json.loads((adapter / "train_config.json").read_text(encoding="utf-8"))
                extra, run_seed = saved.get("extra", {}), saved.get("seed", 0)
            # an adapter trained before the balancing has no "curriculum_fire_share": its walk was unbalanced
            share = extra.get("curriculum_fire_share", None if extra else CurriculumConfig.fire_share)
            cur = CurriculumConfig(conversations=extra.get("curriculum_conversations") or 120, seed=run_seed,
                                   fire_share=share)
            err.print(f"{scene_dir}: no dialogue.jsonl; test turns from its curriculum "
                      f"({cur.conversations} conversations, seed {cur.seed})", soft_wrap=True)
            return scene, scene_splits(scene, cur, seed=seed)
        return scene, load_splits(scene, seed=seed, transcripts=transcripts)
    except SceneError as exc:
        for issue in exc.issues:
            err.print(f"[red]error[/red] {issue}", highlight=False, soft_wrap=True)
    except DatasetError as exc:
        for p in exc.problems:
            err.print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _print_problems(exc) -> None:
    from xrstory.story import SceneError

    for p in (exc.issues if isinstance(exc, SceneError) else exc.problems):
        err.print(f"[red]error[/red] {p}", highlight=False, soft_wrap=True)


def _training_splits(scene_dir: Path, general: bool, curriculum: bool, conversations: int, corpus_weight: int,
                     split_seed: int, seed: int, transcripts: list[Path], use_corpus: bool = True,
                     fire_share: float = 0.5):
    """(splits, what they were built from) for finetune; exits 2 on a bad scene, corpus or split file."""
    from xrstory.story import SceneError, load_scene
    from xrstory.train.corpus_script import ScriptError
    from xrstory.train.corpus_set import general_splits, scene_splits
    from xrstory.train.curriculum import CurriculumConfig
    from xrstory.train.dataset import DatasetError
    cur = CurriculumConfig(conversations=conversations, seed=seed, fire_share=fire_share) if curriculum else None
    try:
        if general:
            splits, used = general_splits(scene_dir, cur, corpus_weight, split_seed)
            picked = sorted({e.scene_id for e in splits.selection})
            return splits, (f"general: {len(used)} scenes ({', '.join(used)}), held-out scenes not read"
                            + (f"; checkpoint chosen on the unseen scenes {', '.join(picked)}" if picked else ""))
        scene = load_scene(scene_dir)
        splits = scene_splits(scene, cur, corpus_weight, split_seed, transcripts=transcripts, use_corpus=use_corpus)
        return splits, f"scene {scene.scene.id}" + ("" if use_corpus else " (its dialogue.jsonl not read)") + (
            " + curriculum" if cur else "") + (f"; checkpoint chosen on its {len(splits.selection)} hand-written "
                                                "validation turns" if splits.selection else "")
    except (SceneError, DatasetError, ScriptError) as exc:
        _print_problems(exc)
    except (FileNotFoundError, NotADirectoryError) as exc:
        err.print(f"[red]error[/red] {exc}")
    raise typer.Exit(2)


def _dry_run(splits, source: str) -> None:
    import random
    from collections import Counter

    from rich.table import Table

    t = Table(title=f"{source}: examples per kind")
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    if splits.selection:
        parts["selection"] = splits.selection
    for col in ("kind", *parts):
        t.add_column(col)
    counts = {name: Counter(e.kind or "unlabelled" for e in ex) for name, ex in parts.items()}
    for kind in sorted(set().union(*counts.values())):
        t.add_row(kind, *(str(counts[name][kind]) for name in parts))
    t.add_row("all", *(str(len(ex)) for ex in parts.values()))
    out.print(t)
    for e in random.Random(0).sample(splits.train, min(10, len(splits.train))):
        out.print(f"[bold]{e.kind or '-'}[/bold] {e.scene_id}/{e.character} <- {e.player!r}\n    -> {e.target}",
                  highlight=False, soft_wrap=True)


def finetune(
    scene_dir: Path = typer.Argument(..., help="scene folder (its dialogue.jsonl is optional), or with --general "
                                               "the corpus folder"),
    method: str = typer.Option("lora", "--method", help="lora or full"),
    out_dir: Path | None = typer.Option(None, "--out", help="folder for the adapter (or model), config and history"),
    general: bool = typer.Option(False, "--general", help="SCENE_DIR is corpus/: train one adapter on all its "
                                                          "scenes except those corpus/split.toml holds out"),
    curriculum: bool = typer.Option(True, "--curriculum/--no-curriculum",
                                    help="add turns generated from the scene graph (xrstory.train.curriculum)"),
    conversations: int = typer.Option(120, "--conversations", help="curriculum conversations per scene"),
    corpus_weight: int = typer.Option(2, "--corpus-weight", help="hand-written training lines count this many times"),
    fire_share: float | None = typer.Option(None, "--fire-share",
                                            help="share of curriculum turns that fire, after balancing, "
                                                 "between 0 and 1 (default 0.5; the other kinds are thinned evenly)"),
    use_corpus: bool = typer.Option(True, "--corpus/--no-corpus", help="--no-corpus: do not read the scene's "
                                    "dialogue.jsonl (train a held-out scene's own adapter on its curriculum alone)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the counts per kind and a sample; do not train"),
    build_corpus: bool = typer.Option(False, "--build-corpus", help="write SCENE_DIR/dialogue.jsonl from its "
                                                                    "dialogue.txt script and exit"),
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
    limit_selection: int | None = typer.Option(None, "--limit-selection", min=1,
                                               help="N of the turns that choose the checkpoint (with --general: "
                                                    "the validation scenes' of corpus/split.toml; else the scene's "
                                                    "hand-written validation turns), spread over them"),
    transcripts: list[Path] = typer.Option([], "--transcript", help="playthrough transcript.jsonl (repeatable)"),
    model: str | None = typer.Option(None, "--model", help="base model: HF id, folder or .gguf (default SmolLM2)"),
    chat_template: Path | None = typer.Option(None, "--chat-template",
                                              help="Jinja chat template file, for a model without one (a base GGUF)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (bf16 on GPU, fp32 on CPU)"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint"),
    init_adapter: Path | None = typer.Option(None, "--init-adapter",
                                             help="start from this adapter's weights (same rank, modules, layers)"),
    seed: int = typer.Option(0, "--seed"),
    split_seed: int = typer.Option(1234, "--split-seed", help="seed of the train/validation/test split"),
    threads: int | None = typer.Option(None, "--threads", min=1,
                                       help="torch CPU threads (default: torch's). On a 2-core machine shared with "
                                            "other work, 1 is ~3x faster than 2 (docs/FINETUNING.md)"),
):
    """Fine-tune on a scene's dialogue and curriculum, or (--general) on the corpus; keep the best by validation."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from xrstory.train.config import TrainConfig
    from xrstory.train.curriculum import CurriculumConfig

    if build_corpus:
        _build_corpus(scene_dir)
        return

    if method not in ("lora", "full"):
        err.print(f"[red]error[/red] --method '{method}': expected 'lora' or 'full'")
        raise typer.Exit(2)
    fire_share = CurriculumConfig.fire_share if fire_share is None else fire_share
    if not 0.0 < fire_share < 1.0:
        err.print(f"[red]error[/red] --fire-share {fire_share}: expected a share between 0 and 1 (exclusive)")
        raise typer.Exit(2)
    if schedule not in ("cosine", "linear", "constant"):
        err.print(f"[red]error[/red] --schedule '{schedule}': expected cosine, linear or constant")
        raise typer.Exit(2)
    cfg = TrainConfig(method=method, epochs=epochs, max_steps=max_steps, learning_rate=lr, weight_decay=weight_decay,
                      warmup_ratio=warmup_ratio, schedule=schedule, batch_size=batch_size, grad_accum=grad_accum,
                      max_length=max_length, lora_r=rank, lora_alpha=alpha, lora_dropout=dropout,
                      target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
                      lora_layers=lora_layers, trigger_weight=trigger_weight, eval_every=eval_every,
                      patience=patience, seed=seed, init_adapter=str(init_adapter) if init_adapter else None,
                      limit_train=limit_train, limit_eval=limit_eval, limit_selection=limit_selection,
                      device=device,
                      extra={"scene": str(scene_dir), "split_seed": split_seed, "base_model": model or "default",
                             "transcripts": [str(t) for t in transcripts]})
    cfg.extra.update({"general": general, "curriculum_conversations": conversations if curriculum else 0,
                      "curriculum_fire_share": fire_share, "corpus_weight": corpus_weight})
    if not use_corpus and not curriculum:
        err.print("[red]error[/red] --no-corpus with --no-curriculum leaves nothing to train on")
        raise typer.Exit(2)
    cfg.extra["use_corpus"] = use_corpus
    splits, source = _training_splits(scene_dir, general, curriculum, conversations, corpus_weight, split_seed,
                                      seed, transcripts, use_corpus, fire_share)
    if dry_run:
        _dry_run(splits, source)
        return
    if out_dir is None:
        err.print("[red]error[/red] --out is required unless --dry-run or --build-corpus")
        raise typer.Exit(2)
    err.print(f"{source}; examples: {splits.sizes()}", soft_wrap=True, highlight=False)

    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.train.trainer import finetune as run_finetune

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    from xrstory.mind.loader import ModelEnvironmentError, ModelLoadError

    try:
        loaded = load_language_model(ModelSpec(source=model, device=device,  # type: ignore[arg-type]
                                               chat_template=chat_template))
    except ModelEnvironmentError as exc:  # the input is fine; this machine cannot run it
        err.print(f"[red]error[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(3) from None
    except (FileNotFoundError, ModelLoadError) as exc:  # a bad file, folder or id, or no chat template
        err.print(f"[red]error[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    with loaded as lm:
        err.print(f"base model {lm.source} on {lm.device} ({lm.dtype})")
        result = run_finetune(lm.model, lm.tokenizer, splits, cfg, out_dir, resume=resume, base_source=lm.source)
    out.print(f"[green]done[/green] {result.steps} steps in {result.seconds:.0f} s; validation loss "
              f"{result.first_val_loss:.3f} -> best {result.best_val_loss:.3f}"
              + (" (stopped early)" if result.stopped_early else "") + f"; saved in {result.out_dir}")


def _build_corpus(scene_dir: Path) -> None:
    from xrstory.story import SceneError, load_scene
    from xrstory.train.corpus_script import ScriptError, write_corpus

    try:
        scene = load_scene(scene_dir)
        if not (Path(scene_dir) / "dialogue.txt").is_file():
            err.print(f"[red]error[/red] {Path(scene_dir) / 'dialogue.txt'}: not found")
            raise typer.Exit(2)
        path = write_corpus(scene, Path(scene_dir))
    except (SceneError, ScriptError) as exc:
        _print_problems(exc)
        raise typer.Exit(2) from None
    n = len(path.read_text(encoding="utf-8").splitlines())
    out.print(f"[green]wrote[/green] {path}: {n} lines")


def evaluate(
    scene_dir: Path = typer.Argument(..., help="scene folder"),
    adapter: Path | None = typer.Option(None, "--adapter", help="LoRA adapter folder (default: the scene's own)"),
    json_out: bool = typer.Option(False, "--json", help="print the metrics as JSON"),
    out_dir: Path | None = typer.Option(None, "--out", help="write metrics.json and report.html here"),
    limit: int | None = typer.Option(None, "--limit", help="first N test examples only"),
    model: str | None = typer.Option(None, "--model", help="base model (default SmolLM2)"),
    chat_template: Path | None = typer.Option(None, "--chat-template",
                                              help="with --heldout: Jinja chat template file, for a model without one"),
    device: str = typer.Option("auto", "--device"),
    split_seed: int = typer.Option(1234, "--split-seed"),
    heldout: bool = typer.Option(False, "--heldout", help="SCENE_DIR is corpus/: score base (and --adapter) on the "
                                                          "held-out scenes with the narrative metrics"),
    engine: str = typer.Option("torch", "--engine", help="engine of the constrained replies: torch (default, the "
                                                         "trained weights), llamacpp, or auto"),
    scene_adapters: Path | None = typer.Option(None, "--scene-adapters", help="with --heldout: a folder of per-scene "
                                               "adapters (DIR/<scene id>/), scored as a third side"),
):
    """Base vs fine-tuned on the held-out test split: perplexity, triggers, parse rate, persona."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if heldout:
        _evaluate_heldout(scene_dir, adapter, json_out, out_dir, limit, model, device, engine, scene_adapters,
                          chat_template)
        return
    from xrstory.story import SceneError, load_scene

    try:
        loaded = load_scene(scene_dir)
    except SceneError as exc:
        _print_problems(exc)
        raise typer.Exit(2) from None
    if adapter is None and loaded.scene.adapter:
        adapter = (Path(loaded.folder) / loaded.scene.adapter).resolve()
    if adapter is None:
        err.print("[red]error[/red] no --adapter given and the scene names none (scene.toml 'adapter')")
        raise typer.Exit(2)
    if not (adapter / "adapter_config.json").is_file():
        err.print(f"[red]error[/red] {adapter}: not a PEFT adapter folder (no adapter_config.json)")
        raise typer.Exit(2)
    scene, splits = _scene_and_splits(scene_dir, split_seed, [], adapter)

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


def _evaluate_heldout(corpus_dir: Path, adapter: Path | None, json_out: bool, out_dir: Path | None,
                      limit: int | None, model: str | None, device: str, engine: str = "torch",
                      scene_adapters: Path | None = None, chat_template: Path | None = None) -> None:
    from xrstory.mind.errors import ModelLoadError
    from xrstory.train.dataset import DatasetError
    from xrstory.train.heldout_eval import evaluate_heldout

    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        err.print(f"[red]error[/red] {adapter}: not a PEFT adapter folder (no adapter_config.json)")
        raise typer.Exit(2)
    if scene_adapters is not None and not scene_adapters.is_dir():
        err.print(f"[red]error[/red] --scene-adapters {scene_adapters}: not a folder")
        raise typer.Exit(2)
    if engine not in ("torch", "llamacpp", "auto"):
        err.print(f"[red]error[/red] --engine '{engine}': eval runs torch, llamacpp or auto")
        raise typer.Exit(2)
    try:
        result = evaluate_heldout(corpus_dir, str(adapter) if adapter else None, model, device, limit,
                                  on_turn=None if json_out else lambda side, n: err.print(f"{side}: {n} turns",
                                                                                          end="\r"),
                                  engine=engine, scene_adapters=scene_adapters,
                                  chat_template=str(chat_template) if chat_template else None)
    except DatasetError as exc:
        _print_problems(exc)
        raise typer.Exit(2) from None
    except (FileNotFoundError, NotADirectoryError, ModelLoadError) as exc:  # ModelLoadError: e.g. no chat template
        err.print(f"[red]error[/red] {exc}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    if out_dir is not None:
        from xrstory.train.heldout_report import write_heldout_report

        err.print(f"report: {write_heldout_report(result, out_dir)}")
    if json_out:
        print(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2))
        return
    from rich.table import Table

    sides = result["sides"]
    t = Table(title=f"held-out scenes (narrative metrics, percent; {engine})")
    t.add_column("scene")
    t.add_column("metric")
    for side in sides:
        t.add_column(side)
    for scene_id in sides["base"]:
        for k in sides["base"][scene_id]:
            t.add_row(scene_id, k, *(f"{sides[side][scene_id].get(k, float('nan')):.1f}" if scene_id in sides[side]
                                     else "-" for side in sides))
    out.print(t)
