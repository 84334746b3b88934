"""The limits ``xrstory serve`` holds clients to: read deadlines, the generation queue, cancellation.

- ``Deadlines``: one watcher thread drops any connection whose request is not read in full by
  its deadline (a per-read timeout alone lets a client trickle a byte every few seconds forever);
- ``GenerationQueue``: one generation at a time, at most ``max_waiting`` waiting (``QueueFull``
  beyond: the server's 429), a waiter leaves when its client goes or its deadline passes;
- ``client_gone``: has the peer closed its end? Checked between tokens, so a client that hangs
  up stops its generation within one token;
- ``Cancelled``: raised from the engine's ``on_token`` to stop a generation;
- ``refuse_busy``: the 503 written on the accepting thread when every connection slot is taken.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator


class QueueFull(RuntimeError):
    pass


class Cancelled(RuntimeError):
    """A generation (or the wait for one) stopped: the client went away or the deadline passed."""

    def __init__(self, message: str, client_gone: bool):
        super().__init__(message)
        self.client_gone = client_gone

    @staticmethod
    def check(gone: Callable[[], bool], deadline: float) -> None:
        if gone():
            raise Cancelled("the client went away", client_gone=True)
        if time.monotonic() > deadline:
            raise Cancelled("the request's deadline passed (ServerConfig.request_timeout_s)", client_gone=False)


def client_gone(sock: socket.socket) -> bool:
    """True if the peer has closed the connection (a readable socket with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):  # reset, or already closed
        return True


class GenerationQueue:
    def __init__(self, max_waiting: int):
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._waiting = 0
        self._busy = False
        self.peak_waiting = 0

    @contextlib.contextmanager
    def turn(self, gone: Callable[[], bool], deadline: float) -> Iterator[None]:
        """Hold the model for one generation; ``QueueFull`` at once if too many wait already."""
        with self._cond:
            if self._busy and self._waiting >= self.max_waiting:
                raise QueueFull(f"server busy: {self._waiting} requests already wait for the model "
                                f"(limit {self.max_waiting}); retry shortly")
            self._waiting += 1
            self.peak_waiting = max(self.peak_waiting, self._waiting)
            try:
                while self._busy:
                    Cancelled.check(gone, deadline)
                    self._cond.wait(0.05)
                Cancelled.check(gone, deadline)
                self._busy = True
            finally:
                self._waiting -= 1
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify()


class Deadlines:
    """Shuts down connections still reading their request past their deadline."""

    def __init__(self, period_s: float = 0.1):
        self._period_s = period_s
        self._due: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.expired = 0
        self._thread = threading.Thread(target=self._run, name="xrstory-serve-deadlines", daemon=True)
        self._thread.start()

    def watch(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            self._due[sock] = time.monotonic() + seconds

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._due.pop(sock, None)

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            now = time.monotonic()
            with self._lock:
                late = [s for s, t in self._due.items() if t <= now]
                for s in late:
                    del self._due[s]
            for s in late:
                self.expired += 1
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)  # the handler's read fails; its thread ends

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


def drain(sock, limit: int = 1 << 20) -> None:
    """Read what the client already sent, without waiting: closing with unread data sends a
    reset, and the client would see "connection reset" instead of the error we answered."""
    got = 0
    with contextlib.suppress(BlockingIOError, OSError):
        # non-blocking mode, not only MSG_DONTWAIT: a socket with a timeout polls for up to
        # the timeout before each recv, whatever the flags (the socket is closed next anyway)
        sock.setblocking(False)
        while got < limit and (part := sock.recv(65536)):
            got += len(part)


def refuse_busy(sock) -> None:
    body = json.dumps({"error": {"message": "server busy: too many connections, retry shortly",
                                 "type": "server_error", "param": None, "code": None}}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n").encode()
    try:
        sock.settimeout(1.0)
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        drain(sock)
    except OSError:
        pass
