"""Scenario "play": the full app, ``xrstory play SCENE --display openxr``, against a real Monado.

The app needs torch, Whisper, the TTS and the embedder, which the root's Python 3.13 venv does
not carry, so the command runs with the HOST's .venv: scripts/monado-root.sh bind-mounts the host
Python's installation into the root read-only (glibc 2.41 runs binaries built for 2.36) and the
root carries libespeak-ng for the TTS. This harness (root Python) starts monado-service, runs the
app with one typed line on a stdin that stays open (so ``--frames`` ends the session, not EOF),
and reports the app's exit code, its OpenXR state transitions and the save it wrote.

    scripts/monado-root.sh run python3 tests/openxr_scenarios/run.py play --workdir /tmp/x \\
        --python "$(scripts/monado-root.sh host-python)"
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from monado import MonadoService

REPO = Path(__file__).resolve().parents[2]
SCENE_DIR = REPO / "scenes" / "lighthouse"
TYPED_LINE = "Maren, please light the stove."
# The backend's INFO log line for each state change (xrstory.xr.openxr.display._transition).
TRANSITION = re.compile(r"OpenXR session (\w+) -> (\w+)")
DISPLAY_LINE = re.compile(r"display: (\w+)")


def play(workdir: Path, python: str, frames: int, timeout_s: float = 150.0) -> dict:
    save_path = workdir / "save.json"
    save_path.unlink(missing_ok=True)
    cmd = [python, "-m", "xrstory.cli", "play", str(SCENE_DIR), "--display", "openxr",
           "--frames", str(frames), "--save", str(save_path)]
    # Offline: the default models come from installed packages; COLUMNS: rich must not wrap the
    # lines parsed below.
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200")
    out: dict = {"cmd": cmd}
    with MonadoService(workdir) as monado:
        t0 = time.monotonic()
        with open(workdir / "app.stdout", "wb") as stdout, open(workdir / "app.stderr", "wb") as stderr:
            app = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, cwd=REPO, env=env)
            app.stdin.write((TYPED_LINE + "\n").encode())
            app.stdin.flush()  # and keep it open: EOF would mean "quit once the reply is done"
            try:
                out["app_exit_code"] = app.wait(timeout_s)
            except subprocess.TimeoutExpired:
                app.kill()
                out["app_exit_code"] = app.wait(10)
                out["timed_out"] = True
            finally:
                app.stdin.close()
        out["app_seconds"] = round(time.monotonic() - t0, 1)
    out.update(monado_exit=monado.exit_code, monado_errors=monado.errors())
    text_out = (workdir / "app.stdout").read_text(errors="replace")
    text_err = (workdir / "app.stderr").read_text(errors="replace")
    transitions = [m.groups() for m in TRANSITION.finditer(text_err)]
    out["transitions"] = [new for _, new in transitions]  # from UNKNOWN (before the first event) on
    displays = DISPLAY_LINE.findall(text_out)
    out["display"] = displays[0] if displays else None
    out["headless_fallback"] = "playing headless" in text_out
    out["typed_line_shown"] = TYPED_LINE in text_out
    out["saved_lines"] = [ln.strip() for ln in text_out.splitlines() if "story saved to" in ln]
    out["stdout_tail"] = text_out[-3000:]
    out["stderr_tail"] = text_err[-3000:]
    out["save_exists"] = save_path.exists()
    if save_path.exists():
        from xrstory.story import load_state

        state = load_state(save_path)
        out["save"] = {"scene_id": state.scene_id, "time": state.time, "beat": state.beat,
                       "fired": state.fired,
                       "conversation": [[u.speaker, u.text] for u in state.conversation]}
    return out
