"""Run one OpenXR scenario against a real Monado and print its result as JSON (last stdout line).

Runs inside the Debian 13 root (or a Debian 13 host) via scripts/monado-root.sh:

    scripts/monado-root.sh run python3 tests/openxr_scenarios/run.py lifecycle --workdir /tmp/x

Scenarios: lifecycle, render, loss (kill monado-service mid-session), loss-app (the app side of
loss, started by it), no-runtime, contract, play (the full app with the host .venv, play.py). Each starts its own monado-service (MonadoService)
except no-runtime and loss-app.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from the repo root

from monado import MonadoService  # noqa: E402

from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay, OpenXRUnavailable  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCENE_DIR = REPO / "scenes" / "lighthouse"


def lifecycle(workdir: Path) -> dict:
    """Up to FOCUSED, a few frames, then xrRequestExitSession -> STOPPING -> IDLE -> EXITING."""
    saves: list[str] = []
    with MonadoService(workdir) as monado:
        with OpenXRDisplay(OpenXRConfig(on_save=saves.append)) as display:
            focused_frames = 0
            t_exit = None
            frames = 0
            for _frame in display.frames():
                frames += 1
                if display.lifecycle.state.value == "FOCUSED":
                    focused_frames += 1
                if focused_frames == 10 and t_exit is None:
                    t_exit = time.monotonic()
                    display.request_exit()
            exit_s = time.monotonic() - t_exit if t_exit else None
            result = {"transitions": display.lifecycle.names(), "exit_reason": display.exit_reason,
                      "focused_frames": focused_frames, "frames": frames, "saves": saves,
                      "exit_seconds": exit_s, "system": display.instance.system_name,
                      "runtime": display.instance.runtime_name, "extensions": display.instance.extensions}
    result.update(monado_exit=monado.exit_code, monado_errors=monado.errors())
    return result


def no_runtime(workdir: Path) -> dict:
    """With the runtime's service not running / no runtime manifest: a clear message."""
    out = {}
    for case, env in (("no_manifest", {"XR_RUNTIME_JSON": str(workdir / "missing_runtime.json")}),
                      ("service_down", {})):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with OpenXRDisplay(OpenXRConfig()):
                out[case] = {"raised": None}
        except OpenXRUnavailable as exc:
            out[case] = {"raised": type(exc).__name__, "message": str(exc)}
        except Exception as exc:  # reported, the test says which case failed how
            out[case] = {"raised": type(exc).__name__, "message": str(exc)}
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return out


def contract(workdir: Path) -> dict:
    from contract import check_backend

    with MonadoService(workdir) as monado:
        problems = check_backend(lambda: OpenXRDisplay(OpenXRConfig()), frames=30)
    return {"problems": problems, "monado_errors": monado.errors(), "monado_exit": monado.exit_code}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["lifecycle", "render", "loss", "loss-recover", "loss-app", "no-runtime", "contract", "play"])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--save", type=Path)
    ap.add_argument("--python", help="play: the host .venv's python (scripts/monado-root.sh host-python)")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(relativeCreated)7.0f %(name)s %(message)s")
    if args.scenario == "lifecycle":
        result = lifecycle(args.workdir)
    elif args.scenario == "render":
        from render_scene import render

        result = render(args.workdir, args.frames)
    elif args.scenario == "loss":
        from loss import loss

        result = loss(args.workdir)
    elif args.scenario == "loss-recover":
        from loss import loss

        result = loss(args.workdir, restart=True)
    elif args.scenario == "loss-app":
        from loss import loss_app

        result = loss_app(args.workdir, args.save)
    elif args.scenario == "play":
        from play import play

        result = play(args.workdir, args.python, args.frames)
    elif args.scenario == "no-runtime":
        result = no_runtime(args.workdir)
    else:
        result = contract(args.workdir)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
