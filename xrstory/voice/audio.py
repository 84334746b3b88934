"""Audio files and sample-rate conversion: read any WAV/FLAC/OGG (any rate, any channel count)
into mono float32 at the rate we need, with a real resampler (soxr), and clear errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioError(ValueError):
    """A file or buffer that cannot be used as audio; the message names the file and the problem."""


def to_mono(x: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) float32, channel mean."""
    x = np.asarray(x, dtype=np.float32)
    return x if x.ndim == 1 else x.mean(axis=1, dtype=np.float32)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling with soxr (HQ). (n,) or (n, ch) float32 in, same layout out."""
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.float32)
    return soxr.resample(np.asarray(x, dtype=np.float32), rate_in, rate_out, quality="HQ").astype(np.float32)


def read_audio(path: str | Path, rate: int = 16_000, mono: bool = True) -> np.ndarray:
    """Read an audio file into float32 at ``rate`` ((n,) when mono, else (n, ch)).

    Raises ``AudioError`` naming the file for a missing, unreadable, corrupt or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples (empty)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: the audio contains NaN or infinite samples (corrupt)")
    if mono:
        data = to_mono(data)
    return resample(data, file_rate, rate)


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> Path:
    """Write float32 audio ((n,) or (n, ch)) as 16-bit PCM WAV; clips to [-1, 1]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16")
    return path


def rms_db(x: np.ndarray) -> float:
    """Level in dBFS of float audio (-120 for digital silence)."""
    if x.size == 0:
        return -120.0
    return float(20 * np.log10(max(np.sqrt(np.mean(np.square(x, dtype=np.float64))), 1e-6)))
