"""A worker thread that works through a queue of jobs in order, and how it gives way to the
frame loop in the OS scheduler. The brain worker (``runtime.brain``) is one; the ear's ASR thread
and the mouth's TTS thread (``voice``) are lowered with ``yield_to_frame_loop`` too.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import traceback
from abc import ABC, abstractmethod
from typing import Self

from xrstory.runtime import events as ev

log = logging.getLogger(__name__)


def yield_to_frame_loop(thread: threading.Thread, nice: int) -> bool:
    """Run ``thread`` ``nice`` steps below the frame loop in the OS scheduler (Linux sets nice per
    thread; threads it starts later inherit the value). The model's decode loop
    (and Python work on this thread) then give way to the frame loop and the GL driver's threads when a core is contested,
    and still get every idle cycle. Measured on a 2-core CPU (3 spoken turns, 325 idle and ~1000
    busy frames each run): busy-frame p99 35.5 ms at nice 10 vs 37.7 ms at nice 0 (mean of 4 and
    3 runs). Compute pools that other threads created earlier keep their own priority: Whisper
    (CTranslate2) computes on threads it made when the model loaded, so it is NOT lowered by this
    (measured 2026-12-01: ~0 CPU ticks on the lowered thread, 17-36 on two normal ones). Returns
    False where the OS has no per-thread priority (the worker then runs as before)."""
    if nice <= 0 or not hasattr(os, "setpriority") or thread.native_id is None:
        return False
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread.native_id)
        os.setpriority(os.PRIO_PROCESS, thread.native_id, min(19, now + nice))
    except OSError as exc:  # a sandbox may forbid it; the session works the same, only less smoothly
        log.warning("could not lower the priority of thread %s: %s", thread.name, exc)
        return False
    return True


def process_threads() -> set[int]:
    """The kernel thread ids of this process (empty where /proc has no task list)."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


class NewThreads:
    """``with NewThreads() as made: load()``; then ``made.ids``: the threads ``load`` left running
    (a native library's compute pool, which no ``threading.Thread`` names)."""

    def __enter__(self) -> NewThreads:
        self._before = process_threads()
        self.ids: set[int] = set()
        return self

    def __exit__(self, *exc) -> None:
        self.ids = process_threads() - self._before


def lower_threads(ids, nice: int) -> int:
    """``yield_to_frame_loop`` for native thread ids: each runs ``nice`` steps below the calling
    thread (the frame loop), once (a second session on the same models lowers nothing more).
    Returns how many are that low now; a thread that ended in between is skipped."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return 0
    target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice)  # 0: this thread, on Linux
    lowered = 0
    for tid in ids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
            lowered += 1
        except OSError:
            continue
    return lowered


class JobThread(ABC):
    """One daemon thread working through a queue of jobs in order; ``None`` ends it. A job that
    raises is reported to the frame loop as ``WorkerFailed`` and the thread goes on."""

    def __init__(self, name: str, out: queue.Queue, join_timeout_s: float):
        self.out = out
        self._name, self._join_timeout_s = name, join_timeout_s
        self._jobs: queue.Queue = queue.Queue()
        self._busy = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def busy(self) -> bool:
        return self._busy.is_set() or not self._jobs.empty()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=self._join_timeout_s)

    @abstractmethod
    def _do(self, job) -> None:
        """Carry out one job (on this thread)."""

    def _failed(self, job) -> None:  # noqa: B027 - an optional hook; by default nothing is half done
        """After ``job`` raised (and was reported): put right what it left half done."""

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._busy.set()
            try:
                self._do(job)
            except Exception as exc:  # noqa: BLE001 - reported to the loop, the session goes on
                log.error("%s worker failed on %r: %s", self._name, job, traceback.format_exc())
                self.out.put(ev.WorkerFailed(self._name, f"{type(exc).__name__}: {exc}"))
                self._failed(job)
            finally:
                self._busy.clear()
