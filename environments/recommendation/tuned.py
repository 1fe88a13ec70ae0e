"""SlateQ hyper-parameters per preset of `tfrl/Recommendation-v0`.

They live in the tuned table `tfrl/agents/tuned/slateq.yaml` (rows
`tfrl/Recommendation-v0` and `tfrl/Recommendation-v0 preset=<name>`), which
`tfrl.train` and `tfrl train` read too; this reads them for the
recommendation application and benchmark. Values the user gives win.

- "default": SlateQ's own defaults (one-step Q-learning targets). The default
  config shows the session totals, so the budget left is observed and a
  one-step target sees what a document cost.
- "recsim": RecSim's observation hides the budget, so a one-step target
  bootstraps from an observation that does not show what a poor document
  cost, and its per-item values cannot learn that poor quality shortens the
  session (173 minutes at 200k steps). Monte-Carlo returns to the session's
  end carry that cost (see the row's comment for how the values were chosen).
"""

from __future__ import annotations

import time
from typing import Any

import tfrl
from tfrl.agents.hparams import tuned

__all__ = ["slateq_hparams", "train_slateq"]

ENV_ID = "tfrl/Recommendation-v0"


def slateq_hparams(preset: str, **overrides: Any) -> dict[str, Any]:
    """SlateQ's tuned hyper-parameters for `preset`, with `overrides` on top."""
    row = tuned("slateq", ENV_ID, preset)
    return {**(row.hparams if row else {}), **overrides}


def train_slateq(
    preset: str = "default",
    total_env_steps: int = 100_000,
    *,
    seed: int = 0,
    num_envs: int = 64,
    eval_episodes: int = 50,
    verbose: int = 0,
    **fields: Any,
) -> tuple[Any, Any, float]:
    """Trains `slateq` with the preset's tuned settings; returns (agent, history, seconds).

    `tfrl.set_seed(seed)` comes first, so the agent's initial weights are drawn
    from `seed` too and two runs with one seed give the same numbers (with the
    same TensorFlow thread counts). The greedy policy is evaluated on
    `eval_episodes` sessions about every tenth of the budget (at each collect
    iteration that crosses a tenth: the learning curve);
    `seconds` is the training time without those evaluations. `fields` are
    config overrides for `tfrl.envs.make` (e.g. `session_features=True`).
    """
    tfrl.set_seed(seed)
    env = tfrl.envs.make(ENV_ID, num_envs=num_envs, seed=seed, preset=preset, **fields)
    agent = tfrl.agents.make("slateq", env, **slateq_hparams(preset))
    trainer = tfrl.Trainer(agent, env, seed=seed)
    start = time.perf_counter()
    history = trainer.fit(
        total_env_steps,
        eval_every=max(total_env_steps // 10, 1),
        eval_episodes=eval_episodes,
        verbose=verbose,
    )
    return agent, history, time.perf_counter() - start - history.eval_seconds
