"""Start and stop a real ``monado-service`` (simulated HMD, null compositor) for a scenario.

Runs where Monado is installed: inside the Debian 13 root of scripts/monado-root.sh (or on a
Debian 13 host). What it needs (ENVIRONMENT.md): a stdin it can poll (a pipe here; one line on
it stops the service cleanly), XDG_RUNTIME_DIR with mode 700, XRT_COMPOSITOR_NULL=1 and
SIMULATED_ENABLE=1.

    with MonadoService(workdir) as monado:
        ...                      # OpenXR apps in this process or its children find the runtime
    monado.errors()              # ERROR lines of its log
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

SOCKET = "monado_comp_ipc"
ERROR_LINE = re.compile(r"\bERROR\b|\bE \[")


class MonadoService:
    def __init__(self, workdir: Path, start_timeout_s: float = 15.0):
        self.workdir = Path(workdir)
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "monado.log"
        self.exit_code: int | None = None
        self.started_s = 0.0

    def __enter__(self) -> MonadoService:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if not xdg or not Path(xdg).is_dir():
            raise RuntimeError("XDG_RUNTIME_DIR must name a folder (mode 700) for Monado's socket")
        os.chmod(xdg, 0o700)
        self.socket = Path(xdg) / SOCKET
        _remove_stale_socket(self.socket)  # a killed service leaves its socket behind
        env = dict(os.environ, XRT_COMPOSITOR_NULL="1", SIMULATED_ENABLE="1")
        self.workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(["monado-service"], stdin=subprocess.PIPE, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)
        while not self.socket.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"monado-service exited with {self.proc.returncode} at start; "
                                   f"log {self.log_path}:\n{self.log_text()[-2000:]}")
            if time.monotonic() - t0 > self.start_timeout_s:
                self.kill()
                raise RuntimeError(f"monado-service made no socket in {self.start_timeout_s} s; log:\n"
                                   f"{self.log_text()[-2000:]}")
            time.sleep(0.05)
        self.started_s = time.monotonic() - t0
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to the clients."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.exit_code = self.proc.wait(5)

    def stop(self, timeout_s: float = 10.0) -> int:
        """Stop cleanly: one line on its stdin; returns its exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.exit_code = self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.exit_code = self.proc.wait(5)
        else:
            self.exit_code = self.proc.returncode
        return self.exit_code

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def errors(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if ERROR_LINE.search(line)]

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.stop()
            if self.proc.stdin:
                self.proc.stdin.close()
        self._log.close()


def _remove_stale_socket(path: Path) -> None:
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
    else:
        raise RuntimeError(f"another monado-service is already listening on {path}")
    finally:
        probe.close()
