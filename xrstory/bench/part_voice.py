"""Benchmark part "voice": ASR real-time factor, end of speech -> final transcript through the
ear (VAD + Whisper), TTS time to first audio. The voice layer's own bench
(``xrstory.bench.voice_stages.run_benchmark``) does the measuring; this part names the figures.

Run alone:  python -m xrstory.bench.worker voice
"""

from __future__ import annotations

from xrstory.bench.options import BenchOptions


def run_voice_part(opts: BenchOptions) -> dict:
    from xrstory.bench.voice_stages import run_benchmark

    raw = run_benchmark(repeats=opts.repeats)
    return {
        "asr_rtf": raw.get("asr_rtf_median"),  # transcription seconds per second of audio
        "asr_end_to_transcript_ms": raw.get("eos_to_transcript_ms_median"),
        "tts_first_audio_ms": raw.get("tts_first_audio_ms_median"),
        "tts_whole_line_ms": raw.get("tts_whole_line_ms_median"),
        "asr_wer": raw.get("wer"),
        "repeats": opts.repeats,
        "raw": raw,
    }
