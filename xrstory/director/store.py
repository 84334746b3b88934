"""The player profile store: one SQLite file per machine, several players, durable commits.

Everything the director learns about a player lives in ``<data dir>/profiles.sqlite3``
(rows) and ``<data dir>/players/<player_id>/`` (files: transcripts, kept audio, saves), so
that ``privacy.export_player`` / ``privacy.delete_player`` can find all of it.

Durability: WAL journal with ``synchronous=FULL`` — when a write method returns, its row
survives a kill -9 or power loss (tests/test_director_durability.py kills writers
mid-loop). ``secure_delete`` is on so deleted rows are overwritten, not left in free pages.

Permissions: the data folder and every player folder are 0700, the database and its
``-wal``/``-shm`` 0600 (SQLite gives those the database file's mode).

A player deleted by another process (``privacy.delete_player``, say ``xrstory profile delete``
while a session runs) stops being recorded cleanly: a write about them is skipped and logged
once, never a foreign-key error in the middle of a turn. ``database is locked`` (another
session writing, a delete's VACUUM) is retried ``ProfileConfig.lock_retries`` times; a write
that still cannot commit waits in a bounded backlog and is committed with the next write, so
the turn goes on and the row is not lost (unless the backlog overflows, which is logged).

Usage::

    with ProfileStore(ProfileConfig(data_dir=tmp)) as store:
        store.ensure_player("ada")
        row_id = store.record_event("ada", "topic", "lore", features={"interest.lore": 1.0})
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from xrstory.director.config import ProfileConfig
from xrstory.director.profile_records import (  # noqa: F401 - also imported from here by callers
    EXTERNAL_FILES,
    PLAYER_ID,
    Feature,
    PlayerSummary,
    ProfileError,
    check_player_id,
    external_files,
    private_dir,
)
from xrstory.director.store_schema import _SCHEMA_V1, MIGRATIONS, SCHEMA_VERSION, _statements

log = logging.getLogger("xrstory.director.store")

SECONDS_PER_DAY = 86400.0

# Every table that holds rows about a player, and the column naming the player.
PLAYER_TABLES = {"events": "player_id", "features": "player_id", "transcripts": "player_id",
                 "decisions": "player_id", "bandit": "player_id", "sessions": "player_id",
                 "players": "id"}


class ProfileStore:
    """One open connection to the machine's profile database. A context manager."""

    def __init__(self, config: ProfileConfig | None = None):
        self.config = config or ProfileConfig()
        self.path = self.config.db_path
        private_dir(self.path.parent)
        self._lock = threading.Lock()  # the runtime calls from worker threads
        self._gone: set[str] = set()  # players deleted under us: no more writes about them
        self._backlog: collections.deque = collections.deque()  # (player_id, op) still to commit
        try:
            # the file exists 0600 before SQLite opens it, so the -wal and -shm it creates are 0600 too
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            for f in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                if f.exists():
                    os.chmod(f, 0o600)
        except OSError as exc:
            raise ProfileError(f"{self.path}: cannot create the profile database ({exc.strerror or exc})") from None
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=self.config.busy_timeout_ms / 1000)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # commit returns only after fsync
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left in free pages
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ProfileError(f"{self.path}: cannot open the profile database ({exc})") from None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None and self._backlog and not self.flush():
            log.warning("%s: %d profile writes could not be committed (database locked)", self.path,
                        len(self._backlog))
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the lock; rolled back on any exception."""
        with self._lock:
            if self._db is None:
                raise ProfileError(f"{self.path}: the profile store is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    # -- guarded writes --------------------------------------------------------------------
    def deletion_marker(self, player_id: str) -> Path:
        """Present while the player's deletion is under way (``privacy.delete_player``)."""
        return Path(self.config.data_dir) / "deleting" / f"{check_player_id(player_id)}.json"

    def is_gone(self, player_id: str) -> bool:
        """True once the player was deleted (or a deletion began) since this store opened."""
        if player_id in self._gone:
            return True
        if self.deletion_marker(player_id).exists():
            self._gone.add(player_id)
            log.warning("player %r is being deleted: their session is no longer recorded", player_id)
            return True
        return False

    def _attempt(self, player_id: str | None, op: Callable[[sqlite3.Connection], object]) -> object:
        """Run ``op`` in one transaction, retrying 'database is locked'; raises ``_Locked`` if it
        stays locked. A foreign-key failure because the player has gone returns None."""
        for attempt in range(self.config.lock_retries + 1):
            try:
                with self.transaction() as db:
                    return op(db)
            except sqlite3.IntegrityError:
                if player_id is not None and not self.has_player(player_id):
                    self._gone.add(player_id)
                    log.warning("player %r was deleted: their session is no longer recorded", player_id)
                    return None
                raise
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                log.info("%s is locked (attempt %d): %s", self.path, attempt + 1, exc)
                time.sleep(0.05 * (attempt + 1))
        raise _Locked(str(self.path))

    def _write(self, player_id: str | None, op: Callable[[sqlite3.Connection], object]) -> object:
        """A write about ``player_id``: skipped if they are gone, backlogged if the database
        stays locked (committed with the next write); returns ``op``'s result or None."""
        if player_id is not None and self.is_gone(player_id):
            return None
        try:
            while self._backlog:  # older writes first, in order
                pid, pending = self._backlog[0]
                if pid is None or not self.is_gone(pid):
                    self._attempt(pid, pending)
                self._backlog.popleft()
            return self._attempt(player_id, op)
        except _Locked:
            if len(self._backlog) >= self.config.max_backlog:
                self._backlog.popleft()
                log.warning("%s: profile write backlog full (%d); the oldest write was dropped",
                            self.path, self.config.max_backlog)
            self._backlog.append((player_id, op))
            log.warning("%s stays locked; a profile write waits for the next one (%d waiting)",
                        self.path, len(self._backlog))
            return None

    def flush(self) -> bool:
        """Commit any backlogged writes now; True when none is left."""
        try:
            while self._backlog:
                pid, pending = self._backlog[0]
                if pid is None or not self.is_gone(pid):
                    self._attempt(pid, pending)
                self._backlog.popleft()
        except _Locked:
            return False
        return True

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ProfileError(f"{self.path}: profile schema version {version} is newer than this "
                               f"xrstory understands ({SCHEMA_VERSION}); upgrade xrstory")
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            # re-read under the write lock: another process may have just created the schema
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for stmt in _statements(_SCHEMA_V1):
                    db.execute(stmt)
                version = 1
            while version < SCHEMA_VERSION:
                for stmt in _statements(MIGRATIONS[version]):
                    db.execute(stmt)
                version += 1
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- players ---------------------------------------------------------------------------
    def ensure_player(self, player_id: str, display_name: str = "", now: float | None = None) -> None:
        check_player_id(player_id)
        now = time.time() if now is None else now
        self._write(player_id, lambda db: db.execute(
            "INSERT INTO players(id, display_name, created, last_seen) VALUES (?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET last_seen=excluded.last_seen", (player_id, display_name, now, now)))

    def has_player(self, player_id: str) -> bool:
        check_player_id(player_id)
        return self._query("SELECT 1 FROM players WHERE id=?", (player_id,)) != []

    def require_player(self, player_id: str) -> None:
        if not self.has_player(player_id):
            raise ProfileError(f"{self.path}: no player {player_id!r} on this machine")

    def list_players(self) -> list[PlayerSummary]:
        rows = self._query(
            "SELECT p.id, p.display_name, p.created, p.last_seen, "
            "(SELECT COUNT(*) FROM sessions s WHERE s.player_id=p.id), "
            "(SELECT COUNT(*) FROM events e WHERE e.player_id=p.id) FROM players p ORDER BY p.id", ())
        return [PlayerSummary(*r) for r in rows]

    def player_dir(self, player_id: str, create: bool = True) -> Path:
        """``<data dir>/players/<id>/``: every file about the player goes under here."""
        folder = self.config.player_dir(check_player_id(player_id))
        if create:
            private_dir(folder.parent)
            private_dir(folder)
        return folder

    def audio_path(self, player_id: str, name: str) -> Path | None:
        """Where the runtime may keep one raw utterance, or None: by default audio is dropped
        after transcription (ProfileConfig.keep_audio). Names are plain file names."""
        if not self.config.keep_audio:
            return None
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
            raise ProfileError(f"invalid audio file name {name!r}")
        return private_dir(self.player_dir(player_id) / "audio") / name

    def save_path(self, player_id: str, scene_id: str) -> Path:
        """``players/<id>/saves/<scene>.json``: story saves belong to the player too."""
        if not PLAYER_ID.match(scene_id):
            raise ProfileError(f"invalid scene id {scene_id!r} for a save file name")
        return private_dir(self.player_dir(player_id) / "saves") / f"{scene_id}.json"

    def register_file(self, player_id: str, path: str | Path) -> None:
        """Note a file about the player written outside their folder (a save or a recording
        at a path the user chose), so ``privacy.delete_player`` removes it too."""
        listing = self.player_dir(player_id) / EXTERNAL_FILES
        known = external_files(self, player_id)
        entry = str(Path(path).resolve())
        if entry not in known:
            from xrstory.story.saves import write_atomic  # temp file + rename: 0600, never torn

            write_atomic(listing, json.dumps(sorted({*known, entry}), indent=1))

    # -- sessions, events, features -------------------------------------------------------
    def start_session(self, player_id: str, scene_id: str, now: float | None = None) -> int | None:
        now = time.time() if now is None else now
        self.ensure_player(player_id, now=now)
        return self._write(player_id, lambda db: db.execute(
            "INSERT INTO sessions(player_id, scene_id, started) VALUES (?,?,?)", (player_id, scene_id, now)).lastrowid)

    def end_session(self, session_id: int | None, ending: str | None = None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if session_id is not None:
            self._write(None, lambda db: db.execute("UPDATE sessions SET ended=?, ending=? WHERE id=?",
                                                    (now, ending, session_id)))

    def record_event(self, player_id: str, kind: str, subject: str = "", value: float = 1.0,
                     detail: dict | None = None, session_id: int | None = None,
                     features: dict[str, float] | None = None, now: float | None = None) -> int | None:
        """Store one observation and fold ``features`` (name -> x) into the decayed
        accumulators, in one durable transaction. Returns the event's row id (None when the
        player has gone or the write waits in the backlog)."""
        check_player_id(player_id)
        if not kind:
            raise ProfileError("event kind must not be empty")
        if not math.isfinite(value):
            raise ProfileError(f"event {kind!r}: value {value!r} is not a finite number")
        now = time.time() if now is None else now
        for name, x in (features or {}).items():
            if not math.isfinite(x):
                raise ProfileError(f"feature {name!r}: value {x!r} is not a finite number")

        def op(db):
            row_id = db.execute(
                "INSERT INTO events(player_id, session_id, t, kind, subject, value, detail) "
                "VALUES (?,?,?,?,?,?,?)",
                (player_id, session_id, now, kind, subject, value,
                 json.dumps(detail) if detail is not None else None)).lastrowid
            for name, x in (features or {}).items():
                self._fold(db, player_id, name, x, now)
            db.execute("UPDATE players SET last_seen=? WHERE id=?", (now, player_id))
            return row_id

        return self._write(player_id, op)

    def _fold(self, db: sqlite3.Connection, player_id: str, name: str, x: float, now: float) -> None:
        if not math.isfinite(x):
            raise ProfileError(f"feature {name!r}: value {x!r} is not a finite number")
        row = db.execute("SELECT value, weight, updated FROM features WHERE player_id=? AND name=?",
                         (player_id, name)).fetchone()
        value, weight = (0.0, 0.0) if row is None else self._decayed(row[0], row[1], row[2], now)
        db.execute("INSERT INTO features(player_id, name, value, weight, updated) VALUES (?,?,?,?,?) "
                   "ON CONFLICT(player_id, name) DO UPDATE SET value=excluded.value, "
                   "weight=excluded.weight, updated=excluded.updated",
                   (player_id, name, value + x, weight + 1.0, now))

    def _decayed(self, value: float, weight: float, updated: float, now: float) -> tuple[float, float]:
        age_days = max(0.0, now - updated) / SECONDS_PER_DAY
        k = 0.5 ** (age_days / self.config.half_life_days)
        return value * k, weight * k

    def features(self, player_id: str, now: float | None = None) -> dict[str, Feature]:
        """Every feature of the player, decayed to ``now``."""
        now = time.time() if now is None else now
        rows = self._query("SELECT name, value, weight, updated FROM features WHERE player_id=?",
                           (check_player_id(player_id),))
        return {name: Feature(*self._decayed(v, w, u, now)) for name, v, w, u in rows}

    def add_transcript(self, player_id: str, speaker: str, text: str, session_id: int | None = None,
                       now: float | None = None) -> int | None:
        check_player_id(player_id)
        now = time.time() if now is None else now
        return self._write(player_id, lambda db: db.execute(
            "INSERT INTO transcripts(player_id, session_id, t, speaker, text) VALUES (?,?,?,?,?)",
            (player_id, session_id, now, speaker, text)).lastrowid)

    # -- bandit state and decisions --------------------------------------------------------
    def load_bandit(self, player_id: str, model: str) -> dict | None:
        rows = self._query("SELECT state FROM bandit WHERE player_id=? AND model=?",
                           (check_player_id(player_id), model))
        return json.loads(rows[0][0]) if rows else None

    def save_bandit(self, player_id: str, model: str, state: dict, now: float | None = None) -> None:
        now = time.time() if now is None else now
        text = json.dumps(state)
        self._write(check_player_id(player_id), lambda db: db.execute(
            "INSERT INTO bandit(player_id, model, state, updated) VALUES (?,?,?,?) "
            "ON CONFLICT(player_id, model) DO UPDATE SET state=excluded.state, updated=excluded.updated",
            (player_id, model, text, now)))

    def log_decision(self, player_id: str, arm: str, explanation: dict, session_id: int | None = None,
                     now: float | None = None) -> int | None:
        now = time.time() if now is None else now
        text = json.dumps(explanation)
        return self._write(check_player_id(player_id), lambda db: db.execute(
            "INSERT INTO decisions(player_id, session_id, t, arm, explanation) VALUES (?,?,?,?,?)",
            (player_id, session_id, now, arm, text)).lastrowid)

    def set_reward(self, decision_id: int | None, reward: float) -> None:
        if decision_id is not None:
            self._write(None, lambda db: db.execute("UPDATE decisions SET reward=? WHERE id=?",
                                                    (reward, decision_id)))

    # -- reading ---------------------------------------------------------------------------
    def rows(self, table: str, player_id: str) -> list[dict]:
        """Every row of ``table`` about the player, as dicts (used by export)."""
        if table not in PLAYER_TABLES:
            raise ProfileError(f"unknown table {table!r}; expected one of {sorted(PLAYER_TABLES)}")
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM {table} WHERE {PLAYER_TABLES[table]}=?",  # noqa: S608 - fixed names
                                   (check_player_id(player_id),))
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def integrity_check(self) -> str:
        return self._query("PRAGMA integrity_check", ())[0][0]

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            if self._db is None:
                raise ProfileError(f"{self.path}: the profile store is closed")
            return self._db.execute(sql, args).fetchall()

    def _raw(self) -> sqlite3.Connection:
        """The connection, for privacy.delete_player (VACUUM, checkpoint). Hold ``_lock``."""
        return self._db


class _Locked(Exception):
    """The database stayed locked through every retry."""
