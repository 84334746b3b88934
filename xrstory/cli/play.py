"""``xrstory play SCENE_DIR``: a live session. Typed lines (stdin) or ``--mic`` speech in;
the conversation shows live in the terminal; the story is saved on exit.

``--display auto`` uses an OpenXR runtime when one answers and falls back to headless with a
message; ``--display openxr`` insists (exit 2 with the runtime's own reason when there is none).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from pathlib import Path

import typer
from rich.console import Console


def _stdin_lines(out: queue.Queue) -> None:
    for line in sys.stdin:
        out.put(line.rstrip("\n"))
    out.put(None)  # EOF


def _save_path(save: Path | None, player: str | None, scene_id: str, record: Path | None) -> Path:
    """Where the story is saved. A save holds the player's conversation, so with a player it
    lives in their data folder (``profile delete`` removes it); a path chosen elsewhere, and a
    recording, are registered with their profile so that delete finds them too."""
    if player is None:
        return save or Path("reports/play/save.json")
    from xrstory.director import ProfileConfig, ProfileStore
    from xrstory.director.store import ProfileError

    try:
        with ProfileStore(ProfileConfig()) as store:
            store.ensure_player(player)
            path = save or store.save_path(player, scene_id)
            for f in (path, record):
                if f is not None and not Path(f).resolve().is_relative_to(store.player_dir(player).resolve()):
                    store.register_file(player, f)
    except ProfileError as exc:
        raise ValueError(str(exc)) from None
    return path


def play(scene_dir: Path = typer.Argument(..., help="scene folder"),
         display: str = typer.Option("auto", "--display", help="auto, openxr or headless"),
         mic: bool = typer.Option(False, "--mic", help="listen to the microphone (hands-free)"),
         adapter: str = typer.Option(None, "--adapter", help="LoRA adapter folder (default: the scene's)"),
         base: str = typer.Option(None, "--model", help="base model: HF id/folder or .gguf"),
         chat_template: Path = typer.Option(None, "--chat-template",
                                            help="Jinja chat template file, for a model without one"),
         remote: str = typer.Option(None, "--remote", help="OpenAI-compatible server URL"),
         engine: str = typer.Option("auto", "--engine", help="auto (torch with CUDA, llama.cpp on a CPU), "
                                    "llamacpp, torch or remote (with --remote)"),
         threads: int = typer.Option(None, "--threads", min=1, help="CPU threads of the decoding engine"),
         resume: Path = typer.Option(None, "--resume", help="a save to continue from"),
         save: Path = typer.Option(None, "--save", help="where the story is saved (default: with --player, "
                                                        "the player's data folder; else reports/play/save.json)"),
         record: Path = typer.Option(None, "--record", help="write what the player heard to this WAV"),
         player: str = typer.Option(None, "--player", help="player id (keeps a profile for personalization)"),
         eye_size: str = typer.Option("640x640", "--eye-size", help="headless pixels per eye, WxH"),
         frames: int = typer.Option(0, "--frames", help="stop after this many frames (0: until quit/EOF)")):
    """Play a scene live: type (or speak with --mic) to the characters."""
    from xrstory.cli.session_options import eye_size_of, say_engine
    from xrstory.playthrough.console import ConversationPrinter
    from xrstory.runtime.config import SessionConfig
    from xrstory.runtime.launch import (
        DisplayUnavailable,
        drive,
        load_for,
        open_display,
        resolve_display,
    )
    from xrstory.runtime.session import Session
    from xrstory.story import SceneError, load_scene, load_state, save_state
    from xrstory.story.saves import SaveError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    console, err = Console(), Console(stderr=True)
    if display not in ("auto", "openxr", "headless"):
        err.print(f"[red]error[/red] --display must be auto, openxr or headless, got '{display}'")
        raise typer.Exit(2)
    try:
        scene = load_scene(scene_dir)
        state = load_state(resume, scene) if resume else None  # checked against the scene
    except SceneError as exc:
        for issue in exc.issues:
            err.print(f"[red]error[/red] {issue}", highlight=False)
        raise typer.Exit(2) from None
    except SaveError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    try:
        save = _save_path(save, player, scene.scene.id, record)
    except ValueError as exc:  # ProfileError: a bad player id or an unreadable profile folder
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    w, h = eye_size_of(eye_size, err)
    say_engine(engine, scene, base, remote, adapter, console, err)  # a bad --engine exits 2 here
    config = SessionConfig(scene_dir=scene_dir, adapter=adapter, base_model=base, remote_url=remote,
                           display=display, eye_size=(w, h), player_id=player, keep_audio=record is not None,
                           chat_template=chat_template, engine=engine, engine_threads=threads)
    try:
        config = resolve_display(config, scene, say=lambda m: console.print(f"[yellow]{m}[/yellow]", highlight=False))
    except DisplayUnavailable as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    from xrstory.mind.errors import ModelLoadError

    try:
        with console.status("loading models…") as status:
            components = load_for(config, scene, progress=status.update)
    except (ModelLoadError, FileNotFoundError) as exc:  # a bad model, adapter or template file: named
        err.print(f"[red]error[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    holder: dict = {}

    def save_now(reason: str = "exit") -> None:
        if "session" in holder:
            save_state(holder["session"].story.state, save)
            console.print(f"[dim]story saved to {save} ({reason})[/dim]")

    def on_state(old, new):
        console.print(f"[dim]OpenXR session {old} → {new}[/dim]")

    try:
        disp = open_display(config, scene, on_save=save_now, on_state=on_state)
    except DisplayUnavailable as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        components.close()
        raise typer.Exit(2) from None
    console.print(f"[bold]{scene.scene.title}[/bold] — {scene.scene.description}\n"
                  f"display: {getattr(disp, 'name', config.display)}; "
                  + ("speak into the microphone" if mic else "type a line and press Enter; 'quit' to stop"))
    lines: queue.Queue = queue.Queue()
    quitting = []

    def after_tick(frame) -> bool:
        session = holder["session"]
        while not lines.empty():
            text = lines.get_nowait()
            if text is None or text.strip().lower() in ("quit", "exit"):
                quitting.append(True)
            elif text.strip():
                session.player_says_text(text.strip())
        return ((bool(quitting) and not session.busy) or (session.story.state.ended is not None and not session.busy)
                or bool(frames and frame.index + 1 >= frames))

    with components, Session(config, components, scene, state, display=disp,
                             on_event=ConversationPrinter(scene, console)) as session:
        holder["session"] = session
        if mic:
            from xrstory.voice.sources import MicSource

            source = MicSource()
            threading.Thread(target=lambda: [session.queue_microphone(c) for c in source.chunks()],
                             name="mic", daemon=True).start()
        else:
            threading.Thread(target=_stdin_lines, args=(lines,), name="stdin", daemon=True).start()
        try:
            drive(disp, session, after_tick)
        finally:
            save_now("exit")
            if record is not None:
                from xrstory.voice.audio import write_wav
                from xrstory.voice.mixer import MIX_RATE

                write_wav(record, session.mix(), MIX_RATE)
            disp.__exit__(None, None, None)
