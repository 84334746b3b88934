"""libespeak-ng through ctypes: synthesis into memory with word and phoneme timings.

Why not the espeak-ng CLI: its ``--pho`` output is empty for ordinary (non-mbrola) voices, so the
CLI gives audio but no timings. Why not pyttsx3's engine: its run loop is not safe to drive from
worker threads, and it does not surface phoneme events. This module uses the same library pyttsx3's
espeak driver loads, in synchronous mode, where ``espeak_Synth`` returns after every callback.

libespeak-ng keeps one global synthesiser per process, so every call goes through ``_LIB_LOCK``
(a lock around a native singleton, not a settings singleton).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np

_LIB_LOCK = threading.Lock()

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
CHARS_UTF8 = 1
POS_CHARACTER = 1
P_RATE, P_VOLUME, P_PITCH, P_RANGE = 1, 2, 3, 4
EV_LIST_TERMINATED, EV_WORD, EV_SENTENCE, EV_END, EV_PHONEME = 0, 1, 2, 5, 7


class _EventId(ctypes.Union):
    _fields_ = (("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8))


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


class _VoiceSpec(ctypes.Structure):
    _fields_ = (("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p))


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Mark:
    """A timing mark in synthesised audio: a word (text span) or a phoneme (espeak mnemonic)."""

    kind: str  # "word" | "phoneme"
    start_s: float
    text: str


@dataclass(frozen=True)
class Synthesis:
    audio: np.ndarray  # (n,) float32 mono
    rate: int  # Hz (22050 for espeak-ng voices)
    words: tuple[Mark, ...]
    phonemes: tuple[Mark, ...]


class EspeakError(RuntimeError):
    pass


class _Native:
    """The process-wide libespeak-ng state: loaded and initialised once, shared by every
    EspeakLibrary (the C library holds one synthesiser per process), reference-counted."""

    dll = None
    rate = 0
    users = 0
    chunks: list[np.ndarray] = []
    events: list[tuple[int, int, int, str]] = []  # (type, ms, text_pos, phoneme)

    @staticmethod
    def on_audio(wav, n, events) -> int:
        if n > 0:
            _Native.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768.0)
        i = 0
        while events[i].type != EV_LIST_TERMINATED:
            ev = events[i]
            ph = ev.id.string.decode("utf-8", "replace") if ev.type == EV_PHONEME else ""
            _Native.events.append((ev.type, ev.audio_position, ev.text_position, ph))
            i += 1
        return 0  # 0 = continue synthesis


_CALLBACK_REF = _CALLBACK(_Native.on_audio)  # module-lifetime: C keeps this pointer


class EspeakLibrary:
    """A handle on libespeak-ng. ``with EspeakLibrary() as lib: lib.synth(...)``."""

    def __init__(self) -> None:
        with _LIB_LOCK:
            if _Native.dll is None:
                name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
                try:
                    d = ctypes.CDLL(name)
                except OSError as exc:
                    raise EspeakError(f"libespeak-ng not found ({exc}): 'apt-get install libespeak-ng1'") from exc
                d.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
                d.espeak_SetSynthCallback.argtypes = (_CALLBACK,)
                d.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
                d.espeak_SetVoiceByProperties.argtypes = (ctypes.POINTER(_VoiceSpec),)
                d.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
                d.espeak_Synth.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                           ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)
                _Native.dll = d
            if _Native.rate == 0:
                _Native.rate = _Native.dll.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, None,
                                                             INITIALIZE_PHONEME_EVENTS)
                if _Native.rate <= 0:
                    raise EspeakError("espeak_Initialize failed (espeak-ng data missing?)")
                _Native.dll.espeak_SetSynthCallback(_CALLBACK_REF)
            _Native.users += 1
            self.rate = _Native.rate
            self._dll = _Native.dll
        self._open = True

    def __enter__(self) -> EspeakLibrary:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with _LIB_LOCK:
            if not self._open:
                return
            self._open = False
            _Native.users -= 1
            # No espeak_Terminate: re-initialising after it left the process hanging at exit
            # (measured), and the synthesiser is process-wide anyway; the OS frees it at exit.

    def synth(self, text: str, voice: str = "en-us", rate: int = 170, pitch: int = 50,
              volume: int = 100) -> Synthesis:
        """Synthesise ``text``; raises EspeakError naming an unknown voice."""
        raw = text.encode("utf-8")
        buf = ctypes.create_string_buffer(raw)
        with _LIB_LOCK:
            # a voice name or file ("en-us", "gmw/en"), else a language code ("en-gb"), as the CLI does
            if (self._dll.espeak_SetVoiceByName(voice.encode()) != 0
                    and self._dll.espeak_SetVoiceByProperties(ctypes.byref(_VoiceSpec(languages=voice.encode()))) != 0):
                raise EspeakError(f"espeak-ng has no voice '{voice}' (see 'espeak-ng --voices')")
            self._dll.espeak_SetParameter(P_RATE, int(rate), 0)
            self._dll.espeak_SetParameter(P_PITCH, int(pitch), 0)
            self._dll.espeak_SetParameter(P_VOLUME, int(volume), 0)
            _Native.chunks, _Native.events = [], []
            err = self._dll.espeak_Synth(buf, len(raw) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            if err != 0:
                raise EspeakError(f"espeak_Synth failed with code {err} for text {text[:40]!r}")
            chunks, events = _Native.chunks, _Native.events
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        words, phonemes = [], []
        seen: set[int] = set()
        # text_position is a 1-based character index into the UTF-8 text; cut words at spaces
        for typ, ms, pos, ph in events:
            if typ == EV_WORD:
                start = pos - 1
                # espeak also sends word events at clause pauses (position 0 or on punctuation);
                # keep only those that point at the start of a word, once each
                if start < 0 or start in seen or not (raw[start:start + 1].isalnum() or raw[start] >= 0x80):
                    continue
                seen.add(start)
                end = raw.find(b" ", start)
                word = raw[start:end if end >= 0 else None].decode("utf-8", "replace")
                if word:
                    words.append(Mark("word", ms / 1000, word))
            elif typ == EV_PHONEME and ph.strip():
                phonemes.append(Mark("phoneme", ms / 1000, ph.strip()))
        return Synthesis(audio, self.rate, tuple(words), tuple(phonemes))
