"""Loopback load test of ``xrstory serve`` (issue 20, item 2), with the real default model.

``CLIENTS`` concurrent clients each send ``ROUNDS`` requests (a bounded loop: no test runs
until something breaks) and a share of them misbehave: half-sent requests, a claimed 300 MiB
body, a hang-up mid-reply, broken JSON. The server is configured small (``max_connections``,
``max_queued``) so the limits are reached. Checked: every well-formed request is answered
200 or refused cleanly with a JSON 429/503 (never a reset or an empty reply), every hostile
one gets a 4xx or is dropped at the read deadline, the server still answers afterwards, and
the process's resident memory (sampled every 50 ms) grows by less than ``RSS_GROWTH_LIMIT_MB``
in a first round and by less than ``RSS_PLATEAU_MB`` more in a second, identical one.
The figures are printed (``pytest -s``) and quoted in docs/PRIVACY.md and the README.
"""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest
from server_clients import chat_body, exchange, request_bytes

from xrstory.mind.server import ServedModel, ServerConfig

pytestmark = pytest.mark.slow

CLIENTS = 24
ROUNDS = 3  # per client and phase
RSS_GROWTH_LIMIT_MB = 192  # first load: malloc arenas of 12 connection threads, torch's caches
RSS_PLATEAU_MB = 48  # the same load a second time


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.fixture(scope="module")
def engine():
    from xrstory.mind.loader import ModelSpec, load_language_model
    from xrstory.mind.server_engine import LocalJsonEngine

    with load_language_model(ModelSpec(device="cpu")) as lm:
        yield LocalJsonEngine(lm)


def _client(port: int, seed: int, outcomes: list[tuple[str, str]]) -> None:
    rng = random.Random(seed)  # fixed per client: the same mix every run
    for _ in range(ROUNDS):
        kind = rng.choice(["good", "good", "good", "stream", "half", "huge", "hangup", "badjson"])
        try:
            if kind in ("good", "stream"):
                got, body = exchange(port, request_bytes(chat_body("Say hello.", max_tokens=4,
                                                                   stream=kind == "stream")))
                ok = got == 200 or (got in (429, 503) and isinstance(body, dict) and "error" in body)
                outcomes.append((kind, str(got) if ok else f"bad {got} {body!r:.80}"))
            elif kind == "half":
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(request_bytes(chat_body())[:40])
                    gone = s.recv(4096)  # b"" at the read deadline, or a 503 when the slots are full
                    outcomes.append((kind, "dropped" if gone in (b"",) or b" 503 " in gone[:20] else f"bad {gone[:40]!r}"))
            elif kind == "huge":
                got, _ = exchange(port, request_bytes(b"{}", length=str(300 << 20)))
                outcomes.append((kind, str(got) if got in (413, 503) else f"bad {got}"))
            elif kind == "badjson":
                got, _ = exchange(port, request_bytes(b'{"messages": [}'))
                outcomes.append((kind, str(got) if got in (400, 503) else f"bad {got}"))
            else:  # hangup: start a long streamed reply and leave
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(request_bytes(chat_body("Tell a long story.", max_tokens=200, stream=True)))
                    s.recv(1)
                outcomes.append((kind, "left"))
        except OSError as exc:
            outcomes.append((kind, f"bad {type(exc).__name__}: {exc}"))


def _phase(port: int, seed: int) -> tuple[list[tuple[str, str]], float, float]:
    """One bounded round of load: (outcomes, seconds, peak RSS in MB sampled every 50 ms)."""
    peak = [_rss_mb()]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    outcomes: list[tuple[str, str]] = []
    t0 = time.monotonic()
    clients = [threading.Thread(target=_client, args=(port, seed + i, outcomes)) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(60)
    took = time.monotonic() - t0
    stop.set()
    sampler.join()
    return outcomes, took, peak[0]


def test_concurrent_clients_are_answered_or_refused_cleanly_in_bounded_memory(engine):
    config = ServerConfig(port=0, max_connections=12, max_queued=4, read_timeout_s=2, read_deadline_s=1.5,
                          request_timeout_s=20, context_tokens=8192)
    with ServedModel(engine, config) as served:
        exchange(served.port, request_bytes(chat_body(max_tokens=2)))
        base = _rss_mb()
        # phase 1 grows the allocator's per-thread arenas and caches to their working size;
        # phase 2, the same load again, must not grow memory further: bounded, not leaking
        first, took1, peak1 = _phase(served.port, 20)
        second, took2, peak2 = _phase(served.port, 20 + CLIENTS)
        after = exchange(served.port, request_bytes(chat_body(max_tokens=2)))
        stats = served.stats
    outcomes = first + second
    bad = [o for o in outcomes if o[1].startswith("bad")]
    counts: dict[str, int] = {}
    for kind, result in outcomes:
        counts[f"{kind}:{result}"] = counts.get(f"{kind}:{result}", 0) + 1
    print(f"\nload: {len(outcomes)} requests from {CLIENTS} concurrent clients, 2 phases in "
          f"{took1:.1f} + {took2:.1f} s; outcomes {dict(sorted(counts.items()))}; server {stats}; "
          f"RSS {base:.0f} MB -> peak {peak1:.0f} MB (phase 1, +{peak1 - base:.1f}) -> {peak2:.0f} MB "
          f"(phase 2, +{peak2 - peak1:.1f})")
    assert len(outcomes) == 2 * CLIENTS * ROUNDS, "a client thread did not finish"
    assert not bad, bad
    assert sum(1 for k, r in outcomes if k in ("good", "stream") and r == "200") >= 10
    assert after[0] == 200, after
    assert peak1 - base < RSS_GROWTH_LIMIT_MB, f"RSS grew {peak1 - base:.0f} MB under load"
    assert peak2 - peak1 < RSS_PLATEAU_MB, f"RSS grew {peak2 - peak1:.0f} MB more under the same load again"
