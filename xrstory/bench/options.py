"""What a benchmark run measures and how long each part may take: one dataclass per run, built
by ``xrstory bench`` (``full()`` or ``quick()``), plus the targets the figures are judged against.

The parts run one after another in child processes (see ``run.py``); each part's budget is a
hard wall-clock limit, so a slow part is reported as timed out instead of stalling the run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENE = REPO_ROOT / "scenes" / "lighthouse"
DEFAULT_PLAY = REPO_ROOT / "benchmarks" / "voice_to_voice.play"
DEFAULT_RESULTS = REPO_ROOT / "benchmarks" / "RESULTS.md"

PARTS = ("llm", "voice", "voice_to_voice", "render")  # run order


@dataclass(frozen=True)
class Targets:
    """The issue's targets. Voice-to-voice depends on the device the model runs on."""

    voice_to_voice_p50_ms_cpu: float = 1000.0
    voice_to_voice_p50_ms_gpu: float = 300.0
    frame_ratio_p99_max: float = 1.1  # busy / idle frame time, p99
    decode_vs_llamacpp_min: float = 1.0  # our CPU decode tokens/s over llama.cpp's

    def as_dict(self, on_gpu: bool) -> dict:
        return {"voice_to_voice_p50_ms": self.voice_to_voice_p50_ms_gpu if on_gpu else self.voice_to_voice_p50_ms_cpu,
                "frame_ratio_p99": self.frame_ratio_p99_max,
                "decode_vs_llamacpp": None if on_gpu else self.decode_vs_llamacpp_min}


@dataclass(frozen=True)
class BenchOptions:
    mode: str = "full"  # "full" or "quick" (recorded in the results)
    repeats: int = 3  # repeats for the LLM and voice parts (medians and spread over these)
    llm_tokens: int = 48  # tokens generated per decode run
    llm_variants: tuple[str, ...] = ("float32", "bfloat16", "int8")  # extra CPU variants of our decode
    turns: int = 8  # spoken turns of the voice-to-voice playthrough (<= the script's)
    render_frames: int = 60
    render_eye: tuple[int, int] = (1280, 1280)  # pixels per eye for the renderer split
    eye_size: tuple[int, int] = (256, 256)  # pixels per eye in the playthrough (the runtime's default)
    scene_dir: Path = DEFAULT_SCENE
    play: Path = DEFAULT_PLAY
    model: str | None = None  # None: the runtime's default model
    engine: str = "auto"  # the engine whose constrained reply is llm.tokens_per_s (mind.engine.choose_engine)
    threads: int | None = None  # CPU threads of the llama.cpp engine (None: its DEFAULT_THREADS)
    # seconds each part may run (a hard limit, model loading included)
    budgets_s: dict[str, float] = field(default_factory=lambda: {
        "llm": 210.0, "voice": 120.0, "voice_to_voice": 200.0, "render": 60.0})
    total_budget_s: float = 570.0  # the whole run; a part gets at most what is left
    # budgets are sized for an otherwise idle machine; on a shared one they are multiplied by
    # this (None: by the load average per core at the start, at least 1, at most 10), so a
    # loaded machine yields slow figures, not missing ones; the load is recorded beside them
    budget_scale: float | None = None
    targets: Targets = Targets()

    @classmethod
    def full(cls, **overrides) -> BenchOptions:
        return cls(**overrides)

    @classmethod
    def quick(cls, **overrides) -> BenchOptions:
        """Every figure, fewer repeats: under two minutes on a 2-core CPU."""
        base = dict(mode="quick", repeats=1, llm_tokens=16, llm_variants=(), turns=2, render_frames=10,
                    render_eye=(640, 640),
                    budgets_s={"llm": 60.0, "voice": 45.0, "voice_to_voice": 75.0, "render": 20.0},
                    total_budget_s=118.0)
        base.update(overrides)
        return cls(**base)

    def scale(self, load_avg_1min: float | None, cores: int | None) -> float:
        """The factor the budgets are multiplied by on this machine now."""
        if self.budget_scale is not None:
            if self.budget_scale <= 0:
                raise ValueError(f"budget_scale must be > 0, got {self.budget_scale}")
            return self.budget_scale
        if not load_avg_1min or not cores:
            return 1.0
        return round(min(10.0, max(1.0, load_avg_1min / cores)), 2)

    def to_json(self) -> dict:
        d = asdict(self)
        d["scene_dir"], d["play"] = str(self.scene_dir), str(self.play)
        d["llm_variants"] = list(self.llm_variants)
        d["render_eye"], d["eye_size"] = list(self.render_eye), list(self.eye_size)
        d.pop("targets")
        return d

    @classmethod
    def from_json(cls, d: dict) -> BenchOptions:
        d = dict(d)
        d["scene_dir"], d["play"] = Path(d["scene_dir"]), Path(d["play"])
        d["llm_variants"] = tuple(d["llm_variants"])
        d["render_eye"], d["eye_size"] = tuple(d["render_eye"]), tuple(d["eye_size"])
        return cls(**d)
