"""Session configuration: one dataclass, built by the CLI or a playthrough; no global settings.

Every field is read: ``scene_dir`` by the playthrough runner and ``xrstory play`` (the scene they
load), ``adapter``/``base_model``/``chat_template``/``threads`` by ``launch.load_for``, ``display``/``eye_size``/
``stereo``/``realtime`` by ``launch.open_display``, ``seed``/``max_new_tokens``/``remote_url`` by
``session.make_mind``, ``echo_gain``/``keep_audio``/``worker_nice``/``tts_nice``/``compute_nice``/``think_ahead`` by the session, ``player_id``/
``data_dir``/``pacing`` by ``session.make_director``, ``max_turn_s`` by the playthrough runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xrstory.director.config import PacingConfig


@dataclass
class SessionConfig:
    scene_dir: Path
    adapter: str | None = None  # None: the scene's adapter when its folder exists, else the base model
    base_model: str | None = None  # None: the default GGUF; else an HF id/folder or a .gguf file
    chat_template: Path | None = None  # a Jinja file for a model whose GGUF carries no template
    remote_url: str | None = None  # an OpenAI-compatible server instead of the local model
    # decoding engine: auto (torch with CUDA, llama.cpp on a CPU), llamacpp, torch, remote
    # (mind.engine.choose_engine says why); engine_threads: its CPU threads (None: its default)
    engine: str = "auto"
    engine_threads: int | None = None
    display: Literal["headless", "openxr", "auto"] = "headless"  # auto: launch.resolve_display
    eye_size: tuple[int, int] = (256, 256)
    stereo: bool = True
    realtime: bool = True  # pace the frame loop to wall-clock time (honest latencies)
    seed: int = 0  # 0: greedy decoding; N > 0: sampled (temperature 0.7, top-p 0.9) with seed N, reproducibly
    echo_gain: float = 0.3  # headless: how much of the characters' audio leaks into the microphone
    max_turn_s: float = 120.0  # wall seconds to wait for a reply before a turn counts as failed
    max_new_tokens: int = 96
    player_id: str | None = None  # with a player id the director keeps a profile in data_dir
    data_dir: Path | None = None
    keep_audio: bool = True  # write the session's stereo mix (headless) to the report
    threads: int | None = None  # model threads (None: the engine's default)
    worker_nice: int = 10  # how far below the frame loop the model's and Whisper's threads are scheduled (0: same)
    # the TTS thread's: 0, beside the frame loop. The neural voice takes ~15 ms of CPU a sentence, but at
    # nice 10 on a loaded machine the first sentence reached the mixer 218-446 ms after the model gave it
    # (6 arcs, load 5-7.7) and 121-128 ms at nice 0 (2 arcs, load 4.7-5.2); benchmarks/RESULTS.md
    tts_nice: int = 0
    # the native compute threads of the model engine and Whisper (started while they loaded, so
    # worker_nice never reached them): how far below the frame loop they run (0: same). Spoken arc,
    # 2 runs each (benchmarks/RESULTS.md): frame p99 busy/idle 1.41/1.27 at 10, 1.48/1.64 at 0;
    # voice to voice median 889/856 ms at 10, 752/791 at 0
    compute_nice: int = 10
    # start the reply when the player pauses on a line that looks finished, before the turn closes;
    # held (nothing said or fired) until the line is final, dropped if the player speaks on
    think_ahead: bool = True
    # when the director nudges a stalling player (silence_nudge_s: seconds of silence, default 30)
    pacing: PacingConfig = field(default_factory=PacingConfig)

    def __post_init__(self):
        from xrstory.mind.engine import ENGINES

        if self.engine not in ENGINES:
            raise ValueError(f"SessionConfig.engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not self.pacing.silence_nudge_s > 0:
            raise ValueError(f"SessionConfig.pacing.silence_nudge_s must be > 0 seconds, "
                             f"got {self.pacing.silence_nudge_s}")
