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

EXIT_GRACE_FRAMES = 120  # frames the display may take to end after request_exit (Monado: ~3)


def _stdin_lines(out: queue.Queue) -> None:
    for line in sys.stdin:
        out.put(line.rstrip("\n"))
    out.put(None)  # EOF


def _probe_openxr(scene) -> tuple[str, str] | None:
    """Why no OpenXR runtime can be used, as (short reason, full message with the --display headless
    hint); None when one answers. An instance and its HMD system are made and dropped again, so a
    missing runtime is reported before the models load (~20 s)."""
    try:
        from xrstory.xr.openxr import OpenXRConfig, OpenXRUnavailable
        from xrstory.xr.openxr.instance import XrInstance
    except ImportError as exc:  # pyopenxr missing: same outcome as no runtime
        why = f"OpenXR support is not installed ({exc})"
        return why, f"{why}; run with --display headless to play without a headset"
    try:
        with XrInstance(OpenXRConfig(ar_allowed=scene.scene.ar_allowed)):
            return None
    except OpenXRUnavailable as exc:
        return exc.what, str(exc)


def _open_display(kind: str, scene, eye: tuple[int, int], save, console: Console):
    """The display backend for ``kind`` (auto/openxr/headless); falls back to headless on auto."""
    if kind in ("auto", "openxr"):
        try:
            from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay, OpenXRUnavailable
        except ImportError as exc:  # pyopenxr missing: same outcome as no runtime
            if kind == "openxr":
                raise typer.BadParameter(f"OpenXR support is not installed ({exc})") from None
        else:
            def on_state(old, new):
                console.print(f"[dim]OpenXR session {old} → {new}[/dim]")

            display = OpenXRDisplay(OpenXRConfig(ar_allowed=scene.scene.ar_allowed, on_save=lambda reason: save(reason),
                                                 on_state=on_state))
            try:
                display.__enter__()
                return display
            except OpenXRUnavailable as exc:
                if kind == "openxr":
                    raise
                console.print(f"[yellow]no OpenXR runtime: {exc}; playing headless[/yellow]")
    from xrstory.render.view import Pose
    from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

    vp = scene.viewpoint("player") if any(v.id == "player" for v in scene.viewpoints) else scene.viewpoint()
    display = HeadlessDisplay(HeadlessConfig(eye_size=eye, fps=16_000 / 512, pace=True,
                                             start=Pose.look_at(vp.position, vp.look_at)))
    display.__enter__()
    return display


def play(scene_dir: Path = typer.Argument(..., help="scene folder"),
         display: str = typer.Option("auto", "--display", help="auto, openxr or headless"),
         mic: bool = typer.Option(False, "--mic", help="listen to the microphone (hands-free)"),
         adapter: str = typer.Option(None, "--adapter", help="LoRA adapter folder (default: the scene's)"),
         base: str = typer.Option(None, "--model", help="base model: HF id/folder or .gguf"),
         remote: str = typer.Option(None, "--remote", help="OpenAI-compatible server URL"),
         engine: str = typer.Option("auto", "--engine", help="auto (torch with CUDA, llama.cpp on a CPU), "
                                    "llamacpp, torch or remote (with --remote)"),
         threads: int = typer.Option(None, "--threads", min=1, help="CPU threads of the decoding engine"),
         resume: Path = typer.Option(None, "--resume", help="a save to continue from"),
         save: Path = typer.Option(Path("reports/play/save.json"), "--save", help="where the story is saved"),
         record: Path = typer.Option(None, "--record", help="write what the player heard to this WAV"),
         player: str = typer.Option(None, "--player", help="player id (keeps a profile for personalization)"),
         eye_size: str = typer.Option("640x640", "--eye-size", help="headless pixels per eye, WxH"),
         frames: int = typer.Option(0, "--frames", help="stop after this many frames (0: until quit/EOF)")):
    """Play a scene live: type (or speak with --mic) to the characters."""
    from xrstory.playthrough.console import ConversationPrinter
    from xrstory.runtime.components import load_components
    from xrstory.runtime.config import SessionConfig
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
        state = load_state(resume) if resume else None
    except SceneError as exc:
        for issue in exc.issues:
            err.print(f"[red]error[/red] {issue}", highlight=False)
        raise typer.Exit(2) from None
    except SaveError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    w, h = (int(v) for v in eye_size.lower().split("x"))
    from xrstory.mind.engine import choose_engine
    from xrstory.runtime.components import resolve_adapter

    try:
        engine_name, engine_why = choose_engine(engine, model=base, remote_url=remote,
                                                adapter=resolve_adapter(scene, adapter))
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"decoding engine: {engine_name} ({engine_why})", highlight=False)
    if display in ("auto", "openxr") and (unavailable := _probe_openxr(scene)) is not None:
        what, message = unavailable
        if display == "openxr":
            err.print(f"[red]error[/red] {message}", highlight=False)
            raise typer.Exit(2)
        console.print(f"[yellow]OpenXR unavailable ({what}); playing headless[/yellow]", highlight=False)
        display = "headless"
    with console.status("loading models…") as status:
        components = load_components(scene, adapter=adapter, base_model=base, engine=engine, remote_url=remote,
                                      threads=threads, progress=status.update)
    holder: dict = {}

    def save_now(reason: str = "exit") -> None:
        if "session" in holder:
            save_state(holder["session"].story.state, save)
            console.print(f"[dim]story saved to {save} ({reason})[/dim]")

    try:
        disp = _open_display(display, scene, (w, h), save_now, console)
    except Exception as exc:  # noqa: BLE001 - OpenXRUnavailable and friends: say why, suggest headless
        err.print(f"[red]error[/red] {exc}", highlight=False)
        components.close()
        raise typer.Exit(2) from None
    console.print(f"[bold]{scene.scene.title}[/bold] — {scene.scene.description}\n"
                  f"display: {getattr(disp, 'name', type(disp).__name__)}; "
                  + ("speak into the microphone" if mic else "type a line and press Enter; 'quit' to stop"))
    lines: queue.Queue = queue.Queue()
    config = SessionConfig(scene_dir=scene_dir, adapter=adapter, base_model=base, remote_url=remote,
                           player_id=player, keep_audio=record is not None, engine=engine, engine_threads=threads)
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
        waiting_to_quit = False
        exit_at: int | None = None  # frame index at which the exit was requested
        frame_iter = disp.frames()
        try:
            for frame in frame_iter:
                session.tick(frame)
                while not lines.empty():
                    text = lines.get_nowait()
                    if text is None or text.strip().lower() in ("quit", "exit"):
                        waiting_to_quit = True
                    elif text.strip():
                        session.player_says_text(text.strip())
                if exit_at is None and ((waiting_to_quit and not session.busy)
                                        or (session.story.state.ended and not session.busy)
                                        or (frames and frame.index + 1 >= frames)):
                    # Once: under OpenXR the runtime then walks the session through STOPPING ->
                    # IDLE -> EXITING and frames() ends by itself (a break would skip that).
                    exit_at = frame.index
                    disp.request_exit()
                elif exit_at is not None and frame.index - exit_at > EXIT_GRACE_FRAMES:
                    break  # a runtime that never stops the session must not keep us here
        finally:
            frame_iter.close()
            save_now("exit")
            if record is not None:
                from xrstory.voice.audio import write_wav

                write_wav(record, session.mix(), 48_000)
            disp.__exit__(None, None, None)
