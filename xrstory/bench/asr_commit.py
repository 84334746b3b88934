"""Streaming recognition, measured before building it: would committing the words before a pause
(and transcribing only the rest at the end, with the committed words as Whisper's prompt) give a
sooner or better final transcript than the one pass over the whole utterance the Ear makes now?

Real parts: the player's neural voice speaks the end-of-turn benchmark's lines that have a pause
inside (``ear_endpoint.PAUSED``, mid-sentence, 0.4-0.6 s) and its two-sentence turns (split at the
full stop, 0.4 s between); Whisper tiny.en (int8, one thread, the scene's prompt) transcribes

- ``whole``: the whole utterance, as the Ear's tail job does once the player stops;
- ``commit``: the first half alone (what a streaming recogniser would have committed at the pause),
  then the second half alone with the scene prompt plus the committed words as ``initial_prompt``.

Reported: the final pass's time (median of 3 per line; ``whole`` against ``commit``'s second
half, the only part left at the end) and WER of the joined text against the line.

    python -m xrstory.bench.asr_commit     (about a minute; prints JSON)
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np


def _timed(asr, audio: np.ndarray, repeats: int = 3) -> tuple[str, float]:
    asr.transcribe(audio)  # warm: the first call of a new prompt allocates
    times, text = [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        text = asr.transcribe(audio).text
        times.append(1000 * (time.perf_counter() - t0))
    return text, statistics.median(times)


def lines_with_a_pause() -> list[tuple[str, str, float]]:
    """(before the pause, after it, silence s): the mid-sentence pauses and the two-sentence turns."""
    from xrstory.bench.ear_endpoint import PAUSED, TWO_SENTENCES

    pairs = list(PAUSED)
    for s in TWO_SENTENCES:
        cut = s.index(". ") + 1
        pairs.append((s[:cut], s[cut + 1:], 0.4))
    return pairs


def run() -> dict:
    from dataclasses import replace

    from xrstory.bench.ear_endpoint import PROMPT, spoken
    from xrstory.voice.asr import ASRConfig, FasterWhisperASR
    from xrstory.voice.neural_tts import HibariTTS
    from xrstory.voice.tts import VoiceSettings
    from xrstory.voice.wer import word_error_rate

    tts, voice = HibariTTS(), VoiceSettings()
    asr = FasterWhisperASR(config=ASRConfig(initial_prompt=PROMPT), cpu_threads=1)
    rows, load = [], os.getloadavg()[0]
    for before, after, gap_s in lines_with_a_pause():
        first, second = spoken(tts, voice, before), spoken(tts, voice, after)
        whole = np.concatenate([first, np.zeros(int(gap_s * 16000), np.float32), second])
        text_whole, ms_whole = _timed(asr, whole)
        committed = asr.transcribe(first).text
        asr.config = replace(asr.config, initial_prompt=f"{PROMPT} {committed}")
        text_tail, ms_tail = _timed(asr, second)
        asr.config = replace(asr.config, initial_prompt=PROMPT)
        rows.append({"line": f"{before} {after}", "whole": text_whole, "whole_ms": round(ms_whole),
                     "commit": f"{committed} {text_tail}", "tail_ms": round(ms_tail)})
    refs = [r["line"] for r in rows]
    return {
        "lines": len(rows),
        "final_pass_ms": {"whole": round(statistics.median(r["whole_ms"] for r in rows)),
                          "commit_tail": round(statistics.median(r["tail_ms"] for r in rows))},
        "wer_pct": {"whole": round(100 * word_error_rate(refs, [r["whole"] for r in rows]), 1),
                    "commit": round(100 * word_error_rate(refs, [r["commit"] for r in rows]), 1)},
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "rows": rows,
    }


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(run(), indent=2))
