"""Where the director keeps the player's data, and the knobs of pacing and personalization.

Plain dataclasses, passed in by the caller (no global settings). The data dir defaults to
``$XDG_DATA_HOME/xrstory`` (or ``~/.local/share/xrstory``); tests pass a tmp dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/xrstory``, falling back to ``~/.local/share/xrstory`` (XDG spec)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "xrstory"


@dataclass
class ProfileConfig:
    """The on-disk profile store: one SQLite file per machine, one folder per player."""

    data_dir: Path = field(default_factory=default_data_dir)
    # Raw microphone audio is dropped after transcription unless this is set (see docs/PRIVACY.md).
    keep_audio: bool = False
    # Preferences fade: a feature observed `half_life_days` ago counts half as much as one today.
    half_life_days: float = 14.0
    busy_timeout_ms: int = 5000  # another process (a second headset session) may hold the write lock
    lock_retries: int = 2  # more tries after 'database is locked' outlasts busy_timeout_ms
    max_backlog: int = 256  # writes kept in memory while the database stays locked

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "profiles.sqlite3"

    def player_dir(self, player_id: str) -> Path:
        return Path(self.data_dir) / "players" / player_id


@dataclass
class PacingConfig:
    """When the story is stalling and a character should nudge the player."""

    silence_nudge_s: float = 30.0  # seconds without player speech before a nudge
    # Cosine similarity (embeddings) under which a player's line is off the beat's topic.
    # all-MiniLM-L6-v2: related phrasings score ~0.3-0.6, unrelated ones ~0.0-0.2.
    embed_on_topic: float = 0.25
    # Lexical fallback: share of the line's content words found in the beat's vocabulary.
    lexical_on_topic: float = 0.15
    nudge_cooldown_turns: int = 2  # player turns after a nudge before another off-topic nudge


@dataclass
class BanditConfig:
    """LinUCB over arm features x context features (see recommend.py)."""

    alpha: float = 0.6  # exploration weight: the UCB bonus is alpha * sqrt(x^T A^-1 x)
    ridge: float = 1.0  # A starts as ridge * I
    seed: int = 0  # ties between equal scores break by a seeded RNG, so runs repeat
