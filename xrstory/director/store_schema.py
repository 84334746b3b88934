"""The profile database's schema (``PRAGMA user_version``) and its migrations, as SQL.

``store.ProfileStore`` applies them when it opens a file: version 0 (new) gets ``_SCHEMA_V1``,
then ``MIGRATIONS[n]`` takes a file from version n to n+1.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

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


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on ';' instead (no ';' inside our SQL)
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
