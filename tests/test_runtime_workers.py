"""Worker threads give way to the frame loop in the OS scheduler."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from xrstory.runtime.jobs import yield_to_frame_loop


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is a Linux feature")
def test_a_worker_thread_runs_below_the_frame_loop_and_the_loop_keeps_its_priority():
    release = threading.Event()
    started_inside = {}

    def work():
        release.wait(10)
        child = threading.Thread(target=lambda: started_inside.update(nice=os.getpriority(os.PRIO_PROCESS, 0)))
        child.start()
        child.join()

    worker = threading.Thread(target=work)
    worker.start()
    loop_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert yield_to_frame_loop(worker, 10)
    assert os.getpriority(os.PRIO_PROCESS, worker.native_id) == min(19, loop_before + 10)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_before  # only that thread
    release.set()
    worker.join()
    assert started_inside["nice"] == min(19, loop_before + 10)  # a thread it starts inherits it


def test_nice_zero_leaves_the_thread_alone():
    worker = threading.Thread(target=lambda: None)
    worker.start()
    worker.join()
    assert not yield_to_frame_loop(worker, 0)
