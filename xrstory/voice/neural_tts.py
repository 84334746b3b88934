"""A neural voice: hibari-tts (Apache-2.0, a distilled Kokoro voice in a 14 MB wheel), made
distinct per character by its own source-filter vocoder.

hibari's network predicts, per 12.5 ms frame, an F0 track and the spectral envelopes of a
harmonic and a noise branch; its DSP (``hibari.dsp.synth``) turns them into a waveform. So a
character's pitch is changed where it is cleanest, before synthesis: F0 is scaled (the envelope,
i.e. the formants, stays: a true source-filter pitch shift, no resampling artefacts), and a
formant shift warps the envelopes along the frequency axis (a shorter or longer vocal tract).
Only one voice ("heart", American English) ships in the wheel; the others download at run time,
which this project does not do, so every character is that voice, shifted.

Mapping from the scene's ``Voice`` fields (the same fields espeak-ng reads):
  rate  words per minute, 170 = hibari's natural pace; other rates stretch the frame sequence
        (the network's own ``speed`` input is far from proportional: speed 0.88 and 1.09 gave
        spoken spans within 5% of each other, mostly its pads changed)
  pitch 0..99, 50 = the voice's own F0; each step is 0.24 semitones (0 -> -12, 99 -> +11.8)
  the formants follow the pitch by a third of its shift (low voices sound larger, not only lower)

hibari pads every sentence with digital silence (~0.2-0.3 s before, ~0.4-0.5 s after): the silence
before is cut (it would only delay the first sound of a reply by a quarter second while the clock
counts the first sample as speech), the one after is made ``SENTENCE_PAUSE_S``: Silero VAD then
hears 384-416 ms of silence between the sentences of a line, as with espeak-ng (352-416 ms), about
as long as people pause between sentences of one turn; the end-of-turn settings (``vad.VADConfig``)
were measured with that pause.

hibari gives no phoneme timings, so visemes are laid out from its phoneme string over the voiced
span of the audio in proportion to typical phoneme lengths: good enough for a mouth, not for
lip-sync research.

Voice names: ``hibari`` (or ``hibari:heart``) in a scene's ``voice`` field selects this backend
(see ``tts.AutoTTS``).
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass

import numpy as np

from xrstory.voice.espeak import Mark

SEMITONES_PER_PITCH_STEP = 0.24
FORMANT_FOLLOWS_PITCH = 1 / 3
NATURAL_WPM = 170.0
SENTENCE_PAUSE_S = 0.35  # silence after each sentence's last audible sound
LEAD_S = 0.02  # silence kept before its first
AUDIBLE = 10 ** (-60 / 20)  # a 10 ms frame below -60 dBFS RMS is silence (hibari's pads are ~-138 dB)
# every sentence is brought to one speech level (RMS of its 10 ms frames above -40 dBFS): espeak-ng's
# (0.106 on a Maren line), so the mix, the storm bed and the echo path keep the balance they were
# tuned with. hibari's own is 0.057-0.068, and pulses at a lower F0 carry more energy (pitch 8 came
# out 6 dB louder); Tobias then peaks at ~0.85
SPEECH_RMS = 0.1
VOICE_PREFIX = "hibari"

# misaki/Kokoro phoneme alphabet -> the viseme set of tts.viseme_of (same names)
_VISEME_OF_PHONEME = {
    **dict.fromkeys("pbm", "PP"), **dict.fromkeys("fv", "FF"), **dict.fromkeys("θð", "TH"),
    **dict.fromkeys("ʃʒʧʤ", "CH"), **dict.fromkeys("sz", "SS"), **dict.fromkeys("ɹr", "RR"),
    **dict.fromkeys("kgŋh", "kk"), **dict.fromkeys("tdnlɾ", "DD"),
    **dict.fromkeys("aɑæʌAIWQ", "aa"), **dict.fromkeys("eɛəɜɚᵊ", "E"), **dict.fromkeys("iɪjY", "I"),
    **dict.fromkeys("oɔO", "O"), **dict.fromkeys("uʊw", "U"),
}
_VOWEL_VISEMES = {"aa", "E", "I", "O", "U"}
_PAUSES = set(" ,.!?;:—…")


@dataclass(frozen=True)
class VoiceShift:
    """How one character's voice differs from the packaged one."""

    speed: float = 1.0  # tempo: frames are played this much faster (0.5 slow .. 2.0 fast)
    pitch_factor: float = 1.0  # F0 multiplier
    formant_factor: float = 1.0  # envelope frequency multiplier (>1: smaller speaker)

    @classmethod
    def of(cls, rate: int, pitch: int) -> VoiceShift:
        semitones = (pitch - 50) * SEMITONES_PER_PITCH_STEP
        return cls(speed=float(np.clip(rate / NATURAL_WPM, 0.5, 2.0)),
                   pitch_factor=2.0 ** (semitones / 12),
                   formant_factor=2.0 ** (semitones * FORMANT_FOLLOWS_PITCH / 12))


