"""``xrstory render SCENE_DIR --out DIR``: PNGs of a scene from its viewpoints, headless.

    xrstory render scenes/lighthouse --out out/ [--state SAVE.json] [--eye-size 960x960]
                   [--ar BACKGROUND.png] [--additive] [--stereo] [--samples 4]

One PNG per viewpoint (the scene's default first, then each named one): ``<viewpoint>.png``,
eyes side by side with ``--stereo``. ``--ar`` composites the scene over an image standing in
for the passthrough camera (alpha blend; ``--additive`` for see-through displays).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"--eye-size '{text}': expected WIDTHxHEIGHT, e.g. 960x960") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise typer.BadParameter(f"--eye-size '{text}': width and height must be 16..8192")
    return w, h


def render_command(
    scene_dir: Annotated[Path, typer.Argument(help="scene folder (or its scene.toml)")],
    out: Annotated[Path, typer.Option("--out", help="folder for the PNGs")],
    state: Annotated[Path | None, typer.Option("--state", help="a save (JSON) to render instead of the start")] = None,
    eye_size: Annotated[str, typer.Option("--eye-size", help="pixels per eye, WxH")] = "960x960",
    ar: Annotated[Path | None, typer.Option("--ar", help="AR: composite over this image (passthrough stand-in)")] = None,
    additive: Annotated[bool, typer.Option("--additive", help="AR: additive blend (see-through displays)")] = False,
    stereo: Annotated[bool, typer.Option("--stereo", help="two eyes side by side")] = False,
    samples: Annotated[int, typer.Option("--samples", help="MSAA samples (0: off)")] = 4,
):
    """Render a scene headless to PNGs from its default and named viewpoints."""
    from xrstory.render.renderer import SceneRenderer
    from xrstory.render.view import Pose
    from xrstory.story import SaveError, SceneError, Story, load_scene, load_state
    from xrstory.xr.headless import HeadlessConfig, HeadlessDisplay

    size = parse_size(eye_size)
    try:
        scene = load_scene(scene_dir)
        story_state = load_state(state) if state else None
        story = Story(scene, story_state)
    except SceneError as exc:
        for issue in exc.issues:
            typer.echo(f"error {issue}", err=True)
        raise typer.Exit(2) from None
    except (SaveError, ValueError, KeyError, OSError) as exc:
        typer.echo(f"error {exc}" if isinstance(exc, SaveError) else f"error {state}: {exc}", err=True)
        raise typer.Exit(2) from None
    if ar is not None and not ar.is_file():
        typer.echo(f"error --ar {ar}: image not found", err=True)
        raise typer.Exit(2)
    mode = "opaque" if ar is None else ("additive" if additive else "alpha_blend")
    viewpoints = scene.viewpoints or [scene.viewpoint()]
    out.mkdir(parents=True, exist_ok=True)
    cfg = HeadlessConfig(eye_size=size, stereo=stereo, blend_mode=mode, background=ar, samples=samples)
    with HeadlessDisplay(cfg) as display, SceneRenderer(display.ctx, scene, story.state) as renderer:
        for vp in viewpoints:
            display.set_head(Pose.look_at(vp.position, vp.look_at))
            for frame in display.frames(max_frames=1):
                renderer.update(story.state, frame.dt, snap=True, player_position=vp.position)
                renderer.draw(frame.views, frame.targets, ar_mode=mode)
            path = display.capture(out / f"{vp.id}.png")
            typer.echo(f"wrote {path} ({size[0]}x{size[1]}{' x2' if stereo else ''}, {mode})")
