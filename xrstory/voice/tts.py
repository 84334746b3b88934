"""Text to speech: a backend interface, espeak-ng, the neural hibari voice (``neural_tts.py``) and
Piper (optional); ``AutoTTS`` picks one per voice name.

A character's voice comes from the scene (``Voice``: voice, rate, pitch, volume); this layer takes
those fields as a ``VoiceSettings`` of its own (layer rule: voice imports nothing else of ours).
Lines are split into sentences so the first one plays while the rest is synthesised (see mouth.py).
"""

from __future__ import annotations

import logging
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from xrstory.voice.espeak import EspeakLibrary, Mark

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"')\]])\s+")


@dataclass(frozen=True)
class VoiceSettings:
    """The fields of ``xrstory.story.scene.Voice``; build with ``VoiceSettings.of(scene_voice)``."""

    voice: str = "en-us"  # espeak-ng voice name, "hibari" (neural), or a Piper .onnx model file
    rate: int = 170  # words per minute
    pitch: int = 50  # 0..99
    volume: float = 1.0  # 0..2, linear gain

    @classmethod
    def of(cls, v: object) -> VoiceSettings:
        """From any object with voice/rate/pitch/volume attributes (duck-typed scene Voice)."""
        return cls(voice=str(v.voice), rate=int(v.rate), pitch=int(v.pitch), volume=float(getattr(v, "volume", 1.0)))


@dataclass(frozen=True)
class SpokenAudio:
    audio: np.ndarray  # (n,) float32 mono
    rate: int  # Hz
    text: str
    words: tuple[Mark, ...] = ()  # word start times (seconds into audio), when the engine gives them
    visemes: tuple[Mark, ...] = ()  # viseme class start times, when the engine gives phonemes

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate


class TTSBackend(Protocol):
    name: str

    def synthesize(self, text: str, voice: VoiceSettings) -> SpokenAudio: ...

    def close(self) -> None: ...


def split_sentences(text: str) -> list[str]:
    """'Aye. The lamp! Go?' -> ['Aye.', 'The lamp!', 'Go?'] (keeps punctuation, drops empties)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


# espeak-ng phoneme mnemonics -> a small viseme set (mouth shapes for a speaking indicator)
_VISEME_BY_PREFIX = (
    (("p", "b", "m"), "PP"), (("f", "v"), "FF"), (("T", "D"), "TH"), (("tS", "dZ", "S", "Z"), "CH"),
    (("s", "z"), "SS"), (("r", "R"), "RR"), (("k", "g", "N", "x", "h"), "kk"), (("t", "d", "n", "l"), "DD"),
    (("a", "A", "V", "&", "aI", "aU"), "aa"), (("e", "E", "3", "@"), "E"), (("i", "I", "j"), "I"),
    (("o", "O", "0"), "O"), (("u", "U", "w"), "U"),
)


def viseme_of(phoneme: str) -> str:
    if phoneme.startswith("_"):
        return "rest"
    for prefixes, vis in _VISEME_BY_PREFIX:
        if phoneme.startswith(prefixes):
            return vis
    return "E"


class EspeakTTS:
    """espeak-ng through libespeak-ng (the library pyttsx3's espeak driver uses): ~10 ms a line,
    distinct voices per character, word and phoneme timings. Thread-safe (calls are serialised)."""

    name = "espeak-ng"

    def __init__(self) -> None:
        self._lib = EspeakLibrary()

    def synthesize(self, text: str, voice: VoiceSettings) -> SpokenAudio:
        s = self._lib.synth(text, voice=voice.voice, rate=voice.rate, pitch=voice.pitch)
        visemes = tuple(Mark("viseme", p.start_s, viseme_of(p.text)) for p in s.phonemes)
        return SpokenAudio(s.audio * np.float32(voice.volume), s.rate, text, s.words, visemes)

    def close(self) -> None:
        self._lib.close()

    def __enter__(self) -> EspeakTTS:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PiperTTS:
    """Piper neural TTS, used when ``voice.voice`` names a local ``.onnx`` voice model (with its
    ``.onnx.json`` beside it). Needs ``pip install piper-tts``; no timings (Piper gives none)."""

    name = "piper"

    def __init__(self) -> None:
        try:
            import piper  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("Piper backend needs 'pip install piper-tts'") from exc
        self._voices: dict[str, object] = {}

    def synthesize(self, text: str, voice: VoiceSettings) -> SpokenAudio:
        from piper import PiperVoice

        path = Path(voice.voice)
        if not path.is_file():
            raise FileNotFoundError(f"Piper voice model not found: {path}")
        if voice.voice not in self._voices:
            self._voices[voice.voice] = PiperVoice.load(str(path))
        pv = self._voices[voice.voice]
        import io

        buf = io.BytesIO()
        with wave.open(buf, "wb") as wf:
            pv.synthesize_wav(text, wf)
        buf.seek(0)
        with wave.open(buf, "rb") as wf:
            rate = wf.getframerate()
            pcm = np.frombuffer(wf.readframes(wf.getnframes()), dtype=np.int16)
        return SpokenAudio(pcm.astype(np.float32) / 32768.0 * voice.volume, rate, text)

    def close(self) -> None:
        self._voices.clear()


class AutoTTS:
    """Routes each voice by its name: "hibari" -> the neural voice, an existing .onnx file ->
    Piper, anything else -> espeak-ng (also the fallback when the neural voice cannot load).
    ``neural``: load the neural voice now (it is the demo scene's; ~1 s with its G2P, which on
    first use would delay a character's first line by that much), else on first use."""

    name = "auto"

    def __init__(self, neural: bool = True) -> None:
        self._espeak = EspeakTTS()
        self._piper: PiperTTS | None = None
        self._neural = None  # neural_tts.HibariTTS
        self._neural_failed: str | None = None
        if neural:
            self._load_neural()

    def _load_neural(self) -> None:
        from xrstory.voice.neural_tts import HibariTTS

        try:
            self._neural = HibariTTS()
        except Exception as exc:  # a broken install must not silence the characters
            self._neural_failed = f"{type(exc).__name__}: {exc}"
            logging.getLogger(__name__).error("neural voice unavailable (%s); speaking with espeak-ng",
                                              self._neural_failed)

    def synthesize(self, text: str, voice: VoiceSettings) -> SpokenAudio:
        from xrstory.voice.neural_tts import is_neural_voice

        if is_neural_voice(voice.voice) and self._neural_failed is None:
            if self._neural is None:
                self._load_neural()
            if self._neural is not None:
                return self._neural.synthesize(text, voice)
        if voice.voice.endswith(".onnx") and Path(voice.voice).is_file():
            self._piper = self._piper or PiperTTS()
            return self._piper.synthesize(text, voice)
        if is_neural_voice(voice.voice):  # fell back: espeak's default voice, same rate and pitch
            voice = VoiceSettings("en-us", voice.rate, voice.pitch, voice.volume)
        return self._espeak.synthesize(text, voice)

    def close(self) -> None:
        self._espeak.close()
        if self._piper:
            self._piper.close()
        if self._neural is not None:
            self._neural.close()

    def __enter__(self) -> AutoTTS:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
