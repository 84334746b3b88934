"""Fine-tuning configuration: one dataclass, saved beside the adapter as ``train_config.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    method: Literal["lora", "full"] = "lora"
    epochs: float = 3.0
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    learning_rate: float | None = None  # default: 3e-4 for LoRA, 3e-5 for full
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    batch_size: int = 4
    grad_accum: int = 2
    max_length: int = 1024  # tokens per example; longer examples are dropped and counted
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    # LoRA on the last N decoder layers only (None: all). Backpropagation then stops at the lowest
    # adapted layer, which makes a CPU step ~2x cheaper; the reply format and trigger choice are
    # learnt fine in the upper layers.
    lora_layers: int | None = None
    # loss weight of the reply's trigger tokens in training (see train/tokens.py): the choice of
    # triggers is what the story depends on, and with weight 1 it is a few percent of the loss
    trigger_weight: float = 4.0
    eval_every: int = 10  # optimizer steps between validation passes
    patience: int = 4  # validation passes without improvement before stopping early
    seed: int = 0
    limit_train: int | None = None  # use only the first N training examples (CI smoke runs)
    limit_eval: int | None = None
    limit_selection: int | None = None  # selection-scene turns scored per pass (None: all), spread over them
    device: str = "auto"
    checkpoint_every: int = 20
    # warm start: a PEFT adapter folder with the same LoRA shape (rank, modules, layers) whose
    # weights the new adapter starts from; retraining a scene's adapter on a grown dataset then
    # takes a third of the steps of training from zero
    init_adapter: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 3e-4 if self.method == "lora" else 3e-5

    def save(self, path: Path) -> None:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        path.write_text(json.dumps(d, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        d = json.loads(path.read_text(encoding="utf-8"))
        d["target_modules"] = tuple(d.get("target_modules", DEFAULT_TARGET_MODULES))
        return cls(**d)
