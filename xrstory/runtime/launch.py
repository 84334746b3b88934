"""The one launch path of a session, shared by ``xrstory play`` (live) and ``xrstory run``
(scripted playthroughs): load the parts the config names, open the display the config names,
and drive the frame loop (one loop for both; a playthrough is the same loop with a script
stepping along, as StereoKit's test mode is its normal loop with a flag).

  components = load_for(config, scene)           # config.adapter, base_model, threads
  display = open_display(config, scene)           # config.display, eye_size, stereo, realtime
  with Session(config, components, scene, display=display) as session:
      drive(display, session, after_tick)         # after_tick(frame) -> True asks to stop
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from xrstory.runtime.components import Components, load_components
from xrstory.runtime.config import SessionConfig
from xrstory.voice.clock import CHUNK
from xrstory.voice.events import EAR_RATE

EXIT_GRACE_FRAMES = 120  # frames the display may take to end after request_exit (Monado: ~3)


class DisplayUnavailable(Exception):
    """The display the config insists on cannot be opened; the message says why and what to do."""


def load_for(config: SessionConfig, scene, progress=None, with_embedder: bool = True) -> Components:
    """The heavy parts for ``config``: its model (adapter, base model, threads), Whisper, VAD, TTS."""
    return load_components(scene, adapter=config.adapter, base_model=config.base_model,
                           threads=config.engine_threads or config.threads, progress=progress,
                           with_embedder=with_embedder, chat_template=config.chat_template,
                           engine=config.engine, remote_url=config.remote_url)


def start_pose(scene):
    """Where the player's head starts: the scene's ``player`` viewpoint, else its first."""
    from xrstory.render.view import Pose

    vp = scene.viewpoint("player") if any(v.id == "player" for v in scene.viewpoints) else scene.viewpoint()
    return Pose.look_at(vp.position, vp.look_at)


def probe_openxr(scene) -> tuple[str, str] | None:
    """Why no OpenXR runtime can be used, as (short reason, full message with the ``--display
    headless`` hint), or None when one answers. An instance and its HMD system are made and dropped again, so a missing runtime is
    reported before the models load (~20 s)."""
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


def resolve_display(config: SessionConfig, scene, say: Callable[[str], None] = print) -> SessionConfig:
    """``display = "auto"`` becomes ``openxr`` when a runtime answers, else ``headless`` (said);
    ``openxr`` without a runtime raises ``DisplayUnavailable``."""
    if config.display == "headless":
        return config
    unavailable = probe_openxr(scene)
    if unavailable is None:
        return replace(config, display="openxr")
    what, message = unavailable
    if config.display == "openxr":
        raise DisplayUnavailable(message)
    say(f"OpenXR unavailable ({what}); playing headless")
    return replace(config, display="headless")


def open_display(config: SessionConfig, scene, on_save: Callable[[str], None] | None = None,
                 on_state: Callable[[str, str], None] | None = None):
    """The display ``config.display`` names (``headless`` or ``openxr``; resolve ``auto`` first),
    entered; the caller exits it. Headless runs one 32 ms audio chunk per frame, paced to the
    wall clock when ``config.realtime``."""
    if config.display == "openxr":
        from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay, OpenXRUnavailable

        display = OpenXRDisplay(OpenXRConfig(ar_allowed=scene.scene.ar_allowed, on_save=on_save, on_state=on_state))
        try:
            return display.__enter__()
        except OpenXRUnavailable as exc:
            raise DisplayUnavailable(str(exc)) from exc
    if config.display != "headless":
        raise ValueError(f"SessionConfig.display must be headless or openxr here, got '{config.display}'")
    from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

    display = HeadlessDisplay(HeadlessConfig(eye_size=config.eye_size, stereo=config.stereo, fps=EAR_RATE / CHUNK,
                                             pace=config.realtime, start=start_pose(scene)))
    return display.__enter__()


def drive(display, session, after_tick: Callable[[object], bool], grace_frames: int = EXIT_GRACE_FRAMES) -> None:
    """The frame loop: ``session.tick(frame)`` then ``after_tick(frame)``; when that returns True
    the exit is requested once (under OpenXR the runtime then walks the session through STOPPING
    -> IDLE -> EXITING and ``frames()`` ends by itself; a break would skip that). A display that
    never ends is left after ``grace_frames``. The last frame is always ended."""
    frames = display.frames()
    exit_at: int | None = None
    try:
        for frame in frames:
            session.tick(frame)
            if exit_at is None:
                if after_tick(frame):
                    exit_at = frame.index
                    display.request_exit()
            elif frame.index - exit_at > grace_frames:
                break
    finally:
        frames.close()  # end the last frame while the GL context still exists
