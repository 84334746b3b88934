"""Profile writes survive kill -9: integrity_check stays ok and no committed row is lost.

A subprocess writes profile events in a loop through the real ProfileStore and prints each
row id only after ``record_event`` (and so COMMIT with synchronous=FULL) has returned. We
kill it with SIGKILL at random moments, 20+ times, on the same database file, then check.
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

WRITER = r"""
import sys
from pathlib import Path
from xrstory.director.config import ProfileConfig
from xrstory.director.store import ProfileStore

store = ProfileStore(ProfileConfig(data_dir=Path(sys.argv[1])))
store.ensure_player("crashy")
i = 0
while True:
    i += 1
    row = store.record_event("crashy", "topic", "lore", detail={"i": i},
                             features={"interest.lore": 1.0, "words_per_line": 7.0})
    print(row, flush=True)
"""


def _run_and_kill(data_dir, rng) -> list[int]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
    lines: list[str] = []
    first = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(20), f"writer printed nothing: {proc.stderr.read() if proc.poll() is not None else ''}"
    time.sleep(rng.uniform(0.0, 0.15))  # kill at a random point of the write loop
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    reader.join(10)
    assert proc.returncode == -signal.SIGKILL
    # a line without its newline may be cut mid-print: only whole lines were reported
    return [int(s) for s in lines if s.endswith("\n")]


def test_kill9_during_profile_writes_loses_no_committed_row(tmp_path):
    rng = random.Random(1234)
    reported: list[int] = []
    t0 = time.monotonic()
    kills = 0
    while kills < 20 or time.monotonic() - t0 < 3:
        reported += _run_and_kill(tmp_path, rng)
        kills += 1
        if time.monotonic() - t0 > 20:
            break
    assert kills >= 20, f"only {kills} kills fit in the time budget"
    assert len(reported) > kills  # each writer committed something before dying

    db = sqlite3.connect(tmp_path / "profiles.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    present = {r[0] for r in db.execute("SELECT id FROM events WHERE player_id='crashy'")}
    lost = sorted(set(reported) - present)
    assert not lost, f"{len(lost)} committed rows lost, e.g. {lost[:5]}"
    # features folded in the same transactions as their events: one observation per event
    weight = db.execute("SELECT weight FROM features WHERE player_id='crashy' AND name='interest.lore'").fetchone()[0]
    assert abs(weight - len(present)) < 1e-3 * len(present)
