"""The player profile store: one SQLite file per machine, several players, durable commits.

Everything the director learns about a player lives in ``<data dir>/profiles.sqlite3``
(rows) and ``<data dir>/players/<player_id>/`` (files: transcripts, kept audio, saves), so
that ``privacy.export_player`` / ``privacy.delete_player`` can find all of it.

Durability: WAL journal with ``synchronous=FULL`` — when a write method returns, its row
survives a kill -9 or power loss (tests/test_director_durability.py kills writers
mid-loop). ``secure_delete`` is on so deleted rows are overwritten, not left in free pages.

Usage::

    with ProfileStore(ProfileConfig(data_dir=tmp)) as store:
        store.ensure_player("ada")
        row_id = store.record_event("ada", "topic", "lore", features={"interest.lore": 1.0})
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xrstory.director.config import ProfileConfig

SCHEMA_VERSION = 1
PLAYER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # also a safe folder name
SECONDS_PER_DAY = 86400.0

_SCHEMA_V1 = """
CREATE TABLE players (
  id TEXT PRIMARY KEY, display_name TEXT NOT NULL DEFAULT '',
  created REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
  scene_id TEXT NOT NULL, started REAL NOT NULL, ended REAL, ending TEXT);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
  session_id INTEGER, t REAL NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL DEFAULT '',
  value REAL NOT NULL DEFAULT 1.0, detail TEXT);
CREATE INDEX events_player ON events(player_id, t);
-- decayed accumulators: value = sum of x * 2^(-age/half_life), weight = same sum of 1s
CREATE TABLE features (
  player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
  name TEXT NOT NULL, value REAL NOT NULL, weight REAL NOT NULL, updated REAL NOT NULL,
  PRIMARY KEY (player_id, name));
CREATE TABLE transcripts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
  session_id INTEGER, t REAL NOT NULL, speaker TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX transcripts_player ON transcripts(player_id);
CREATE TABLE bandit (
  player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
  model TEXT NOT NULL, state TEXT NOT NULL, updated REAL NOT NULL,
  PRIMARY KEY (player_id, model));
CREATE TABLE decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  player_id TEXT NOT NULL REFERENCES players(id) ON DELETE CASCADE,
  session_id INTEGER, t REAL NOT NULL, arm TEXT NOT NULL, explanation TEXT NOT NULL,
  reward REAL);
