"""``xrstory info``: versions, devices, and each default model — where it was found and
whether it loads. Each probe is independent, so one missing model does not hide the rest."""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class ModelProbe:
    role: str
    location: str
    loads: bool
    detail: str
    seconds: float


def _probe(role: str, locate: Callable[[], object], load: Callable[[object], str]) -> ModelProbe:
    t0 = time.perf_counter()
    try:
        where = locate()
    except Exception as exc:  # noqa: BLE001 - reported to the user, not hidden
        return ModelProbe(role, "not found", False, str(exc), time.perf_counter() - t0)
    try:
        detail = load(where)
        ok = True
    except Exception as exc:  # noqa: BLE001
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return ModelProbe(role, str(where), ok, detail, time.perf_counter() - t0)


def _load_llm(path) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    n = sum(p.numel() for p in model.parameters())
    return f"{n / 1e6:.0f}M parameters, vocab {len(tok)}"


def _load_whisper(path) -> str:
    from faster_whisper import WhisperModel

    WhisperModel(str(path), device="cpu", compute_type="int8")
    return "faster-whisper, cpu int8"


def _load_vad(_) -> str:
    from silero_vad import load_silero_vad

    load_silero_vad()
    return "silero VAD"


def _load_embedder(path) -> str:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(path), device="cpu")
    return f"{m.get_sentence_embedding_dimension()}-d embeddings"


def _load_espeak(path) -> str:
    import subprocess

    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def probe_models() -> list[ModelProbe]:
    from xrstory.mind.defaults import default_embedder_path, default_llm_path
    from xrstory.voice.defaults import default_whisper_path, espeak_path

    def silero_location():
        import silero_vad

        return silero_vad.__path__[0]

    return [
        _probe("language model (SmolLM2-135M-Instruct GGUF)", default_llm_path, _load_llm),
        _probe("speech recognition (Whisper tiny.en)", default_whisper_path, _load_whisper),
        _probe("voice activity (Silero VAD)", silero_location, _load_vad),
        _probe("sentence embeddings (all-MiniLM-L6-v2)", default_embedder_path, _load_embedder),
        _probe("speech synthesis (espeak-ng)", espeak_path, _load_espeak),
    ]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("xrstory", "torch", "transformers", "xllamacpp", "faster-whisper", "llguidance", "moderngl",
                 "pyopenxr", "peft", "silero-vad", "sentence-transformers", "pyttsx3"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def devices() -> dict[str, str]:
    out = {"cpu": f"{platform.processor() or platform.machine()}"}
    try:
        import torch

        out["cuda"] = (f"{torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} device(s))"
                       if torch.cuda.is_available() else "none")
    except Exception as exc:  # noqa: BLE001
        out["cuda"] = f"unknown ({exc})"
    return out


# What each command decodes with under ``--engine auto``: commands that decode replies follow
# ``choose_engine``; finetune trains torch weights, and eval scores teacher-forced on torch too
# (its replies follow --engine, default torch: the fine-tuned weights are torch weights).
ENGINE_COMMANDS = ("ask", "play", "run", "serve", "bench", "eval", "finetune")


def engines() -> list[dict[str, str]]:
    """[{command, engine, why}] for ``--engine auto`` on this machine."""
    from xrstory.mind.engine import choose_engine, gguf_conversion_available

    try:
        auto, why = choose_engine("auto")
        if auto == "llamacpp":
            why += ("; a LoRA adapter (e.g. the scene's) is merged into a cached Q8_0 GGUF" if gguf_conversion_available()
                    else "; with a LoRA adapter: torch (adapters cannot convert to GGUF here)")
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        auto, why = "unknown", f"{type(exc).__name__}: {exc}"
    out = []
    for cmd in ENGINE_COMMANDS:
        if cmd == "finetune":
            out.append({"command": cmd, "engine": "torch", "why": "training runs on torch weights (PEFT LoRA)"})
        elif cmd == "eval":
            out.append({"command": cmd, "engine": "torch", "why": "scores the torch weights; replies follow "
                                                                 "--engine (default torch)"})
        elif cmd == "bench":
            out.append({"command": cmd, "engine": auto, "why": why + "; also measures torch and bare xllamacpp "
                                                                  "side by side"})
        else:
            out.append({"command": cmd, "engine": auto, "why": why})
    return out
