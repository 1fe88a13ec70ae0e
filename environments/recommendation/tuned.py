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

from typing import Any

from tfrl.agents.hparams import tuned

__all__ = ["slateq_hparams"]

ENV_ID = "tfrl/Recommendation-v0"


def slateq_hparams(preset: str, **overrides: Any) -> dict[str, Any]:
    """SlateQ's tuned hyper-parameters for `preset`, with `overrides` on top."""
    row = tuned("slateq", ENV_ID, preset)
    return {**(row.hparams if row else {}), **overrides}
