"""Voice benchmark: ASR real-time factor, end-of-speech -> final transcript latency, word error
rate on the 16 scripted sentences, TTS time to first audio, echo cancellation depth. Medians over
repeats, measured in one run on this machine. The voices are the demo scene's (the scripted
player's and Maren's: the neural hibari voice), through ``AutoTTS`` as a session speaks.

Run: ``python -m xrstory.bench.voice_stages`` prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

SENTENCES = [  # the 16 of tests/test_voice_listen.py
    "Maren, can you light the stove?", "Tobias is freezing.", "Where is the paraffin kept?",
    "Please open the cellar door.", "Tobias, could you fetch the oil from the cellar?",
    "Light the great lamp before the ship hits the rocks.", "Call the Marigold on the radio.",
    "Try channel sixteen.", "Fire a flare so they can see us.", "Guide the ship home past the rocks.",
    "Is there any hot tea?", "Who built the radio on the chart table?", "How long have you kept this lighthouse?",
    "The storm is getting worse.", "Captain Ada Finch is still aboard the Marigold.", "Ring the fog bell.",
]
SCENE = Path(__file__).resolve().parents[2] / "scenes" / "lighthouse"
PROMPT = "Maren, Tobias, the Marigold, Captain Ada Finch, Gull Rock lighthouse, paraffin, cellar, stove, flare, tea."


def run_benchmark(repeats: int = 3) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from xrstory.story import load_scene
    from xrstory.voice.asr import ASRConfig, load_asr
    from xrstory.voice.duplex import Duplex
    from xrstory.voice.ear import Ear, EarConfig, drain
    from xrstory.voice.echo import AcousticPath, EchoCanceller, erle_db
    from xrstory.voice.events import Heard
    from xrstory.voice.mixer import Mixer
    from xrstory.voice.mouth import Mouth
    from xrstory.voice.sources import ScriptedSpeech, chunked
    from xrstory.voice.tts import AutoTTS, VoiceSettings
    from xrstory.voice.vad import load_silero
    from xrstory.voice.wer import word_error_rate

    scene = load_scene(SCENE)
    player, maren = VoiceSettings.of(scene.scene.player_voice), VoiceSettings.of(scene.character("maren").voice)
    result: dict = {"player_voice": player.voice, "character_voice": maren.voice}
    t0 = time.perf_counter()
    asr = load_asr(config=ASRConfig(initial_prompt=PROMPT))
    vad = load_silero()
    result["load_s"] = round(time.perf_counter() - t0, 2)
    with AutoTTS() as tts:
        speech = ScriptedSpeech(tts, player, SENTENCES)
        # ASR real-time factor: transcription time / audio time, per utterance
        rtf = []
        for _ in range(repeats):
            for a, b, _text in speech.spans:
                clip = speech.audio[max(0, a - 2400):b + 2400]
                t = time.perf_counter()
                asr.transcribe(clip)
                rtf.append((time.perf_counter() - t) / (len(clip) / 16000))
        result["asr_rtf_median"] = round(statistics.median(rtf), 3)
        # end of speech (VAD closes the segment) -> final transcript, through the whole ear; one
        # sentence at a time so the latency is not queueing behind earlier sentences
        heard = []
        with Ear(asr, vad, config=EarConfig(partial_every_s=None)) as ear:
            for a, b, _text in speech.spans:
                ear.segmenter.reset()
                ear.listen(chunked(speech.audio[max(0, a - 8000):b + 16000]))
                ear.wait_idle()
                heard += [e for e in drain(ear.events) if isinstance(e, Heard)]
        result["eos_to_transcript_ms_median"] = round(1000 * statistics.median(
            h.t_transcribed - h.t_end_of_speech for h in heard), 1)
        result["wer"] = round(word_error_rate(SENTENCES, [h.text for h in heard]), 3) if len(heard) == len(SENTENCES) else None
        # TTS time to first audio: say() -> first sentence synthesised and queued in the mixer
        line = "Aye, friend. The lamp went dark when the last can ran dry. The spare oil is in the cellar."
        firsts, wholes = [], []
        tts.synthesize("Warm up.", maren)  # the neural voice loads on first use (~0.4 s)
        with Mouth(tts, Mixer()) as mouth:
            for _ in range(repeats * 3):
                lid = mouth.say("maren", line, maren, (-1.3, 0.0, -3.0))
                mouth.wait_idle()
                tm = mouth.timings[lid]
                firsts.append(tm.t_first_audio - tm.t_requested)
                wholes.append(sum(tm.synth_s))
                mouth.interrupt()
                mouth.mixer.render(1536)
        result["tts_first_audio_ms_median"] = round(1000 * statistics.median(firsts), 1)
        result["tts_whole_line_ms_median"] = round(1000 * statistics.median(wholes), 1)
        # echo cancellation depth on a character line leaking into the microphone
        with Ear(asr, vad, echo_canceller=EchoCanceller(), config=EarConfig(partial_every_s=None)) as ear, \
                Mouth(tts, Mixer()) as mouth:
            mouth.say("maren", line, maren, (-1.3, 0.0, -3.0))
            mouth.wait_idle()
            hv = Duplex(ear, mouth, leak=AcousticPath())
            hv.keep_logs = True
            residual = []
            aec = EchoCanceller()
            t = time.perf_counter()
            events = hv.run_until_quiet()
            run_s = time.perf_counter() - t
            for m, r in zip(hv.mic_log, hv.ref_log, strict=True):
                residual.append(aec.process(m, r))
            mic = np.concatenate(hv.mic_log)
            res = np.concatenate(residual)
            half = len(mic) // 2
            result["echo_erle_db_first_half"] = round(erle_db(mic[:half], res[:half]), 1)
            result["echo_erle_db_second_half"] = round(erle_db(mic[half:], res[half:]), 1)
            result["headless_speed_x_realtime"] = round(hv.seconds / run_s, 1)
            ear.wait_idle()
            events += drain(ear.events)  # transcripts finished after the last step
            result["echo_false_utterances"] = sum(isinstance(e, Heard) for e in events)
    return result


if __name__ == "__main__":
    print(json.dumps(run_benchmark(), indent=2))
