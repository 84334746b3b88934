"""Audio in and out: sources, VAD, Whisper ASR, TTS per character, the spatial mixer, barge-in.

Imports nothing else of ours (positions are plain tuples; a scene ``Voice`` becomes a
``tts.VoiceSettings``). Nothing heavy is imported here: import the module you need.

Map (one idea per file):
  events.py   typed events (monotonic ``t`` + audio ``frame`` at 16 kHz)
  clock.py    the audio clock's unit: CHUNK (512 samples at 16 kHz = 32 ms)
  audio.py    read any audio file to 16 kHz mono (soxr), AudioError naming the file
  sources.py  MicSource, FileSource, ArraySource, ScriptedSpeech (text -> player voice -> mic path)
  vad.py      Silero VAD -> speech segments (onset, closing silence, min length, forced splits)
  asr.py      ASR backends (faster-whisper default, openai-whisper) + hallucination guards
  ear.py      listening pipeline: chunks -> echo canceller -> VAD -> ASR worker -> events
  espeak.py   libespeak-ng via ctypes: audio + word and phoneme timings
  tts.py      TTS backends (espeak-ng default, Piper optional), sentence split, visemes
  spatial.py  ILD / ITD / distance placement relative to the listener's head
  cues.py     trigger sound cues and the ambient bed (numpy-synthesised or assets/sounds/*.wav)
  mixer.py    stereo 48 kHz mix of lines, cues, ambient; speaking events at audio time
  mouth.py    the one speaker: lines (tagged with their turn) -> sentences -> TTS thread -> mixer; interrupt
  echo.py     leak model, adaptive echo canceller, transcript-vs-spoken comparison
  duplex.py   the one duplex loop: Duplex.step(head, inputs) per 32 ms chunk (listener, push-to-talk,
              mixer, reference, mic + room echo, echo notes, ear, barge-in) -> voice events
  (its bench is ``xrstory.bench.voice_stages``; its commands ``xrstory hear`` / ``say`` are in ``xrstory/cli/voice.py``)
"""
