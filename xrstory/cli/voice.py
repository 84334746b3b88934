"""``xrstory hear`` and ``xrstory say``: the voice layer from the command line.

    xrstory hear recording.wav [--json]      transcript (with timings in JSON)
    xrstory say scenes/lighthouse maren "Aye, friend." --out line.wav

Heavy imports happen inside the commands. ``say`` may import xrstory.story here only: the CLI
sits above every layer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer


def hear(audio_file: Path = typer.Argument(..., help="WAV/FLAC/OGG, any rate and channel count"),  # noqa: B008 - typer reads parameters from defaults
         json_out: bool = typer.Option(False, "--json", help="utterances with timings as JSON"),
         model: str = typer.Option(None, help="Whisper model folder, name, or .pt (default: offline tiny.en)"),
         backend: str = typer.Option("auto", help="faster-whisper | openai-whisper | auto"),
         language: str = typer.Option("en", help="spoken language"),
         prompt: str = typer.Option(None, help="names and words to expect (e.g. 'Maren, Tobias')")):
    """Transcribe an audio file through the real listening path (VAD, Whisper, guards)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from xrstory.voice.asr import ASRConfig, load_asr
    from xrstory.voice.audio import AudioError
    from xrstory.voice.ear import Ear, EarConfig, drain
    from xrstory.voice.events import Heard
    from xrstory.voice.sources import FileSource
    from xrstory.voice.vad import load_silero

    try:
        source = FileSource(audio_file)
    except AudioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    asr = load_asr(model, backend=backend, config=ASRConfig(language=language, initial_prompt=prompt,
                                                                  word_timestamps=True))
    with Ear(asr, load_silero(), config=EarConfig(partial_every_s=None)) as ear:
        ear.listen(source.chunks())
        ear.wait_idle()
        heard = sorted((e for e in drain(ear.events) if isinstance(e, Heard)), key=lambda e: e.start_frame)
    if json_out:
        print(json.dumps({
            "file": str(audio_file), "seconds": round(len(source.audio) / 16000, 3),
            "text": " ".join(h.text for h in heard),
            "utterances": [{"text": h.text, "start_s": round(h.start_frame / 16000, 3), "end_s": round(h.audio_s, 3),
                            "confidence": round(h.confidence, 3), "language": h.language,
                            "words": [{"word": w, "start_s": round(h.start_frame / 16000 + a, 3),
                                       "end_s": round(h.start_frame / 16000 + b, 3)} for w, a, b in h.words]}
                           for h in heard]}, indent=2))
    else:
        print(" ".join(h.text for h in heard))


def _look_quaternion(position, look_at) -> tuple[float, float, float, float]:
    """Yaw-only orientation (x, y, z, w) that turns -Z towards ``look_at``."""
    dx, dz = look_at[0] - position[0], look_at[2] - position[2]
    yaw = math.atan2(-dx, -dz)  # rotation about +Y
    return (0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2))


def say(scene_dir: Path = typer.Argument(..., help="scene folder"),  # noqa: B008 - typer reads parameters from defaults
        character: str = typer.Argument(..., help="character id"),
        text: str = typer.Argument(..., help="what to say"),
        out: Path = typer.Option(..., "--out", help="stereo WAV to write")):  # noqa: B008
    """Speak a line in a character's voice, placed for the scene's default listener position."""
    from xrstory.story import SceneError, load_scene
    from xrstory.voice.duplex import render_lines
    from xrstory.voice.espeak import EspeakError
    from xrstory.voice.mixer import Mixer
    from xrstory.voice.spatial import Listener
    from xrstory.voice.tts import AutoTTS, VoiceSettings

    try:
        scene = load_scene(scene_dir)
        who = scene.character(character)
    except SceneError as exc:
        for issue in exc.issues:
            typer.echo(f"error: {issue}", err=True)
        raise typer.Exit(2) from exc
    except KeyError as exc:
        known = ", ".join(c.id for c in scene.characters)
        typer.echo(f"error: {exc.args[0]} (characters: {known})", err=True)
        raise typer.Exit(2) from exc
    vp = scene.viewpoint()
    listener = Listener(tuple(vp.position), _look_quaternion(vp.position, vp.look_at))
    with AutoTTS() as tts:
        try:
            summary = render_lines(tts, [(who.id, text, VoiceSettings.of(who.voice), tuple(who.position))], out,
                                   mixer=Mixer(listener=listener, sounds_dir=Path("assets/sounds")))
        except EspeakError as exc:
            typer.echo(f"error: character '{who.id}': {exc}", err=True)
            raise typer.Exit(2) from exc
    if summary["errors"]:
        typer.echo(f"error: {'; '.join(summary['errors'])}", err=True)
        raise typer.Exit(2)
    print(f"{out}: {summary['seconds']:.2f} s, {who.name} at {tuple(who.position)} "
          f"(voice {who.voice.voice}, rate {who.voice.rate}, pitch {who.voice.pitch})")
