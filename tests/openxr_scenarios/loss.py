"""Scenario "loss": monado-service is killed (SIGKILL) while the app renders, FOCUSED.

The app (``loss_app``, a child process) must notice (LOSS_PENDING, SESSION_LOST or instance
loss), save the story (xrstory.story.save_state), try to recreate within its bound and then exit
cleanly, without spinning the CPU meanwhile. The harness (``loss``) measures the child's CPU time
from the kill to its exit (/proc/<pid>/stat at the kill, wait4's rusage at the end).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from monado import MonadoService

SCENE_DIR = Path(__file__).resolve().parents[2] / "scenes" / "lighthouse"
FOCUSED_BEFORE_KILL = 20
RECREATE_TIMEOUT_S = 4.0
RESTART_AFTER_S = 1.0  # "loss-recover": a new monado-service this long after the kill
FOCUSED_AFTER_RECOVERY = 10


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def loss_app(workdir: Path, save_path: Path) -> dict:
    from xrstory.story import Story, load_scene, save_state
    from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay

    story = Story(load_scene(SCENE_DIR))
    t_lost = None

    def on_save(reason: str) -> None:
        save_state(story.state, save_path)

    def on_state(old: str, new: str) -> None:
        nonlocal t_lost
        if new in ("LOSS_PENDING", "LOST") and t_lost is None:
            t_lost = time.monotonic()
        print(f"STATE {new}", flush=True)

    config = OpenXRConfig(on_save=on_save, on_state=on_state, recreate_timeout_s=RECREATE_TIMEOUT_S,
                          retry_interval_s=0.5)
    focused = 0
    focused_after_recovery = 0
    with OpenXRDisplay(config) as display:
        for frame in display.frames():
            story.state.time += frame.dt  # the story moves on: the save must hold this
            if frame.should_render:
                for fbo in frame.targets:
                    fbo.use()
                    fbo.clear(0.2, 0.3, 0.4, 1.0, depth=1.0)
            if display.lifecycle.state.value == "FOCUSED":
                focused += 1
                if focused == FOCUSED_BEFORE_KILL:
                    print(f"FOCUSED_FRAMES {focused}", flush=True)
                if display.recoveries:
                    focused_after_recovery += 1
                    if focused_after_recovery == FOCUSED_AFTER_RECOVERY:
                        display.request_exit()
        t_exit = time.monotonic()
        return {"exit_reason": display.exit_reason, "transitions": display.lifecycle.names(),
                "saves": display.saves, "focused_frames": focused, "recoveries": display.recoveries,
                "focused_after_recovery": focused_after_recovery, "story_time": story.state.time,
                "loss_to_exit_s": None if t_lost is None else t_exit - t_lost}


def loss(workdir: Path, restart: bool = False) -> dict:
    save_path = workdir / "story-save.json"
    cmd = [sys.executable, str(Path(__file__).with_name("run.py")), "loss-app", "--workdir", str(workdir),
           "--save", str(save_path)]
    out: dict = {"killed": False}
    with MonadoService(workdir) as monado:
        app = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(workdir / "app.log", "wb"), text=True)
        lines = []
        for line in app.stdout:
            lines.append(line.rstrip())
            if line.startswith("FOCUSED_FRAMES"):
                break
        else:
            out["error"] = "the app ended before reaching FOCUSED frames"
        if "error" not in out:
            cpu_at_kill = _cpu_seconds(app.pid)
            monado.kill()
            t_kill = time.monotonic()
            out["killed"] = True
            if restart:
                time.sleep(RESTART_AFTER_S)
                second = MonadoService(workdir / "restart").__enter__()
            rest = app.stdout.read()  # until the app closes stdout (exits)
            _, status, rusage = os.wait4(app.pid, 0)
            wall = time.monotonic() - t_kill
            app.returncode = os.waitstatus_to_exitcode(status)
            cpu_wait = rusage.ru_utime + rusage.ru_stime - cpu_at_kill
            lines += rest.splitlines()
            out.update(wall_after_kill_s=wall, cpu_after_kill_s=cpu_wait,
                       cpu_fraction=cpu_wait / wall if wall > 0 else None)
            if restart:
                second.__exit__(None, None, None)
                out.update(restarted_monado_exit=second.exit_code, restarted_monado_errors=second.errors())
        else:
            app.wait(30)
        out["app_exit_code"] = app.returncode
        result_lines = [ln for ln in lines if ln.startswith("RESULT ")]
        out["app"] = json.loads(result_lines[-1][7:]) if result_lines else None
        out["app_states"] = [ln[6:] for ln in lines if ln.startswith("STATE ")]
    out["save_exists"] = save_path.exists()
    if save_path.exists():
        from xrstory.story import load_state

        st = load_state(save_path)
        out["save"] = {"scene_id": st.scene_id, "time": st.time, "beat": st.beat}
    out["app_log_tail"] = (workdir / "app.log").read_text(errors="replace")[-1500:]
    return out
