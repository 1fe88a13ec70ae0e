"""SlateQ: slate recommendation with per-item long-term values (Ie et al., 2019)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.networks import network
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from tfrl.agents import episodes
from tfrl.agents.base import TfrlAgent
from tfrl.agents.config import AgentConfig
from tfrl.errors import ConfigError, IncompatibleAgentError

__all__ = ["SlateQ", "SlateQConfig", "SlateQNetwork", "SlateQPolicy"]

_SELECTIONS = ("auto", "exact", "greedy", "top_k")
_TARGETS = ("q_learning", "sarsa", "monte_carlo")
_EXACT_LIMIT = 5_000  # subsets scored at once by "exact" / "auto"


@dataclasses.dataclass
class SlateQConfig(AgentConfig):
    """SlateQ hyper-parameters.

    Defaults were set on `tfrl/Recommendation-v0`'s RecSim preset (10
    candidates, slates of 2) with the three session totals in the user
    observation (`session_features=True`, which makes the budget computable;
    the preset now leaves them out, as RecSim does); the paper trains on YouTube logs with its own
    networks and a known choice model, while here the choice model is learned.

    Attributes:
        learning_rate: Adam step size. Default 1e-3.
        gamma: discount. Default 0.998: sessions run 100+ slates and what a
            good document earns (a longer session) comes at their end.
        hidden_units: hidden layers of the per-item value and click networks.
            Default (128, 128).
        slate_selection: "exact" (score every k-subset), "greedy" (add the item
            that raises the slate's value most, k times), "top_k" (the k items of
            highest click weight × (Q(s, i) − Q(s, ⊥)), their value above the
            no-click value) or "auto" (exact up to 5,000 subsets,
            else greedy). Default "auto".
        target: "q_learning" (bootstrap from the best next slate), "sarsa"
            (from the next slate the collect policy showed) or "monte_carlo"
            (the discounted return to the session's end under the collect
            policy: the agent stores each collected segment once, however
            often `train` is handed the same one, keeps the newest
            `replay_capacity` transitions, carries sessions still running at
            a segment's end into the next segments until they finish, and
            draws `train_steps` minibatches of `batch_size` finished
            transitions per iteration; the replay is in every checkpoint at
            full size, see `_ReturnReplay`).
            One-step targets bootstrap from the next observation, so they
            cannot see what it hides: when the session budget is not observed
            (`preset="recsim"`), only "monte_carlo" learns that poor documents
            shorten the session. Monte-Carlo returns stop where the env
            stops a session, so a time-limit truncation counts as the
            session's end (the default config truncates at 500 slates).
            Default "q_learning".
        reward_scale: rewards are multiplied by this for learning (values and
            served scores are in scaled units). Default 0.1.
        choice_loss_weight: weight of the click model's cross-entropy. Default 1.0.
        epsilon_start: probability of a random slate at env step 0. Default 1.0.
        epsilon_end: ... after `exploration_steps`. Default 0.05.
        exploration_steps: env steps of linear epsilon decay. Default 20,000.
        target_update_period: train steps between target-network syncs. Default 200.
        collect_env_steps: env steps per iteration. Default 512.
        train_steps: gradient steps per iteration. Default 64.
        batch_size: transitions per gradient step. Default 128.
        replay_capacity: replay buffer size. Default 100,000.
        learning_starts: env steps before training starts. Default 2,000.
        relative_values: the default network's item values are Q(s, ⊥) plus
            a state-independent advantage of the candidate alone, not an MLP
            of user and candidate; this assumes a click's long-term effect
            does not depend on the user (see `SlateQNetwork`). Default False.
    """

    learning_rate: float = 1e-3
    gamma: float = 0.998
    hidden_units: tuple[int, ...] = (128, 128)
    slate_selection: str = "auto"
    target: str = "q_learning"
    reward_scale: float = 0.1
    choice_loss_weight: float = 1.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_steps: int = 20_000
    target_update_period: int = 200
    collect_env_steps: int = 512
    train_steps: int = 64
    batch_size: int = 128
    learning_starts: int = 2_000
    relative_values: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.slate_selection not in _SELECTIONS:
            raise ConfigError(
                f"slate_selection={self.slate_selection!r} must be one of {_SELECTIONS}."
            )
        if self.target not in _TARGETS:
            raise ConfigError(f"target={self.target!r} must be one of {_TARGETS}.")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)} must be in [0, 1].")
        if not self.reward_scale > 0 or self.choice_loss_weight < 0:
            raise ConfigError(
                f"reward_scale={self.reward_scale} must be > 0 and choice_loss_weight="
                f"{self.choice_loss_weight} ≥ 0."
            )
        if self.target_update_period < 1 or self.exploration_steps < 0:
            raise ConfigError(
                f"target_update_period={self.target_update_period} must be ≥ 1 and "
                f"exploration_steps={self.exploration_steps} ≥ 0."
            )


class SlateQNetwork(network.Network):
    """Per-candidate long-term values and click logits from user and candidate features.

    For each candidate i: Q(s, i) (the return if the user clicks i) and a click
    logit s_i (an MLP on [user, candidate] plus a bilinear user·W·candidate
    term); for the state: Q(s, ⊥) (the return after no click) and the no-click
    logit. With `relative=True`, Q(s, i) = Q(s, ⊥) + A(i): the item head is a
    state-independent advantage of the candidate's features alone, which
    assumes that what a click on i adds to the session's return does not
    depend on the user. It is a dueling split; the slate
    choice depends only on the advantages, so errors in the state's value do
    not disturb it, and noisy returns pin a per-document advantage down far
    better than a function of user and document). Returns
    `(q_items [B, N], q_none [B], logits [B, N], no_click [B])`.
    """

    def __init__(
        self,
        observation_spec: dict,
        hidden_units: tuple[int, ...],
        name: str = "SlateQ",
        *,
        relative: bool = False,
    ):
        super().__init__(observation_spec, state_spec=(), name=name)
        self._hidden_units = tuple(hidden_units)
        self._relative = relative
        width = observation_spec["candidates"].shape[-1]

        def mlp(out: int, prefix: str) -> list[tf.keras.layers.Layer]:
            return [
                tf.keras.layers.Dense(u, activation="relu", name=f"{prefix}_{i}")
                for i, u in enumerate(hidden_units)
            ] + [tf.keras.layers.Dense(out, name=f"{prefix}_out")]

        self._item_value = mlp(1, "item_value")
        self._none_value = mlp(1, "none_value")
        self._item_click = mlp(1, "item_click")
        self._none_click = tf.keras.layers.Dense(1, name="none_click")
        self._bilinear = tf.keras.layers.Dense(width, use_bias=False, name="bilinear")

    def copy(self, **kwargs: Any) -> SlateQNetwork:
        return type(self)(
            kwargs.get("input_tensor_spec", self.input_tensor_spec),
            kwargs.get("hidden_units", self._hidden_units),
            name=kwargs.get("name", self.name),
            relative=kwargs.get("relative", self._relative),
        )

    @staticmethod
    def _run(layers: list[tf.keras.layers.Layer], x: tf.Tensor) -> tf.Tensor:
        for layer in layers:
            x = layer(x)
        return tf.squeeze(x, -1)

    def call(self, observation, step_type=None, network_state=(), training=False):
        user = tf.cast(observation["user"], tf.float32)
        candidates = tf.cast(observation["candidates"], tf.float32)
        n = tf.shape(candidates)[1]
        pairs = tf.concat([tf.tile(user[:, None, :], [1, n, 1]), candidates], axis=-1)
        if self._relative:
            # Q(s, ⊥) + an advantage of the candidate alone (see the class docstring).
            q_items = self._run(self._item_value, candidates)
        else:
            q_items = self._run(self._item_value, pairs)
        bilinear = tf.einsum("bd,bnd->bn", self._bilinear(user), candidates)
        logits = self._run(self._item_click, pairs) + bilinear
        q_none = self._run(self._none_value, user)
        if self._relative:
            q_items = q_items + q_none[:, None]
        no_click = tf.squeeze(self._none_click(user), -1)
        return (q_items, q_none, logits, no_click), network_state


def _weights(logits: tf.Tensor, no_click: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """exp of the logits, stabilized by their joint max (ratios are unchanged)."""
    top = tf.maximum(tf.reduce_max(logits, axis=1), no_click)
    return tf.exp(logits - top[:, None]), tf.exp(no_click - top)


def slate_values(outputs: tuple, slates: tf.Tensor) -> tf.Tensor:
    """Q(s, A) = Σ_{i∈A} P(i | s, A) Q(s, i) + P(⊥ | s, A) Q(s, ⊥) for slates [B, ..., k]."""
    q_items, q_none, logits, no_click = outputs
    v, v0 = _weights(logits, no_click)
    batch_dims = 1
    w = tf.gather(v, slates, batch_dims=batch_dims)
    q = tf.gather(q_items, slates, batch_dims=batch_dims)
    extra = len(slates.shape) - 2
    v0 = tf.reshape(v0, [-1] + [1] * extra)
    q0 = tf.reshape(q_none, [-1] + [1] * extra)
    return (tf.reduce_sum(w * q, -1) + v0 * q0) / (tf.reduce_sum(w, -1) + v0)


def select_slates(outputs: tuple, slate_size: int, method: str) -> tf.Tensor:
    """The [B, k] slates that maximize the SlateQ value by `method`."""
    q_items, q_none, logits, no_click = outputs
    n = q_items.shape[1]
    if method == "auto":
        method = "exact" if math.comb(n, slate_size) <= _EXACT_LIMIT else "greedy"
    v, v0 = _weights(logits, no_click)
    if method == "top_k":
        return tf.math.top_k(v * (q_items - q_none[:, None]), slate_size).indices
    if method == "exact":
        combos = tf.constant(list(itertools.combinations(range(n), slate_size)), tf.int32)
        batch = tf.shape(q_items)[0]
        tiled = tf.tile(combos[None], [batch, 1, 1])
        best = tf.argmax(slate_values(outputs, tiled), axis=1, output_type=tf.int32)
        return tf.gather(combos, best)
    # greedy: k rounds, each adding the item that maximizes the slate value so far.
    total_v, total_q = v0, v0 * q_none
    taken = tf.zeros_like(v, tf.bool)
    picks = []
    for _ in range(slate_size):
        value = (total_q[:, None] + v * q_items) / (total_v[:, None] + v)
        pick = tf.argmax(tf.where(taken, -np.inf, value), axis=1, output_type=tf.int32)
        chosen = tf.one_hot(pick, n, on_value=True, off_value=False)
        taken = tf.logical_or(taken, chosen)
        total_v += tf.gather(v, pick, batch_dims=1)
        total_q += tf.gather(v * q_items, pick, batch_dims=1)
        picks.append(pick)
    return tf.stack(picks, axis=1)


class SlateQPolicy(tf_policy.TFPolicy):
    """Shows the slate of highest SlateQ value; with `epsilon`, a random slate instead.

    `serving_signature()` gives the recommender's `serving_default`: user and
    candidate features in, the slate and each candidate's long-term value out.
    """

    def __init__(
        self,
        time_step_spec: Any,
        action_spec: Any,
        slate_network: SlateQNetwork,
        slate_size: int,
        selection: str,
        epsilon: Any = None,
    ):
        super().__init__(time_step_spec, action_spec, clip=False)
        self._network = slate_network
        self._slate_size = slate_size
        self._selection = selection
        self._epsilon = epsilon

    def _variables(self):
        return self._network.variables

    def _distribution(self, time_step, policy_state):
        raise NotImplementedError("SlateQPolicy acts by optimization; call action().")

    def slate(self, observation: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """The [B, k] greedy slates and the [B, N] per-candidate values."""
        outputs, _ = self._network(observation)
        return select_slates(outputs, self._slate_size, self._selection), outputs[0]

    def _action(self, time_step, policy_state, seed=None):
        slates, _ = self.slate(time_step.observation)
        if self._epsilon is not None:
            shape = tf.shape(slates)
            n = self.time_step_spec.observation["candidates"].shape[0]
            keys = tf.random.uniform([shape[0], n])
            random = tf.math.top_k(keys, self._slate_size).indices
            explore = tf.random.uniform([shape[0]]) < self._epsilon()
            slates = tf.where(explore[:, None], random, slates)
        action = tf.cast(slates, self.action_spec.dtype)
        if self.action_spec.shape.rank == 0:
            action = action[:, 0]
        return policy_step.PolicyStep(action, policy_state, ())

    def serving_signature(self) -> Any:
        """`serving_default` for `tfrl.export`: (user, candidates) → action, slate, scores.

        `action` has the policy's shape ([B] when slate_size=1, else [B, k]),
        `slate` is [B, k] and `scores` [B, N] (each candidate's long-term value).
        """
        spec = self.time_step_spec.observation
        user_spec = tf.TensorSpec([None, *spec["user"].shape], tf.float32, name="user")
        cand_spec = tf.TensorSpec([None, *spec["candidates"].shape], tf.float32, name="candidates")
        none = self._slate_size

        @tf.function(input_signature=[user_spec, cand_spec], autograph=False)
        def serve(user: tf.Tensor, candidates: tf.Tensor) -> dict[str, tf.Tensor]:
            response = tf.fill([tf.shape(user)[0]], tf.constant(none, spec["response"].dtype))
            observation = {"user": user, "candidates": candidates, "response": response}
            slates, scores = self.slate(observation)
            slates = tf.cast(slates, tf.int64)
            # `action` has the policy's shape: [B] for a Discrete action (slate_size=1),
            # [B, k] otherwise; `slate` is always [B, k].
            action = slates[:, 0] if self.action_spec.shape.rank == 0 else slates
            return {
                "action": tf.identity(action, name="action"),
                "slate": tf.identity(slates, name="slate"),
                "scores": tf.identity(scores, name="scores"),
            }

        return serve.get_concrete_function()


def _check_observation(observation_spec: Any, action_spec: Any) -> int:
    """Checks the specs SlateQ needs; returns the slate size."""
    keys = ("user", "candidates", "response")
    if not (isinstance(observation_spec, dict) and all(k in observation_spec for k in keys)):
        raise IncompatibleAgentError(
            "'slateq' needs the recommendation observation: a dict with 'user', 'candidates' "
            f"and 'response' (tfrl/Recommendation-v0 with observation='dict'); got "
            f"{observation_spec}. For a flat observation use 'dqn', 'ppo' or 'reinforce' "
            "with slate_size=1."
        )
    k = 1 if action_spec.shape.rank == 0 else int(action_spec.shape[0])
    n = int(observation_spec["candidates"].shape[0])
    if action_spec.shape.rank > 1 or k > n:
        raise IncompatibleAgentError(
            f"'slateq' needs a slate action of k ≤ {n} candidate ids, got {action_spec}."
        )
    return k


class _ReturnReplay(tf.Module):
    """Transitions with their Monte-Carlo returns, for target="monte_carlo".

    Per transition it keeps what the loss reads: the user features, the k
    shown documents' features, the click (slate position, k for none) and the
    discounted return to the session's end. The newest `capacity` are kept
    (they are agent variables, so checkpoints hold them).

    Sessions are carried across segments: a step of a session still running
    at a segment's end is stored at once with its return so far, marked
    pending, and completed by the next segments (their rewards until the
    session ends, discounted, are added; the last item's click, which shows
    in the next segment's first observation, is filled in). Only finished
    rows are drawn. Dropping the unfinished steps instead would keep a step
    late in a segment only when its session ended soon after, which biases
    the stored returns against what lengthens a session. A session whose env
    was reset between segments (a checkpoint ends the episodes) is dropped.

    The tables are allocated whole: every checkpoint holds `capacity` ×
    (user width + k × candidate width + 7) numbers however few rows are
    filled, about 50 MB for the recsim preset's 200,000 rows (20 + 2 × 20 +
    7 numbers each); lower `replay_capacity` or the checkpoints kept
    (`max_to_keep`) if that matters.
    """

    def __init__(self, capacity: int, observation_spec: dict, slate_size: int):
        super().__init__(name="return_replay")
        self.capacity = capacity
        self.slate_size = slate_size
        width = observation_spec["candidates"].shape[-1]

        def table(shape: list[int], dtype: tf.DType, name: str) -> tf.Variable:
            return tf.Variable(tf.zeros([capacity, *shape], dtype), trainable=False, name=name)

        self.user = table(list(observation_spec["user"].shape), tf.float32, "user")
        self.items = table([slate_size, width], tf.float32, "items")
        self.response = table([], tf.int32, "response")
        self.returns = table([], tf.float32, "returns")
        # Pending rows: 1 while the session (or the row's click) is not known yet; `env`
        # is the segment row that wrote it and `tail` the discount that multiplies the
        # rewards still to come (γ^steps to the end of the last segment, times env discounts).
        self.finished = table([], tf.float32, "finished")
        self.pending = table([], tf.bool, "pending")
        self.awaits_click = table([], tf.bool, "awaits_click")
        self.env = table([], tf.int32, "env")
        self.tail = table([], tf.float32, "tail")
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="count")
        # What the last stored segment looked like (see `fingerprint`): the Trainer
        # hands each segment to `train` `train_steps` times; it is stored once.
        self.stored = tf.Variable(tf.zeros([4], tf.float64), trainable=False, name="stored")

    @staticmethod
    def fingerprint(experience: Any) -> tf.Tensor:
        """Position-weighted sums of a segment's rewards, users and candidates, and its size.

        Two different segments share it only by accident of floating point; a
        segment handed over again matches it exactly.
        """

        def weighted(t: tf.Tensor) -> tf.Tensor:
            flat = tf.reshape(tf.cast(t, tf.float64), [-1])
            position = tf.range(1, tf.size(flat) + 1, dtype=tf.int32)
            return tf.reduce_sum(flat * tf.cast(position, tf.float64))

        observation = experience.observation
        return tf.stack(
            [
                weighted(experience.reward),
                weighted(observation["user"]),
                weighted(observation["candidates"]),
                tf.cast(tf.size(experience.reward), tf.float64),
            ]
        )

    def _complete(self, experience: Any, returns: tf.Tensor, gamma: float) -> None:
        """Carries the pending rows into the [B, T] segment that follows them."""
        first = experience.step_type[:, 0]
        reset = tf.equal(first, ts.StepType.FIRST)  # the env was reset: the session is lost
        boundary = tf.equal(first, ts.StepType.LAST)  # the session ended with the last segment
        ends = tf.reduce_any(tf.equal(experience.next_step_type, ts.StepType.LAST), axis=1)
        # What the session earned in this segment, and the discount across it if it goes on.
        head = tf.where(boundary, 0.0, tf.cast(returns[:, 0], tf.float32))
        across = tf.reduce_prod(gamma * tf.cast(experience.discount, tf.float32), axis=1)
        click = tf.cast(experience.observation["response"][:, 0], tf.int32)

        # A row written by an env row this segment does not have (training goes on
        # with fewer envs, whose new Trainer reset them) is lost too.
        batch = tf.shape(first)[0]
        pending = self.pending
        gone = pending & (self.env >= batch)
        env = tf.minimum(self.env, batch - 1)

        def by_env(values: tf.Tensor) -> tf.Tensor:
            return tf.gather(values, env)

        lost = pending & (gone | by_env(reset))
        done = pending & ~lost & by_env(boundary | ends)
        self.returns.assign(self.returns + tf.where(pending & ~lost, self.tail * by_env(head), 0.0))
        self.response.assign(tf.where(self.awaits_click & ~lost, by_env(click), self.response))
        self.tail.assign(tf.where(pending, self.tail * by_env(across), self.tail))
        self.finished.assign(tf.where(done, 1.0, self.finished))
        self.pending.assign(pending & ~lost & ~done)
        self.awaits_click.assign(tf.zeros_like(self.awaits_click))

    def add(self, experience: Any, slates: tf.Tensor, gamma: float) -> tf.Tensor:
        """Stores the [B, T] segment's transitions and completes the pending ones.

        Item t's click shows in item t + 1's `response` (the last item's in
        the next segment's first observation). Boundary items are left out.
        Returns the number of rows stored.
        """
        observation = experience.observation
        returns = episodes.discounted_returns(experience, gamma)
        self._complete(experience, returns, gamma)

        last = tf.shape(experience.reward)[1] - 1
        known = tf.cast(episodes.complete_episode_mask(experience), tf.bool)
        real = ~experience.is_boundary()
        # The discount from each item to the segment's end, for steps of a running session.
        step_discount = gamma * tf.cast(experience.discount, tf.float32)
        tail = tf.math.cumprod(step_discount, axis=1, reverse=True)
        index = tf.where(real)[-self.capacity :]
        count = tf.shape(index, out_type=tf.int64)[0]
        position = tf.cast(index[:, 1], tf.int32)
        at_end = tf.equal(position, last)
        candidates = tf.gather_nd(tf.cast(observation["candidates"], tf.float32), index)
        shown = tf.gather_nd(slates, index)
        next_response = tf.concat(
            [observation["response"][:, 1:], observation["response"][:, -1:]], axis=1
        )
        finished = tf.gather_nd(known, index) & ~at_end
        rows = (self.count + tf.range(count)) % self.capacity

        def put(table: tf.Variable, values: tf.Tensor) -> None:
            table.scatter_nd_update(rows[:, None], values)

        put(self.user, tf.gather_nd(tf.cast(observation["user"], tf.float32), index))
        put(self.items, tf.gather(candidates, shown, batch_dims=1))
        put(self.response, tf.gather_nd(tf.cast(next_response, tf.int32), index))
        put(self.returns, tf.gather_nd(tf.cast(returns, tf.float32), index))
        put(self.finished, tf.cast(finished, tf.float32))
        put(self.pending, ~finished)
        put(self.awaits_click, at_end)
        put(self.env, tf.cast(index[:, 0], tf.int32))
        put(self.tail, tf.where(tf.gather_nd(known, index), 0.0, tf.gather_nd(tail, index)))
        self.count.assign_add(count)
        return count

    def sample(self, batch_size: int) -> tuple:
        """(user, items, response, return, weight) of `batch_size` uniform draws.

        Rows still pending (and, before anything is stored, the draws of row
        0) get weight 0.
        """
        size = tf.minimum(self.count, self.capacity)
        rows = tf.random.uniform([batch_size], 0, tf.maximum(size, 1), dtype=tf.int64)
        return (
            tf.gather(self.user, rows),
            tf.gather(self.items, rows),
            tf.gather(self.response, rows),
            tf.gather(self.returns, rows),
            tf.gather(self.finished, rows),
        )


class SlateQ(TfrlAgent, tf_agent.TFAgent):
    """SlateQ (Ie et al., 2019, https://www.ijcai.org/proceedings/2019/360).

    Decomposes a slate's long-term value into per-item values,
    `Q(s, A) = Σ_{i∈A} P(i | s, A) · Q(s, i)` (here with a no-click term
    `P(⊥ | s, A) · Q(s, ⊥)`), where P is a multinomial-logit choice model and
    Q(s, i) the return when the user consumes i. Only the consumed item's value
    is updated, toward `r + γ · max_A' Q_target(s', A')` (Q-learning) or the next
    shown slate's value (SARSA), or the return to the session's end
    (`target="monte_carlo"`, for when the observation hides what shortens a
    session: the returns are of the behaviour policies that collected the
    replay, a mixture of all past collect policies while the replay keeps
    them, not of the current one); the choice model learns from which slate
    position was clicked (cross-entropy). Slates are chosen exactly, greedily or
    by top-k. Differences from the paper: the choice model is learned, not
    given, and one-step targets use a target network.

    Args:
        time_step_spec: the environment's `time_step_spec()`: observations with
            `user`, `candidates` and `response` (tfrl/Recommendation-v0).
        action_spec: the environment's `action_spec()`: a slate of k ids.
        config: a `SlateQConfig`. Default `SlateQConfig()`.
        network: a `SlateQNetwork` (or a network with the same outputs).
            Default: one with `config.hidden_units`.
        optimizer: a Keras optimizer. Default Adam(`config.learning_rate`).

    Example:
        >>> env = tfrl.envs.make("tfrl/Recommendation-v0", num_envs=64, preset="recsim")
        >>> agent = tfrl.agents.make("slateq", env)
        >>> tfrl.Trainer(agent, env, seed=0).fit(200_000)
    """

    name_in_registry = "slateq"
    config_class = SlateQConfig
    object_args = ("network", "optimizer")

    def __init__(
        self,
        time_step_spec: Any,
        action_spec: Any,
        config: SlateQConfig | None = None,
        *,
        network: Any = None,
        optimizer: tf.keras.optimizers.Optimizer | None = None,
    ):
        config = config or SlateQConfig()
        self._init_tfrl(config)
        observation_spec = time_step_spec.observation
        self._slate_size = _check_observation(observation_spec, action_spec)
        self._network = network or SlateQNetwork(
            observation_spec, config.hidden_units, relative=config.relative_values
        )
        self._network.create_variables(observation_spec)
        self._target_network = self._network.copy(name="TargetSlateQ")
        self._target_network.create_variables(observation_spec)
        self._optimizer = optimizer or tf.keras.optimizers.Adam(config.learning_rate)
        if config.target == "monte_carlo":
            self._returns = _ReturnReplay(
                config.replay_capacity, observation_spec, self._slate_size
            )
        for target, source in zip(self._target_network.variables, self._network.variables):
            target.assign(source)
        selection = config.slate_selection
        policy = SlateQPolicy(
            time_step_spec, action_spec, self._network, self._slate_size, selection
        )
        collect_policy = SlateQPolicy(
            time_step_spec,
            action_spec,
            self._network,
            self._slate_size,
            selection,
            epsilon=self._epsilon,
        )
        super().__init__(
            time_step_spec,
            action_spec,
            policy,
            collect_policy,
            train_sequence_length=None if config.target == "monte_carlo" else 2,
            train_step_counter=self._new_train_step_counter(),
        )

    def _initialize(self) -> None:
        for target, source in zip(self._target_network.variables, self._network.variables):
            target.assign(source)

    def _slates(self, action: tf.Tensor) -> tf.Tensor:
        action = tf.cast(action, tf.int32)
        # Single-item slates: [B] or [B, T] ids -> [..., 1].
        return action[..., None] if self.action_spec.shape.rank == 0 else action

    @property
    def on_policy(self) -> bool:
        """Monte-Carlo targets need whole sessions: trained on each collected segment."""
        return self.config.target == "monte_carlo"

    def _loss(self, experience, weights=None, training=False):
        if self.config.target == "monte_carlo":
            first, slates, response, y, valid = self._monte_carlo_batch(experience)
        else:
            first, slates, response, y, valid = self._bootstrap_batch(experience)
        if weights is not None:
            valid *= weights
        return self._fit_loss(first, slates, response, y, valid, training)

    def _bootstrap_batch(self, experience) -> tuple:
        """One-step targets r + γ Q_target(s', A') from [B, 2] windows."""
        c = self.config
        k = self._slate_size
        first = tf.nest.map_structure(lambda t: t[:, 0], experience.observation)
        second = tf.nest.map_structure(lambda t: t[:, 1], experience.observation)
        slates = self._slates(experience.action[:, 0])
        response = tf.cast(second["response"], tf.int32)
        reward = tf.cast(experience.reward[:, 0], tf.float32) * c.reward_scale
        discount = tf.cast(experience.discount[:, 0], tf.float32)
        valid = tf.cast(~experience.is_boundary()[:, 0], tf.float32)
        online_next, _ = self._network(second)
        target_next, _ = self._target_network(second)
        if c.target == "sarsa":
            next_slates = self._slates(experience.action[:, 1])
        else:
            next_slates = select_slates(online_next, k, c.slate_selection)
        # Target values with the online click model (the target net's Q, online P).
        mixed = (target_next[0], target_next[1], online_next[2], online_next[3])
        next_value = tf.squeeze(slate_values(mixed, next_slates[:, None, :]), 1)
        y = tf.stop_gradient(reward + c.gamma * discount * next_value)
        return first, slates, response, y, valid

    def _monte_carlo_batch(self, experience) -> tuple:
        """`batch_size` finished-session transitions from the return replay (see `_ReturnReplay`).

        Each sample's candidates are its slate's k documents, so its slate is
        `0..k-1` (the per-item networks take any number of candidates).
        """
        c = self.config
        user, items, response, y, valid = self._returns.sample(c.batch_size)
        spec = self.time_step_spec.observation["response"]
        first = {"user": user, "candidates": items, "response": tf.cast(response, spec.dtype)}
        slates = tf.tile(tf.range(self._slate_size)[None], [c.batch_size, 1])
        return first, slates, response, y * c.reward_scale, valid

    def _fit_loss(self, first, slates, response, y, valid, training) -> tf_agent.LossInfo:
        """The clicked item's value (or Q(s, ⊥)) toward `y`, and the click model."""
        c = self.config
        k = self._slate_size
        clicked = response < k
        item = tf.gather(slates, tf.minimum(response, k - 1), batch_dims=1)
        # `call`, not `__call__`: Monte-Carlo samples carry k candidates, not the spec's N.
        (q_items, q_none, logits, no_click), _ = self._network.call(first, training=training)
        taken = tf.where(clicked, tf.gather(q_items, item, batch_dims=1), q_none)
        if c.target == "monte_carlo":
            td = 0.5 * tf.square(y - taken)
        else:
            td = tf.keras.losses.huber(y[:, None], taken[:, None])
        slate_logits = tf.concat(
            [tf.gather(logits, slates, batch_dims=1), no_click[:, None]], axis=1
        )
        choice = tf.nn.sparse_softmax_cross_entropy_with_logits(response, slate_logits)
        total = tf.reduce_sum(valid)
        denominator = tf.maximum(total, 1.0)
        td_loss = tf.reduce_sum(td * valid) / denominator
        choice_loss = tf.reduce_sum(choice * valid) / denominator
        loss = td_loss + c.choice_loss_weight * choice_loss
        return tf_agent.LossInfo(loss, {"td_loss": td_loss, "choice_loss": choice_loss})

    def _train(self, experience, weights=None):
        # Graph control flow written out (tf.cond): the Trainer traces without AutoGraph.
        if self.config.target == "monte_carlo":
            # The Trainer hands over each collected segment train_steps times: store it once.
            fingerprint = self._returns.fingerprint(experience)

            def store() -> tf.Operation:
                self._returns.add(experience, self._slates(experience.action), self.config.gamma)
                return self._returns.stored.assign(fingerprint).op

            new = tf.reduce_any(tf.not_equal(self._returns.stored, fingerprint))
            stored = tf.cond(new, store, tf.no_op)
        else:
            stored = tf.no_op()
        with tf.control_dependencies([stored]), tf.GradientTape() as tape:
            info = self._loss(experience, weights, training=True)
        variables = self._network.trainable_variables
        gradients = tape.gradient(info.loss, variables)
        gradients, _ = tf.clip_by_global_norm(gradients, 10.0)
        self._optimizer.apply_gradients(zip(gradients, variables))
        self.train_step_counter.assign_add(1)
        period = self.config.target_update_period

        def update_target() -> tf.Operation:
            pairs = zip(self._target_network.variables, self._network.variables, strict=True)
            return tf.group([target.assign(source) for target, source in pairs])

        tf.cond(tf.equal(self.train_step_counter % period, 0), update_target, tf.no_op)
        return info
