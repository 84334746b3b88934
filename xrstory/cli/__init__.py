"""The ``xrstory`` command. Thin: parses arguments, calls the layers, prints.

Heavy imports (torch, whisper) happen inside commands, so ``validate`` and ``schema`` are fast.
Exit codes: 0 ok, 1 a check failed (e.g. a playthrough expectation), 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import rich.markup
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="xrstory: spatial, spoken stories. Scenes in, conversation out.")
console = Console()
err = Console(stderr=True)


@app.command()
def validate(scene_dirs: list[Path] = typer.Argument(..., help="scene folders (or scene.toml files)")):
    """Check scene files; report every problem with file, line, field path and a suggestion."""
    from xrstory.story import SceneError, load_scene

    failed = False
    for folder in scene_dirs:
        try:
            scene = load_scene(folder)
        except SceneError as exc:
            failed = True
            for issue in exc.issues:
                # escape: a path or value like "[props]" must print as written, not as markup
                err.print(f"[red]error[/red] {rich.markup.escape(str(issue))}", highlight=False, soft_wrap=True)
            continue
        console.print(f"[green]ok[/green] {folder}: '{scene.scene.title}' — {len(scene.characters)} characters, "
                      f"{len(scene.triggers)} triggers, {len(scene.beats)} beats, {len(scene.props)} props")
    raise typer.Exit(2 if failed else 0)


@app.command()
def schema():
    """Print the JSON Schema of the scene format (for editors' autocompletion)."""
    from xrstory.story.scene import scene_json_schema

    print(json.dumps(scene_json_schema(), indent=2))


@app.command()
def info(json_out: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Versions, devices, and each default model: where it was found and whether it loads."""
    from xrstory.info import devices, engines, probe_models, versions

    probes = probe_models()
    if json_out:
        print(json.dumps({"versions": versions(), "devices": devices(), "engines": engines(),
                          "models": [p.__dict__ for p in probes]}, indent=2))
    else:
        t = Table(title="xrstory")
        t.add_column("component")
        t.add_column("version / device")
        for k, v in {**versions(), **devices()}.items():
            t.add_row(k, v)
        console.print(t)
        m = Table(title="default models")
        for col in ("role", "found at", "loads", "detail", "s"):
            m.add_column(col, overflow="fold")
        for p in probes:
            m.add_row(p.role, p.location, "[green]yes[/green]" if p.loads else "[red]no[/red]", p.detail,
                      f"{p.seconds:.1f}")
        console.print(m)
        e = Table(title="decoding engine per command (--engine auto)")
        for col in ("command", "engine", "why"):
            e.add_column(col, overflow="fold")
        for row in engines():
            e.add_row(row["command"], row["engine"], row["why"])
        console.print(e)
    raise typer.Exit(0 if all(p.loads for p in probes) else 1)


# Commands of the other layers register here, one line each (keep this file thin). Each module
# imports its heavy dependencies inside the command, so `xrstory validate` stays quick.
from xrstory.cli.ask import ask  # noqa: E402
from xrstory.cli.bench import bench_command  # noqa: E402
from xrstory.cli.play import play  # noqa: E402
from xrstory.cli.profile import profile_app  # noqa: E402
from xrstory.cli.render import render_command  # noqa: E402
from xrstory.cli.run import run  # noqa: E402
from xrstory.cli.serve import serve_command  # noqa: E402
from xrstory.cli.train import evaluate as eval_command  # noqa: E402
from xrstory.cli.train import finetune as finetune_command  # noqa: E402
from xrstory.cli.voice import hear, say  # noqa: E402

app.command("render")(render_command)
app.command("hear")(hear)
app.command("say")(say)
app.command("ask")(ask)
app.command("serve")(serve_command)
app.command("play")(play)
app.command("run")(run)
app.command("finetune")(finetune_command)
app.command("eval")(eval_command)
app.command("bench")(bench_command)
app.add_typer(profile_app, name="profile")

