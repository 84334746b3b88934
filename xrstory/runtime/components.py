"""The heavy parts a session needs, loaded once (with progress) and closed in reverse order.

``xrstory run A B C`` shares one ``Components`` across playthroughs: the model, Whisper, the
VAD, the embedder and the TTS engine load once per process.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from xrstory.runtime.adapter_choice import choose_adapter
from xrstory.runtime.jobs import NewThreads
from xrstory.story.scene import Scene

log = logging.getLogger(__name__)


@dataclass
class Components:
    language_model: object  # mind.engine.Engine (None with a remote server: session.py uses RemoteMind)
    asr: object  # voice.asr.ASRBackend
    vad_model: object
    tts: object  # voice.tts.TTSBackend
    embedder: object | None
    adapter: str | None
    load_s: dict[str, float] = field(default_factory=dict)
    # native threads the model and Whisper started while loading (their compute pools): the
    # session lowers them below the frame loop (SessionConfig.compute_nice)
    compute_threads: set[int] = field(default_factory=set)
    _stack: ExitStack = field(default_factory=ExitStack)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Components:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def resolve_adapter(scene: Scene, adapter: str | None) -> str | None:
    """An explicit adapter wins; else the scene's own; else the general adapter; else None (base).

    The choice and its reasons: ``runtime.adapter_choice.choose_adapter``.
    """
    return choose_adapter(scene, adapter).path


def load_components(scene: Scene, adapter: str | None = None, base_model: str | None = None,
                    threads: int | None = None, progress=None, with_embedder: bool = True,
                    engine: str = "auto", remote_url: str | None = None,
                    chat_template: str | Path | None = None) -> Components:
    """Load model, ASR, VAD, TTS and embedder. ``progress(message)`` is told about each step.
    ``engine``: the decoding engine (``mind.engine.choose_engine``); ``threads`` its CPU threads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    say = progress or (lambda msg: None)
    from xrstory.mind.engine import EngineSpec, choose_engine, load_engine
    from xrstory.voice.asr import load_asr
    from xrstory.voice.tts import AutoTTS
    from xrstory.voice.vad import load_silero

    stack = ExitStack()
    times: dict[str, float] = {}
    compute_threads: set[int] = set()
    choice = choose_adapter(scene, adapter)
    adapter_path = choice.path
    say(f"using {choice.note}")

    def step(name, fn, computes: bool = False):
        say(f"loading {name}")
        t0 = time.perf_counter()
        with NewThreads() as made:
            value = fn()
        if computes:
            compute_threads.update(made.ids)
        times[name] = round(time.perf_counter() - t0, 2)
        say(f"loaded {name} in {times[name]:.1f} s")
        return value

    name, why = choose_engine(engine, model=base_model, remote_url=remote_url, adapter=adapter_path)
    log.info("decoding engine: %s (%s)", name, why)
    lm = None
    if name != "remote":  # with a server, the session's RemoteMind needs no local model
        lm = step(f"language model on {name}" + (f" + adapter {Path(adapter_path).name}" if adapter_path else ""),
                  lambda: load_engine(EngineSpec(engine=name, model=base_model, adapter=adapter_path,
                                                 threads=threads, chat_template=chat_template)), computes=True)
        stack.callback(lm.close)
    asr = step("speech recognition (Whisper)", load_asr, computes=True)
    if hasattr(asr, "close"):
        stack.callback(asr.close)
    vad = step("voice activity (Silero)", load_silero)
    tts = step("speech synthesis", AutoTTS)
    stack.callback(tts.close)
    embedder = None
    if with_embedder:
        from xrstory.mind.memory import load_embedder

        embedder = step("sentence embeddings", load_embedder)
    return Components(lm, asr, vad, tts, embedder, adapter_path, times, compute_threads, stack)
