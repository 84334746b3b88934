"""PNG files written on a thread of their own, so the frame loop only copies the pixels.

Why: a session captures the frame at every reply and trigger. Encoding one 512x256 capture with
PIL took 20-25 ms on the 2-core CI machine (2026-12-01, load ~2), inside the frame that captured
it (~11 frames an arc). The frame loop now reads the pixels back (GL, its own thread, ~1 ms) and
this writer compresses and saves them. The arc's busy-frame p99 did not move measurably with it
(benchmarks/RESULTS.md): the slowest busy frames are the model computing, not the captures.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
_STOP = object()


class PngWriter:
    """``write(image, path)`` returns at once; ``close()`` waits until every file is on disk.
    A file that cannot be written is logged and listed in ``failed`` (path, reason); the session
    goes on without it."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self.failed: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._run, name="png-writer", daemon=True)
        self._thread.start()

    def write(self, image: np.ndarray, path: Path) -> None:
        self._jobs.put((image, Path(path)))

    def _run(self) -> None:
        from PIL import Image

        while (job := self._jobs.get()) is not _STOP:
            image, path = job
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".part")
                Image.fromarray(image).save(tmp, format="PNG")
                tmp.replace(path)  # a report never links a half-written picture
            except (OSError, ValueError) as exc:
                log.warning("could not write frame capture %s: %s", path, exc)
                self.failed.append((str(path), str(exc)))

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join()

    def __enter__(self) -> PngWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
