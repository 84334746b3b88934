"""``xrstory run PLAYTHROUGH... [--report DIR]``: scripted headless sessions, exit 0 when every
expectation holds, 1 when one fails, 2 when a script or scene is malformed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console


def run(playthroughs: list[Path] = typer.Argument(..., help="playthrough scripts (.play)"),
        report: Path = typer.Option(Path("reports/run"), "--report", help="report folder"),
        adapter: str = typer.Option(None, "--adapter", help="LoRA adapter folder (default: the scene's)"),
        base: str = typer.Option(None, "--model", help="base model: HF id/folder or .gguf (default: SmolLM2-135M)"),
        remote: str = typer.Option(None, "--remote", help="OpenAI-compatible server URL instead of the local model"),
        engine: str = typer.Option("auto", "--engine", help="auto (torch with CUDA, llama.cpp on a CPU), "
                                   "llamacpp, torch or remote (with --remote)"),
        threads: int = typer.Option(None, "--threads", min=1, help="CPU threads of the decoding engine"),
        eye_size: str = typer.Option("256x256", "--eye-size", help="pixels per eye, WxH"),
        fast: bool = typer.Option(False, "--fast", help="do not pace the frame loop to the wall clock"),
        player: str = typer.Option(None, "--player", help="player id: keep a profile for personalization")):
    """Run playthrough scripts headless with real speech, model and rendering; write reports."""
    from xrstory.cli.session_options import eye_size_of, say_engine
    from xrstory.playthrough.console import ConversationPrinter
    from xrstory.playthrough.runner import PlaythroughRunner
    from xrstory.playthrough.script import PlaythroughSyntaxError, check_inputs, parse_playthrough
    from xrstory.runtime.config import SessionConfig
    from xrstory.runtime.launch import load_for
    from xrstory.story import SceneError, load_scene

    console = Console()
    err = Console(stderr=True)
    try:
        scripts = [parse_playthrough(p) for p in playthroughs]
        scenes = {str(s.scene_dir): load_scene(s.scene_dir) for s in scripts}
        for s in scripts:
            check_inputs(s, scenes[str(s.scene_dir)])  # saves and audio files, before models load
    except PlaythroughSyntaxError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except SceneError as exc:
        for issue in exc.issues:
            err.print(f"[red]error[/red] {issue}", highlight=False)
        raise typer.Exit(2) from None
    w, h = eye_size_of(eye_size, err)
    say_engine(engine, next(iter(scenes.values())), base, remote, adapter, console, err)
    failed = 0
    scene = next(iter(scenes.values()))
    base_config = SessionConfig(scene_dir=scripts[0].scene_dir, adapter=adapter, base_model=base, remote_url=remote,
                                eye_size=(w, h), realtime=not fast, player_id=player, engine=engine,
                                engine_threads=threads)
    with console.status("loading models…") as status:
        components = load_for(base_config, scene, progress=lambda m: status.update(m))
    console.print(f"models loaded ({', '.join(f'{k} {v:.1f}s' for k, v in components.load_s.items())})"
                  + (f"; adapter {components.adapter}" if components.adapter else "; base model, no adapter"))
    with components:
        for pt in scripts:
            scene = scenes[str(pt.scene_dir)]
            console.rule(f"{pt.name}: {pt.title}")
            config = replace(base_config, scene_dir=pt.scene_dir)  # one loaded model, each script its scene
            runner = PlaythroughRunner(components, config, report, on_event=ConversationPrinter(scene, console))
            result = runner.run(pt)
            if player is not None:  # the report holds the player's conversation: delete must find it
                register_report(player, report / pt.name)
            from xrstory.playthrough.report import metrics_of

            m = metrics_of(result)
            v2v = m["voice_to_voice_ms"]["median"]
            if result.passed:
                console.print(f"[green]PASSED[/green] {pt.name} in {result.seconds:.0f} s; median voice-to-voice "
                              f"{v2v} ms; report {report / pt.name / 'report.html'}")
            else:
                failed += 1
                console.print(f"[red]FAILED[/red] {pt.name}: {len(result.failures)} expectation(s)")
                for f in result.failures:
                    console.print(f"  {f}", highlight=False)
                console.print(f"  report {report / pt.name / 'report.html'}")
    raise typer.Exit(1 if failed else 0)


def register_report(player: str, folder: Path, data_dir: Path | None = None) -> None:
    """Register every file of a playthrough's report with the player's profile, so that
    ``xrstory profile delete`` removes (and lists) them."""
    from xrstory.director import ProfileConfig, ProfileStore

    config = ProfileConfig(data_dir=data_dir) if data_dir else ProfileConfig()
    with ProfileStore(config) as store:
        store.ensure_player(player)
        for f in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if f.is_file():
                store.register_file(player, f)