CREATE INDEX decisions_player ON decisions(player_id);
"""

MIGRATIONS: dict[int, str] = {}  # version n -> SQL that takes a v(n) file to v(n+1)

# Every table that holds rows about a player, and the column naming the player.
PLAYER_TABLES = {"events": "player_id", "features": "player_id", "transcripts": "player_id",
                 "decisions": "player_id", "bandit": "player_id", "sessions": "player_id",
                 "players": "id"}


class ProfileError(Exception):
    """Bad input or an unusable profile file; the message names the file or value."""


@dataclass(frozen=True)
class Feature:
    value: float  # decayed sum of observations
    weight: float  # decayed number of observations

    @property
    def mean(self) -> float:
        return self.value / self.weight if self.weight > 1e-12 else 0.0


@dataclass(frozen=True)
class PlayerSummary:
    id: str
    display_name: str
    created: float
    last_seen: float
    sessions: int
    events: int


def check_player_id(player_id: str) -> str:
    if not isinstance(player_id, str) or not PLAYER_ID.match(player_id):
        raise ProfileError(f"invalid player id {player_id!r}: use 1-64 letters, digits, '_', '.', '-' "
                           "(starting with a letter or digit)")
    return player_id


class ProfileStore:
    """One open connection to the machine's profile database. A context manager."""

    def __init__(self, config: ProfileConfig | None = None):
        self.config = config or ProfileConfig()
        self.path = self.config.db_path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the runtime calls from worker threads
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
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

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
        with self.transaction() as db:
            db.execute("INSERT INTO players(id, display_name, created, last_seen) VALUES (?,?,?,?) "
                       "ON CONFLICT(id) DO UPDATE SET last_seen=excluded.last_seen",
                       (player_id, display_name, now, now))

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
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def audio_path(self, player_id: str, name: str) -> Path | None:
        """Where the runtime may keep one raw utterance, or None: by default audio is dropped
        after transcription (ProfileConfig.keep_audio). Names are plain file names."""
        if not self.config.keep_audio:
            return None
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
            raise ProfileError(f"invalid audio file name {name!r}")
        folder = self.player_dir(player_id) / "audio"
        folder.mkdir(exist_ok=True)
        return folder / name

    def save_path(self, player_id: str, scene_id: str) -> Path:
        """``players/<id>/saves/<scene>.json``: story saves belong to the player too."""
        if not PLAYER_ID.match(scene_id):
            raise ProfileError(f"invalid scene id {scene_id!r} for a save file name")
        folder = self.player_dir(player_id) / "saves"
        folder.mkdir(exist_ok=True)
        return folder / f"{scene_id}.json"

    # -- sessions, events, features -------------------------------------------------------
    def start_session(self, player_id: str, scene_id: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        self.ensure_player(player_id, now=now)
        with self.transaction() as db:
            return db.execute("INSERT INTO sessions(player_id, scene_id, started) VALUES (?,?,?)",
                              (player_id, scene_id, now)).lastrowid

    def end_session(self, session_id: int, ending: str | None = None, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute("UPDATE sessions SET ended=?, ending=? WHERE id=?", (now, ending, session_id))

    def record_event(self, player_id: str, kind: str, subject: str = "", value: float = 1.0,
                     detail: dict | None = None, session_id: int | None = None,
                     features: dict[str, float] | None = None, now: float | None = None) -> int:
        """Store one observation and fold ``features`` (name -> x) into the decayed
        accumulators, in one durable transaction. Returns the event's row id."""
        check_player_id(player_id)
        if not kind:
            raise ProfileError("event kind must not be empty")
        if not math.isfinite(value):
            raise ProfileError(f"event {kind!r}: value {value!r} is not a finite number")
        now = time.time() if now is None else now
        with self.transaction() as db:
            row_id = db.execute(
                "INSERT INTO events(player_id, session_id, t, kind, subject, value, detail) "
                "VALUES (?,?,?,?,?,?,?)",
                (player_id, session_id, now, kind, subject, value,
                 json.dumps(detail) if detail is not None else None)).lastrowid
            for name, x in (features or {}).items():
                self._fold(db, player_id, name, x, now)
            db.execute("UPDATE players SET last_seen=? WHERE id=?", (now, player_id))
        return row_id

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
                       now: float | None = None) -> int:
        check_player_id(player_id)
        now = time.time() if now is None else now
        with self.transaction() as db:
            return db.execute("INSERT INTO transcripts(player_id, session_id, t, speaker, text) "
                              "VALUES (?,?,?,?,?)", (player_id, session_id, now, speaker, text)).lastrowid

    # -- bandit state and decisions --------------------------------------------------------
    def load_bandit(self, player_id: str, model: str) -> dict | None:
        rows = self._query("SELECT state FROM bandit WHERE player_id=? AND model=?",
                           (check_player_id(player_id), model))
        return json.loads(rows[0][0]) if rows else None

    def save_bandit(self, player_id: str, model: str, state: dict, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.transaction() as db:
            db.execute("INSERT INTO bandit(player_id, model, state, updated) VALUES (?,?,?,?) "
                       "ON CONFLICT(player_id, model) DO UPDATE SET state=excluded.state, "
                       "updated=excluded.updated", (check_player_id(player_id), model,
                                                    json.dumps(state), now))

    def log_decision(self, player_id: str, arm: str, explanation: dict, session_id: int | None = None,
                     now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.transaction() as db:
            return db.execute("INSERT INTO decisions(player_id, session_id, t, arm, explanation) "
                              "VALUES (?,?,?,?,?)", (check_player_id(player_id), session_id, now, arm,
                                                     json.dumps(explanation))).lastrowid

    def set_reward(self, decision_id: int, reward: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE decisions SET reward=? WHERE id=?", (reward, decision_id))

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


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on ';' instead (no ';' inside our SQL)
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