def _warp_bins(env: np.ndarray, factor: float) -> np.ndarray:
    """Envelope ``(bins, frames)`` with its features moved from bin k to bin k * factor."""
    if abs(factor - 1.0) < 1e-3:
        return env
    bins = env.shape[0]
    src = np.clip(np.arange(bins, dtype=np.float32) / factor, 0, bins - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, bins - 1)
    w = (src - lo)[:, None].astype(np.float32)
    return env[lo] * (1 - w) + env[hi] * w


def trim_silence(audio: np.ndarray, rate: int, lead_s: float = LEAD_S,
                 pause_s: float = SENTENCE_PAUSE_S) -> np.ndarray:
    """``audio`` from ``lead_s`` before its first audible 10 ms frame to ``pause_s`` after its last
    (zeros appended where the synthesised pad is shorter); all-silent audio -> empty."""
    frame = max(1, rate // 100)
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)) if n else np.zeros(0)
    loud = np.nonzero(rms > AUDIBLE)[0]
    if len(loud) == 0:
        return np.zeros(0, np.float32)
    start = max(0, loud[0] * frame - int(lead_s * rate))
    end = (loud[-1] + 1) * frame
    want = end + int(pause_s * rate)
    out = audio[start:min(want, len(audio))]
    return np.concatenate([out, np.zeros(want - len(audio), np.float32)]) if want > len(audio) else out


