"""What the profile store hands out and checks: its error, the records it returns (a feature, a
player's summary), the player-id rule, private folders, and the list of a player's files kept
outside their folder. Kept apart from ``store.py`` so the SQLite side reads on its own."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

PLAYER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # also a safe folder name


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


EXTERNAL_FILES = "external_files.json"  # in the player's folder: files about them kept elsewhere


def private_dir(folder: Path) -> Path:
    """``folder`` (and missing parents) made and set to 0700: only this user may look inside."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def external_files(store, player_id: str) -> list[str]:
    """Absolute paths registered with ``register_file`` (files about the player elsewhere)."""
    listing = store.config.player_dir(check_player_id(player_id)) / EXTERNAL_FILES
    try:
        data = json.loads(listing.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ProfileError(f"{listing}: unreadable list of the player's files ({exc})") from None
    return [str(p) for p in data] if isinstance(data, list) else []
