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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is a Linux feature")
def test_the_native_threads_a_model_started_while_loading_are_lowered_once():
    """Whisper's and llama.cpp's compute pools are native threads started while the models load;
    ``NewThreads`` finds them by the task list and ``lower_threads`` puts them below the frame
    loop, once (a second session on the same models lowers nothing further)."""
    from xrstory.runtime.jobs import NewThreads, lower_threads

    release = threading.Event()
    with NewThreads() as made:
        pool = threading.Thread(target=lambda: release.wait(10))  # stands for a library's pool thread
        pool.start()
    try:
        assert pool.native_id in made.ids and threading.get_native_id() not in made.ids
        loop = os.getpriority(os.PRIO_PROCESS, 0)
        assert lower_threads(made.ids, 10) == len(made.ids)
        assert os.getpriority(os.PRIO_PROCESS, pool.native_id) == min(19, loop + 10)
        lower_threads(made.ids, 10)
        assert os.getpriority(os.PRIO_PROCESS, pool.native_id) == min(19, loop + 10), "not lowered twice"
        assert os.getpriority(os.PRIO_PROCESS, 0) == loop
        assert lower_threads(made.ids, 0) == 0
    finally:
        release.set()
        pool.join()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the task list is read from /proc")
def test_loading_the_models_finds_their_compute_threads():
    """With the real engine and Whisper (the session lowers these; ``SessionConfig.compute_nice``)."""
    from xrstory.runtime.components import load_components
    from xrstory.story import load_scene

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with load_components(load_scene("scenes/lighthouse"), with_embedder=False) as components:
        alive = {int(t) for t in os.listdir("/proc/self/task")}
        assert len(components.compute_threads & alive) >= 2, components.compute_threads
        assert threading.get_native_id() not in components.compute_threads