def level(audio: np.ndarray, rate: int) -> float:
    """RMS of the 10 ms frames above -40 dBFS (the speech, not its pauses); 0 for silence."""
    frame = max(1, rate // 100)
    n = len(audio) // frame
    if n == 0:
        return 0.0
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    loud = rms[rms > 0.01]
    return float(np.sqrt(np.mean(loud ** 2))) if len(loud) else 0.0


def _stretch_frames(arrays: tuple[np.ndarray, ...], f0: np.ndarray, tempo: float):
    """The network's per-frame outputs (each ``(bins, frames)``; ``f0`` ``(frames,)``) resampled to
    ``frames / tempo`` frames: log envelopes interpolated linearly, the two phase branches taken
    from the nearest frame (phases do not average), F0 interpolated only between voiced frames
    (an unvoiced neighbour keeps the frame unvoiced)."""
    frames = len(f0)
    n = max(1, int(round(frames / tempo)))
    if n == frames:
        return arrays, f0
    src = np.minimum(np.arange(n, dtype=np.float64) * frames / n, frames - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, frames - 1)
    w = (src - lo).astype(np.float32)
    near = np.where(w < 0.5, lo, hi)
    lh, th, ln, lr, phi = arrays
    lin = [a[:, lo] * (1 - w) + a[:, hi] * w for a in (lh, ln, lr)]
    voiced = (f0[lo] > 0) & (f0[hi] > 0)
    f0_new = np.where(voiced, f0[lo] * (1 - w) + f0[hi] * w, f0[near]).astype(np.float32)
    return (lin[0], th[:, near], lin[1], lin[2], phi[:, near]), f0_new


def layout_visemes(phonemes: str, audio: np.ndarray, rate: int) -> tuple[Mark, ...]:
    """Viseme marks for ``phonemes`` spread over the voiced span of ``audio`` (see module doc)."""
    if not phonemes or len(audio) == 0:
        return ()
    frame = max(1, rate // 100)  # 10 ms
    n = len(audio) // frame
    if n == 0:
        return ()
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.nonzero(rms > max(1e-4, 0.05 * float(rms.max())))[0]
    if len(loud) == 0:
        return ()
    start, end = loud[0] * frame / rate, (loud[-1] + 1) * frame / rate
    units: list[tuple[str, float]] = []
    for ch in phonemes:
        if ch in _PAUSES:
            units.append(("rest", 1.2 if ch != " " else 0.3))
        elif ch in _VISEME_OF_PHONEME:
            vis = _VISEME_OF_PHONEME[ch]
            units.append((vis, 1.6 if vis in _VOWEL_VISEMES else 1.0))
    total = sum(w for _, w in units) or 1.0
    marks, t, last = [], start, None
    for vis, w in units:
        if vis != last:
            marks.append(Mark("viseme", round(float(t), 4), vis))
            last = vis
        t += (end - start) * w / total
    if last != "rest":
        marks.append(Mark("viseme", round(float(end), 4), "rest"))
    return tuple(marks)


class HibariTTS:
    """hibari-tts with a per-character pitch and formant shift; thread-safe (calls serialised).
    Loads in ~0.15 s; its G2P loads on first use (0.8 s quiet, 2.5 s at load 4) and the first
    synthesis warms onnxruntime (~0.25 s), so ``__init__`` does both: the first line a character
    says is not late by a second."""

    name = "hibari"

    def __init__(self, threads: int = 1) -> None:
        try:
            from hibari import Hibari, dsp
        except ImportError as exc:  # a dependency of record; only a broken install lands here
            raise RuntimeError("the neural voice needs 'pip install hibari-tts'") from exc
        self._tts = Hibari(threads=threads)
        self._dsp = dsp
        self.rate = int(self._tts.sample_rate)  # 24 kHz
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(0)
        self._synth_phonemes(self._tts.phonemize("Ready.")[0], VoiceShift())

    def _synth_phonemes(self, phonemes: str, shift: VoiceShift) -> np.ndarray:
        ids = self._tts.ids(phonemes)
        if len(ids) < 3:
            return np.zeros(0, np.float32)
        out = self._tts.sess.run(None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([1.0], np.float32)})
        lh, th, ln, lr, phi, f0 = (o[0] for o in out)  # envelopes (601, frames), f0 (frames,) Hz
        (lh, th, ln, lr, phi), f0 = _stretch_frames((lh, th, ln, lr, phi), np.asarray(f0, np.float32), shift.speed)
        k = shift.formant_factor
        lh, th, ln, lr, phi = (_warp_bins(a, k) for a in (lh, th, ln, lr, phi))
        f0 = f0 * np.float32(shift.pitch_factor)
        audio = self._dsp.synth(lh, th, ln, lr, phi, f0, self._rng).astype(np.float32)
        if (now := level(audio, self.rate)) > 0:
            audio *= np.float32(SPEECH_RMS / now)
        return trim_silence(audio, self.rate)

    def synthesize(self, text: str, voice) -> object:
        """Text in a character's voice (``tts.VoiceSettings``) -> ``tts.SpokenAudio`` at 24 kHz."""
        from xrstory.voice.tts import SpokenAudio

        shift = VoiceShift.of(voice.rate, voice.pitch)
        with self._lock:
            # a fixed noise seed per line: the same line sounds the same every time (tests, replays)
            self._rng = np.random.default_rng(zlib.crc32(f"{voice.pitch}/{voice.rate}/{text}".encode()))
            parts, marks, offset = [], [], 0.0
            for ps in self._tts.phonemize(text):
                a = self._synth_phonemes(ps, shift)
                marks += [Mark(m.kind, m.start_s + offset, m.text) for m in layout_visemes(ps, a, self.rate)]
                parts.append(a)
                offset += len(a) / self.rate
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return SpokenAudio(audio * np.float32(voice.volume), self.rate, text, (), tuple(marks))

    def close(self) -> None:
        self._tts = None

    def __enter__(self) -> HibariTTS:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def is_neural_voice(name: str) -> bool:
    return name == VOICE_PREFIX or name.startswith(VOICE_PREFIX + ":")
