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


# What a file may hold before it is read (its header is checked first, so a 16 kB file
# claiming 1 Hz cannot become 256 MB after resampling): rates from telephone to studio,
# up to 10 minutes, up to 32 channels. Samples beyond +-64 (36 dB over full scale) are not
# audio: float files may exceed 1.0 a little, never by that much.
MIN_RATE, MAX_RATE = 4_000, 384_000
MAX_SECONDS = 600.0
MAX_CHANNELS = 32
MAX_ABS_SAMPLE = 64.0


def probe_audio(path: str | Path) -> sf._SoundFileInfo:
    """The file's header (rate, channels, frames), checked against the limits above;
    ``AudioError`` naming the file and the value otherwise. Reads no samples."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioError(f"{path}: sample rate {info.samplerate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioError(f"{path}: {info.channels} channels (at most {MAX_CHANNELS})")
    if info.frames / info.samplerate > MAX_SECONDS:
        raise AudioError(f"{path}: {info.frames / info.samplerate:.0f} s of audio, more than the "
                         f"{MAX_SECONDS:.0f} s limit")
    return info


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
    info = probe_audio(path)
    try:
        # frames: at most what the header promised (checked above), whatever the data holds
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True, frames=max(info.frames, 1))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no audio samples (empty)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: the audio contains NaN or infinite samples (corrupt)")
    if mono:
        with np.errstate(over="ignore"):  # an overflow is caught just below, by value
            data = to_mono(data)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if not np.isfinite(peak) or peak > MAX_ABS_SAMPLE:
        raise AudioError(f"{path}: samples reach {peak:.3g}, not audio (more than {MAX_ABS_SAMPLE:g} "
                         f"times full scale{', after the downmix to mono' if mono else ''})")
    out = resample(data, file_rate, rate)
    if not np.isfinite(out).all():
        raise AudioError(f"{path}: the audio is not finite after resampling to {rate} Hz")
    return out


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
