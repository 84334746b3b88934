"""LinUCB (Li et al., 2010) over arm features x context features, with explained decisions.

An arm is a piece of side content or a branch the story allows now (see candidates.py); the
context is the player's profile. Each arm's vector is the outer product
``arm_features (5,) x context (6,) -> (30,)``, so the model learns which kind of content
pays off for which kind of player. The expected reward is ``theta . x`` with
``theta = A^-1 b``; the choice maximises ``theta . x + alpha * sqrt(x^T A^-1 x)`` (mean plus
an exploration bonus that shrinks as the arm's region is tried). Ties break with a seeded
RNG, so a run repeats exactly. ``to_state``/``from_state`` make it a JSON row of the profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ARM_FEATURES = ("bias", "lore", "action", "comfort", "branch")
CONTEXT_FEATURES = ("bias", "lore", "action", "comfort", "short", "mood")
DIM = len(ARM_FEATURES) * len(CONTEXT_FEATURES)


def joint_features(arm: Sequence[float], context: Sequence[float]) -> np.ndarray:
    """(5,) x (6,) -> (30,) float64, row-major: index = arm_i * 6 + ctx_j."""
    a = np.asarray(arm, dtype=np.float64)
    c = np.asarray(context, dtype=np.float64)
    if a.shape != (len(ARM_FEATURES),) or c.shape != (len(CONTEXT_FEATURES),):
        raise ValueError(f"arm features {a.shape} / context {c.shape}: expected "
                         f"({len(ARM_FEATURES)},) and ({len(CONTEXT_FEATURES)},)")
    return np.outer(a, c).ravel()


@dataclass
class Choice:
    index: int  # which of the offered arms
    x: np.ndarray  # (DIM,) its joint features, kept for update()
    explanation: dict


class LinUCB:
    def __init__(self, alpha: float = 0.6, ridge: float = 1.0, seed: int = 0):
        if alpha < 0 or ridge <= 0:
            raise ValueError(f"LinUCB needs alpha >= 0 and ridge > 0 (got alpha={alpha}, ridge={ridge})")
        self.alpha = alpha
        self.A = np.eye(DIM) * ridge  # (DIM, DIM)
        self.b = np.zeros(DIM)  # (DIM,)
        self.n_updates = 0
        self.rng = np.random.default_rng(seed)

    def theta(self) -> np.ndarray:
        return np.linalg.solve(self.A, self.b)

    def choose(self, arm_ids: Sequence[str], arm_features: np.ndarray, context: Sequence[float]) -> Choice:
        """arm_features: (n_arms, 5); context: (6,). Returns the chosen arm and why."""
        arm_features = np.asarray(arm_features, dtype=np.float64)
        if len(arm_ids) == 0 or arm_features.shape[0] != len(arm_ids):
            raise ValueError(f"need one feature row per arm: {len(arm_ids)} ids, {arm_features.shape[0]} rows")
        X = np.stack([joint_features(a, context) for a in arm_features])  # (n, DIM)
        A_inv = np.linalg.inv(self.A)
        theta = A_inv @ self.b
        mean = X @ theta  # (n,)
        bonus = self.alpha * np.sqrt(np.einsum("nd,de,ne->n", X, A_inv, X))  # (n,)
        ucb = mean + bonus
        best = np.flatnonzero(np.isclose(ucb, ucb.max(), rtol=0, atol=1e-9))
        index = int(self.rng.choice(best)) if len(best) > 1 else int(best[0])
        return Choice(index, X[index], self._explain(arm_ids, X, theta, mean, bonus, index, context))

    def update(self, x: np.ndarray, reward: float) -> None:
        if not np.isfinite(reward):
            raise ValueError(f"reward must be a finite number, got {reward!r}")
        x = np.asarray(x, dtype=np.float64)
        self.A += np.outer(x, x)
        self.b += reward * x
        self.n_updates += 1

    def _explain(self, arm_ids, X, theta, mean, bonus, index, context) -> dict:
        contrib = X[index] * theta  # (DIM,) what each arm-feature x context-feature pair adds
        order = np.argsort(-np.abs(contrib))[:3]
        names = [f"{ARM_FEATURES[i // len(CONTEXT_FEATURES)]}x{CONTEXT_FEATURES[i % len(CONTEXT_FEATURES)]}"
                 for i in order]
        ranked = np.argsort(-(mean + bonus))
        return {
            "chosen": arm_ids[index],
            "why": "exploring (bonus outweighs the estimate)" if bonus[index] > abs(mean[index])
                   else "exploiting (best expected engagement)",
            "context": dict(zip(CONTEXT_FEATURES, map(float, context), strict=True)),
            "drivers": {n: round(float(contrib[i]), 4) for n, i in zip(names, order, strict=True)},
            "arms": [{"arm": arm_ids[i], "mean": round(float(mean[i]), 4), "bonus": round(float(bonus[i]), 4),
                      "ucb": round(float(mean[i] + bonus[i]), 4)} for i in ranked],
            "updates_so_far": self.n_updates,
        }

    # -- persistence (a JSON row per player) -----------------------------------------------
    def to_state(self) -> dict:
        return {"algo": "linucb", "dim": DIM, "alpha": self.alpha, "A": self.A.tolist(), "b": self.b.tolist(),
                "n_updates": self.n_updates, "rng": self.rng.bit_generator.state}

    @classmethod
    def from_state(cls, state: dict) -> LinUCB:
        if state.get("algo") != "linucb" or state.get("dim") != DIM:
            raise ValueError(f"bandit state is {state.get('algo')!r} with dim {state.get('dim')!r}; "
                             f"expected 'linucb' with dim {DIM} (features changed: reset the model)")
        model = cls(alpha=state["alpha"])
        model.A = np.asarray(state["A"], dtype=np.float64)
        model.b = np.asarray(state["b"], dtype=np.float64)
        model.n_updates = int(state["n_updates"])
        model.rng.bit_generator.state = state["rng"]
        return model
