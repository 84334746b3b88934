"""Host side of the Monado scenarios: build the runtime, run a scenario in it, read its JSON.

Used by tests/test_openxr_monado.py and tests/test_display_contract.py (pytest on the host).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "monado-root.sh"


def debian_major() -> int:
    try:
        return int(Path("/etc/debian_version").read_text().split(".")[0])
    except (OSError, ValueError):
        return 0


def build_runtime() -> Path:
    """Build (or reuse) the Monado runtime; skips where this machine cannot build it."""
    native = debian_major() >= 13
    if not native and (os.geteuid() != 0 or shutil.which("debootstrap") is None or shutil.which("unshare") is None):
        pytest.skip("the Monado root needs root, debootstrap and unshare on a Debian 12 host")
    proc = subprocess.run(["bash", str(SCRIPT), "build"], capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, f"scripts/monado-root.sh build failed:\n{proc.stderr[-3000:]}"
    return SCRIPT


def host_python_in_runtime() -> str:
    """The host .venv's python, which scripts/monado-root.sh can run inside the runtime (the full
    app: torch, Whisper, TTS); skips with the script's reason where it cannot."""
    proc = subprocess.run(["bash", str(SCRIPT), "host-python"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip(proc.stderr.strip() or "the host .venv cannot run inside the Monado runtime")
    return proc.stdout.strip()


def scenario(name: str, workdir: Path, *extra: str, timeout: int = 120) -> dict:
    """Run tests/openxr_scenarios/run.py NAME inside the runtime; its RESULT JSON."""
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["bash", str(SCRIPT), "run", "python3", "tests/openxr_scenarios/run.py", name,
                           "--workdir", str(workdir), *extra],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"scenario {name} failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])
