"""Baseline recommenders and session evaluation.

A policy here is a callable `policy(observation, info) -> slates`: a batch
of `RecommendationVectorEnv` observations (and its `info`, which carries the
candidates' hidden quality) in, a `(batch, slate_size)` int array out.
`from_tf_policy` turns a TF-Agents policy (a trained agent's) into one, so
every recommender is measured by the same `run_sessions`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from environments.recommendation.config import RecommendationConfig
from environments.recommendation.env import RecommendationVectorEnv, click_weights, make_config

__all__ = [
    "MyopicPolicy",
    "QualityOraclePolicy",
    "RandomPolicy",
    "SessionStats",
    "from_tf_policy",
    "run_sessions",
]

SlatePolicy = Callable[[dict[str, np.ndarray], dict[str, Any]], np.ndarray]


class RandomPolicy:
    """Shows `slate_size` distinct candidates uniformly at random."""

    def __init__(self, config: RecommendationConfig, seed: int = 0):
        self.slate_size = config.slate_size
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        keys = self._rng.random(observation["candidates"].shape[:2])
        return np.argsort(keys, axis=1)[:, : self.slate_size]


def _best_slates(weights: np.ndarray, no_click: np.ndarray, values: np.ndarray, k: int):
    """The k-subsets maximizing Σ_i P(i | S) · values_i under the weights' choice model.

    Exact (every subset) when there are at most 5,000 subsets, else greedy.
    """
    b, n = weights.shape
    if math.comb(n, k) <= 5_000:
        combos = np.array(list(itertools.combinations(range(n), k)))
        w = weights[:, combos]
        score = (w * values[:, combos]).sum(-1) / (no_click[:, None] + w.sum(-1))
        return combos[np.argmax(score, axis=1)]
    chosen = np.zeros((b, 0), np.int64)
    total_w, total_v = no_click.copy(), np.zeros(b)
    taken = np.zeros((b, n), bool)
    for _ in range(k):
        score = (total_v[:, None] + weights * values) / (total_w[:, None] + weights)
        pick = np.argmax(np.where(taken, -np.inf, score), axis=1)
        rows = np.arange(b)
        taken[rows, pick] = True
        total_w += weights[rows, pick]
        total_v += weights[rows, pick] * values[rows, pick]
        chosen = np.concatenate([chosen, pick[:, None]], axis=1)
    return chosen


class MyopicPolicy:
    """The click-maximizer: the slate with the highest expected minutes watched next.

    Uses the environment's true choice model and each candidate's length, so
    it is the best a recommender that looks one step ahead can do.
    """

    def __init__(self, config: RecommendationConfig):
        self.config = config

    def __call__(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        c = self.config
        candidates = observation["candidates"].astype(np.float64)
        weights, no_click = click_weights(observation["user"].astype(np.float64), candidates, c)
        if candidates.shape[-1] > c.num_topics + 1:
            minutes = candidates[..., c.num_topics + 1]
        else:
            minutes = np.full(weights.shape, 4.0)  # RecSim's fixed video length
        return _best_slates(weights, no_click, minutes, c.slate_size)


class QualityOraclePolicy:
    """Quality first: shows the k candidates of highest hidden quality (an oracle)."""

    def __init__(self, config: RecommendationConfig):
        self.slate_size = config.slate_size

    def __call__(self, observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        return np.argsort(-info["quality"], axis=1, kind="stable")[:, : self.slate_size]


def from_tf_policy(policy: Any) -> SlatePolicy:
    """A TF-Agents policy (or agent: its greedy policy) as a slate policy."""
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    policy = getattr(policy, "policy", policy)

    @tf.function
    def act(observation):
        batch = tf.shape(observation["user"])[0]
        time_step = ts.TimeStep(
            step_type=tf.fill([batch], ts.StepType.MID),
            reward=tf.zeros([batch]),
            discount=tf.ones([batch]),
            observation=observation,
        )
        return policy.action(time_step).action

    def call(observation: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        spec = policy.time_step_spec.observation
        feed = {key: np.asarray(observation[key], spec[key].dtype.as_numpy_dtype) for key in spec}
        slates = np.asarray(act(feed))
        return slates.reshape(len(observation["user"]), -1)

    return call


@dataclasses.dataclass
class SessionStats:
    """Whole sessions of one policy.

    Attributes:
        engagement: minutes watched in each session.
        clicks: clicks in each session.
        slates: slates shown in each session.
    """

    engagement: np.ndarray
    clicks: np.ndarray
    slates: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.engagement))

    @property
    def ci95(self) -> float:
        """Half-width of the normal 95% confidence interval of the mean."""
        n = len(self.engagement)
        return float(1.96 * np.std(self.engagement, ddof=1) / math.sqrt(n)) if n > 1 else 0.0

    @property
    def ctr(self) -> float:
        """Clicks per slate shown, over all sessions."""
        return float(self.clicks.sum() / max(self.slates.sum(), 1))

    def __str__(self) -> str:
        return (
            f"{self.mean:.1f} ± {self.ci95:.1f} min/session, CTR {self.ctr:.3f} "
            f"over {len(self.engagement)} sessions"
        )


def run_sessions(
    policy: SlatePolicy | Callable[[RecommendationConfig], SlatePolicy],
    sessions: int = 500,
    seed: int = 10_000,
    *,
    preset: str = "default",
    max_slates: int = 10_000,
    **fields: Any,
) -> SessionStats:
    """Plays `sessions` whole sessions (session i seeded `seed + i`) with `policy`.

    Args:
        policy: a slate policy, or a baseline class taking the config.
        sessions: how many sessions (all run as one batch). Default 500.
        seed: the first session's seed; keep it apart from training seeds.
            Default 10,000.
        preset, **fields: the environment, as for `RecommendationEnv`.
        max_slates: a bound on slates per session.
    """
    config = make_config(preset, **fields)
    env = RecommendationVectorEnv(sessions, config=config)
    if isinstance(policy, type):
        policy = policy(config)
    observation, info = env.reset(seed=seed)
    engagement = np.zeros(sessions)
    clicks = np.zeros(sessions, np.int64)
    slates = np.zeros(sessions, np.int64)
    done = np.zeros(sessions, bool)
    for _ in range(max_slates):
        action = policy(observation, info)
        observation, reward, terminated, truncated, info = env.step(action)
        live = ~done
        engagement += np.where(live, reward, 0.0)
        clicks += live & info["clicked"]
        slates += live
        done |= terminated | truncated
        if done.all():
            break
    return SessionStats(engagement, clicks, slates)
