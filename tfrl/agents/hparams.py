"""Tuned hyper-parameters per (agent, environment), like the RL Zoo's tables.

The tables are YAML files shipped with the package, one per agent
(`tfrl/agents/tuned/<agent>.yaml`), read at run time. Each row is keyed by
a gymnasium id and holds the config fields that differ from the agent's
defaults, where they come from (`source`) and the env-step budget they were
tuned for (`budget`):

    CartPole-v1:
      source: tfrl sweep (benchmarks/results/cartpole.md)
      budget: 50000
      hparams: {learning_rate: 0.001, hidden_units: [64, 64]}

An env with presets (`tfrl/Recommendation-v0`'s `preset=`) can have a row
per preset, keyed `"<id> preset=<name>"`; a preset without its own row uses
the id's row.

`tfrl.train` and `tfrl train` start from the row for their (agent, env),
and hyper-parameters the user gives override it; a pair with no row uses the
agent's own defaults. `tfrl hparams ENV --agent X` shows what a run would use.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Any

from tfrl.errors import ConfigError

__all__ = ["Resolved", "TunedRow", "resolve", "tuned", "tuned_pairs"]

_PACKAGE = "tfrl.agents"
_FOLDER = "tuned"


@dataclasses.dataclass(frozen=True)
class TunedRow:
    """One row of a table: the tuned fields for an (agent, env) pair."""

    agent: str
    env_id: str
    hparams: dict[str, Any]
    source: str
    budget: int | None
    file: str


@dataclasses.dataclass(frozen=True)
class Resolved:
    """The hyper-parameters a run uses and where each one comes from.

    Attributes:
        hparams: the fields to pass to the agent (tuned row, then the user's on top).
        origins: field → "user", "tuned" or "default", for every config field.
        values: field → value, for every config field (defaults filled in).
        row: the tuned row used, or None when the pair has none.
    """

    agent: str
    env_id: str
    hparams: dict[str, Any]
    origins: dict[str, str]
    values: dict[str, Any]
    row: TunedRow | None

    def describe(self) -> str:
        """One line naming the tuned row used, or saying there is none."""
        if self.row is None:
            return (
                f"No tuned hyper-parameters for {self.agent} on {self.env_id}: using the "
                f"agent's defaults (tuned pairs for {self.agent}: "
                f"{', '.join(e for a, e in tuned_pairs() if a == self.agent) or 'none'})."
            )
        return (
            f"Hyper-parameters: the tuned row for {self.agent} on {self.env_id} "
            f"({self.row.file}; `tfrl hparams {self.env_id} --agent {self.agent}` shows it)."
        )


@functools.cache
def _table(agent: str) -> dict[str, TunedRow]:
    path = resources.files(_PACKAGE).joinpath(_FOLDER, f"{agent}.yaml")
    if not path.is_file():
        return {}
    from tfrl.training.run import load_yaml

    data = load_yaml(path.read_text()) or {}
    file = f"tfrl/agents/{_FOLDER}/{agent}.yaml"
    rows = {}
    for env_id, row in data.items():
        if not isinstance(row, dict) or not isinstance(row.get("hparams"), dict):
            raise ConfigError(f"{file}: row {env_id!r} needs a mapping 'hparams'.")
        rows[env_id] = TunedRow(
            agent=agent,
            env_id=env_id,
            hparams=dict(row["hparams"]),
            source=str(row.get("source", "")),
            budget=row.get("budget"),
            file=file,
        )
    return rows


def tuned(agent: str, env_id: str, preset: str | None = None) -> TunedRow | None:
    """The tuned row for (agent, env_id) (and `preset`, if it has one), or None."""
    table = _table(agent)
    if preset is not None and f"{env_id} preset={preset}" in table:
        return table[f"{env_id} preset={preset}"]
    return table.get(env_id)


def tuned_pairs() -> list[tuple[str, str]]:
    """Every (agent, env id) pair that has a tuned row."""
    from tfrl.agents.registry import names

    return [(agent, env_id) for agent in names() for env_id in _table(agent)]


def resolve(
    agent: str, env_id: str, user: dict[str, Any] | None = None, preset: str | None = None
) -> Resolved:
    """The hyper-parameters for `agent` on `env_id`: tuned row, then `user` on top.

    Args:
        agent: an agent name (`tfrl.agents.names()`); unknown names raise
            `UnknownNameError` with the nearest real one.
        env_id: a gymnasium id.
        user: hyper-parameters given by the user; they win over the table.
        preset: the env's `preset=` keyword, if any (selects its own row).

    Returns:
        A `Resolved` whose `hparams` go to `tfrl.agents.make`.
    """
    from tfrl.agents.config import config_from_kwargs
    from tfrl.agents.registry import agent_class

    cls = agent_class(agent)
    user = dict(user or {})
    row = tuned(agent, env_id, preset)
    hparams = {**(row.hparams if row else {}), **user}
    # Validates names (with did-you-mean) and values before anything is built.
    config = config_from_kwargs(cls.config_class, agent, hparams)
    values = config.to_dict()
    origins = {
        name: "user" if name in user else "tuned" if row and name in row.hparams else "default"
        for name in values
    }
    return Resolved(agent, row.env_id if row else env_id, hparams, origins, values, row)
