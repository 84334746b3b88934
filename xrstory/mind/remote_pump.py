"""One streamed chat completion read in a helper thread, so the turn's own thread never blocks.

``RemoteMind`` asks a server for a reply and must be able to stop waiting at any moment: when
the turn's overall deadline passes (a server that trickles a byte a second never trips a
per-read timeout) and when the player barges in (``should_stop``), even while the server sends
nothing. The request and every read happen in a daemon thread that hands chunks over a queue;
the turn polls the queue, its deadline and ``should_stop`` every ``POLL_S``, and ``close()``
closes the response, so the connection is dropped and the server can stop generating.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

POLL_S = 0.02  # how soon a barge-in or the deadline is noticed while the server is silent


class TurnDeadline(TimeoutError):
    """The whole remote turn took longer than ``RemoteConfig.timeout_s``."""


class ChunkPump:
    def __init__(self, client, request: dict, timeout_s: float):
        self._client = client
        self._timeout_s = timeout_s
        self._request = request
        self._queue: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._stream = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="xrstory-remote-read", daemon=True)

    def _run(self) -> None:
        try:
            stream = self._client.chat.completions.create(**self._request)
            with self._lock:
                self._stream = stream
                if self._closed.is_set():
                    stream.close()
                    return
            with stream:
                for chunk in stream:
                    if self._closed.is_set():
                        return
                    self._queue.put(("chunk", chunk))
            self._queue.put(("end", None))
        except Exception as exc:  # handed to the turn's thread, which decides (fallback line)
            if not self._closed.is_set():
                self._queue.put(("error", exc))

    def chunks(self, deadline: float, should_stop: Callable[[], bool] | None) -> Iterator[object | None]:
        """The stream's chunks; ``None`` once when ``should_stop()`` is true (then stop iterating);
        raises ``TurnDeadline`` at ``deadline`` (monotonic) and the reader's own errors."""
        self._thread.start()
        while True:
            if should_stop is not None and should_stop():
                yield None
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TurnDeadline(f"no complete reply within the turn's deadline "
                                   f"({self._timeout_s:g} s passed)")
            try:
                kind, item = self._queue.get(timeout=min(POLL_S, left))
            except queue.Empty:
                continue
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item

    def close(self) -> None:
        """Stop reading and drop the connection (from any thread; the reader ends at its next read)."""
        self._closed.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing under a concurrent read may complain; the reader is a daemon
                pass
