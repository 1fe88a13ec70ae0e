"""SlateQ hyper-parameters per preset of `tfrl/Recommendation-v0`.

The tuned tables (`tfrl/agents/tuned/*.yaml`) are keyed by environment id, and
both presets share one id, so the recommendation application and benchmark
read their SlateQ settings from here. Values the user gives win.

- "default": SlateQ's own defaults (one-step Q-learning targets). The default
  config shows the session totals, so the budget left is observed and a
  one-step target sees what a document cost.
- "recsim": RecSim's observation hides the budget, so a one-step target
  bootstraps from an observation that does not show what a poor document
  cost, and its per-item values cannot learn that poor quality shortens the
  session (173 minutes at 200k steps). Monte-Carlo returns to the session's end carry
  that cost; the item values are Q(s, ⊥) plus an advantage of the candidate
  alone (its cluster), which the noisy returns can pin down; large batches
  and a small learning rate average the noise (benchmarks/results/recommendation_recsim.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SLATEQ_HPARAMS", "slateq_hparams"]

SLATEQ_HPARAMS: dict[str, dict[str, Any]] = {
    "default": {},
    "recsim": {
        "target": "monte_carlo",
        "relative_values": True,
        "gamma": 1.0,
        "reward_scale": 0.01,
        "learning_rate": 1e-4,
        "collect_env_steps": 16_384,
        "train_steps": 400,
        "batch_size": 2_048,
        "replay_capacity": 200_000,
        "exploration_steps": 16_384,
        "epsilon_end": 0.2,
    },
}


def slateq_hparams(preset: str, **overrides: Any) -> dict[str, Any]:
    """SlateQ's hyper-parameters for `preset`, with `overrides` on top."""
    return {**SLATEQ_HPARAMS.get(preset, {}), **overrides}
