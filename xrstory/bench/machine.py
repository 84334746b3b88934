"""Where a benchmark ran: ``uname -a``, CPU model, core count, load average, GPU, git commit.

Machines here are shared, so the load average is recorded beside the figures (at the start and
at the end of the run): a figure measured under load 10 on 2 cores is not one measured idle.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from xrstory.bench.options import REPO_ROOT


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _cpuinfo(field: str) -> str | None:
    """The first ``field: value`` of /proc/cpuinfo (None where it is absent or unreadable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


# The vector units that decide how fast both engines run: on 2026-12-02 an Intel host with AVX-512
# and AMX ran torch's fp32 prefill 4-7x faster than llama.cpp's (whose wheel is built for AVX2 only),
# while a 2026-12-01 AMD host gave the opposite picture. Figures from two hosts compare only with these.
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_simd() -> list[str]:
    """The ``SIMD_FLAGS`` this CPU reports in /proc/cpuinfo, in that order ([] where unreadable)."""
    have = set((_cpuinfo("flags") or "").split())
    return [f for f in SIMD_FLAGS if f in have]


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def gpu_name() -> str | None:
    """The CUDA device torch sees, else None. Imports torch only when it is already installed."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)


def git_commit(repo: Path = REPO_ROOT) -> dict:
    """{"commit": short hash or None, "dirty": whether tracked files differ from it}."""
    commit = _run(["git", "rev-parse", "--short", "HEAD"], repo)
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], repo)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def machine_info() -> dict:
    uname = _run(["uname", "-a"]) or " ".join(platform.uname())
    return {"uname": uname, "cpu": cpu_model(), "simd": cpu_simd(), "cores": os.cpu_count(), "gpu": gpu_name(),
            "python": platform.python_version(), "load_avg_start": load_average()}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
