"""Seeds: one integer makes a run reproducible, and its random streams resumable.

`set_seed(seed)` seeds Python, NumPy and TensorFlow and turns on TensorFlow's
op determinism; call it before building envs and agents (`tfrl.train` and
`tfrl train --seed` do), so network initialisation is seeded too.

Inside `Trainer.fit`, the random draws of collection (exploration, action
sampling) and of replay sampling come from one `tf.random.Generator` whose
state is a variable: checkpoints save it, so a resumed run draws what the
uninterrupted run drew. TensorFlow's stateful random ops (what TF-Agents'
policies and `TFUniformReplayBuffer.get_next` use) keep their state inside
compiled kernels, where no checkpoint can reach it; `GeneratorPolicy` and
`sample_replay` replace them on the Trainer's path.

What stays nondeterministic: wall-clock metrics (`tfrl.training.trainer.TIMING_KEYS`);
async vector envs and envs with unseeded randomness of their own; a policy
that offers neither a distribution nor ε-greedy (it keeps TF-Agents'
stateful sampling: reproducible from a fresh seed, not across a resume);
GPU kernels without a deterministic version (op determinism makes those
raise rather than differ).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.policies import epsilon_greedy_policy, tf_policy
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.trajectories import policy_step
from tf_agents.utils import nest_utils

from tfrl.errors import check_whole_number

__all__ = [
    "GeneratorPolicy",
    "derive_seed",
    "make_generator",
    "replay_last_id",
    "sample_replay",
    "set_seed",
]


def set_seed(seed: int) -> None:
    """Seeds Python's `random`, NumPy and TensorFlow, and makes TF ops deterministic.

    Call it before `tfrl.envs.make` and `tfrl.agents.make` when you build the
    pieces yourself: network weights are drawn when the agent is built.

    >>> tfrl.set_seed(0)
    >>> env = tfrl.envs.make("CartPole-v1", num_envs=8, seed=0)
    >>> trainer = tfrl.Trainer(tfrl.agents.make("dqn", env), env, seed=0)

    Op determinism (`tf.config.experimental.enable_op_determinism`) is
    process-wide and stays on. On CPU its cost for default CartPole DQN was
    lost in the noise of a shared 2-core machine: 2,149-2,838 env steps/s
    with it, 1,292-2,938 without (medians 2,158 and 1,552; three
    interleaved pairs, 8,192 steps each).

    Runs repeat bit for bit with the same TensorFlow thread counts. TF's CPU
    kernels split their sums by the size of the intra-op thread pool, which
    by default is the number of CPUs the process may use, so the same seed
    on another machine or under another CPU affinity (`taskset`, a container
    limit) rounds differently in the last bits, and long RL runs can then end
    far apart (a SlateQ run on RecSim: 230.7 minutes per session with two
    CPUs, 261.5 pinned to one). To reproduce across such settings, fix the
    pools before TensorFlow starts: `TF_NUM_INTRAOP_THREADS=2
    TF_NUM_INTEROP_THREADS=2` in the environment (or
    `tf.config.threading.set_intra_op_parallelism_threads`). This does not
    change them: TensorFlow refuses once it has started, and a fixed count
    would slow bigger machines.

    Args:
        seed: a whole number ≥ 0.
    """
    global _last_seed
    check_whole_number("seed", seed, minimum=0, hint=" Or pass seed=None for an unseeded run.")
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    _last_seed = seed


_last_seed: int | None = None  # what set_seed last set


def last_seed() -> int | None:
    """The seed `set_seed` last set in this process, or None if it was never called."""
    return _last_seed


def derive_seed(seed: int, *keys: int) -> int:
    """A 31-bit seed for the stream named by `keys`, independent of other streams."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] >> 1)


def make_generator(seed: int | None, *keys: int) -> tf.random.Generator:
    """A Philox generator seeded from (`seed`, `keys`), or from the OS when `seed` is None."""
    if seed is None:  # (from_non_deterministic_state is refused under op determinism)
        seed = int(np.random.SeedSequence().entropy % 2**31)
    return tf.random.Generator.from_seed(derive_seed(seed, *keys))


class GeneratorPolicy(tf_policy.TFPolicy):
    """Acts like `policy`, drawing its randomness from `generator`.

    Distribution policies (PPO, REINFORCE, softmax, ...) sample their
    distribution with stateless seeds made by the generator; ε-greedy
    policies (DQN) draw the coin and the random action from it. A policy
    that offers neither falls back to its own (unresumable) sampling.
    """

    def __init__(self, policy: tf_policy.TFPolicy, generator: tf.random.Generator):
        super().__init__(
            policy.time_step_spec,
            policy.action_spec,
            policy.policy_state_spec,
            policy.info_spec,
            clip=False,  # the wrapped policy's distribution or action already does
            emit_log_probability=policy.emit_log_probability,
            name=f"generator_{policy.name}",
        )
        self._policy = policy
        self._generator = generator

    def _variables(self):
        return self._policy.variables()

    def _seed(self) -> tf.Tensor:
        return tf.cast(self._generator.make_seeds(1)[:, 0], tf.int32)

    def _action(self, time_step, policy_state, seed):
        policy = self._policy
        if isinstance(policy, epsilon_greedy_policy.EpsilonGreedyPolicy):
            return self._epsilon_greedy(policy, time_step, policy_state)
        try:
            step = policy.distribution(time_step, policy_state)
        except NotImplementedError:
            return policy.action(time_step, policy_state)
        seeds = tf.unstack(
            tf.random.experimental.stateless_split(self._seed(), len(tf.nest.flatten(step.action)))
        )
        flat = [d.sample(seed=s) for d, s in zip(tf.nest.flatten(step.action), seeds, strict=True)]
        actions = tf.nest.pack_sequence_as(step.action, flat)
        info = step.info
        if self.emit_log_probability:
            log_probability = tf.nest.map_structure(
                lambda a, d: d.log_prob(a), actions, step.action
            )
            info = policy_step.set_log_probability(info, log_probability)
        return step._replace(action=actions, info=info)

    def _epsilon_greedy(self, policy, time_step, policy_state):
        if policy._observation_and_action_constraint_splitter is not None:
            return policy.action(time_step, policy_state)  # masked random actions: TF-Agents'
        greedy = policy._greedy_policy.action(time_step, policy_state)
        batch = nest_utils.get_outer_shape(time_step, self.time_step_spec)
        seed = self._seed()
        specs = tf.nest.flatten(self.action_spec)
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(specs) + 1))
        flat = [
            tf.random.stateless_uniform(
                tf.concat([batch, spec.shape], 0),
                seed=s,
                minval=tf.cast(spec.minimum, spec.dtype),
                maxval=tf.cast(spec.maximum, spec.dtype) + 1,
                dtype=spec.dtype,
            )
            for spec, s in zip(specs, seeds[1:], strict=True)
        ]
        random_action = tf.nest.pack_sequence_as(self.action_spec, flat)
        coin = tf.random.stateless_uniform(batch, seed=seeds[0])
        explore = tf.less(coin, policy._get_epsilon())
        action = tf.nest.map_structure(
            lambda g, r: tf.where(explore, r, g), greedy.action, random_action
        )
        return policy_step.PolicyStep(action, greedy.state, greedy.info)


def replay_last_id(
    replay: tf_uniform_replay_buffer.TFUniformReplayBuffer, num_steps: int | None
) -> tf.Tensor:
    """The buffer's last written id, after checking it holds a whole window of `num_steps`.

    Reading it takes a lock, which XLA cannot compile: a compiled train phase
    reads it once, before, and passes it to `sample_replay`.
    """
    last_id = replay._get_last_id()
    min_id, max_id = tf_uniform_replay_buffer._valid_range_ids(
        last_id, replay._max_length, 1 if num_steps is None else num_steps
    )
    check = tf.debugging.assert_greater(
        max_id, min_id, message="The replay buffer holds no full window."
    )
    with tf.control_dependencies([check]):  # a compiled phase must not start without it
        return tf.identity(last_id)


def sample_replay(
    replay: tf_uniform_replay_buffer.TFUniformReplayBuffer,
    generator: tf.random.Generator,
    batch_size: int,
    num_steps: int | None,
    last_id: tf.Tensor | None = None,
) -> Any:
    """`batch_size` windows of `num_steps` items, uniform over the buffer, drawn by `generator`.

    The same distribution as `replay.get_next(batch_size, num_steps)`, which
    draws with stateful ops a checkpoint cannot save. `last_id`: the buffer's
    `replay_last_id`, read (and checked) here unless given.
    """
    steps = 1 if num_steps is None else num_steps
    if last_id is None:
        last_id = replay_last_id(replay, num_steps)
    min_id, max_id = tf_uniform_replay_buffer._valid_range_ids(last_id, replay._max_length, steps)
    ids = generator.uniform([batch_size], min_id, max_id, dtype=tf.int64)
    rows = generator.uniform([batch_size], 0, replay._batch_size, dtype=tf.int64)
    offsets = rows * replay._max_length
    if num_steps is None:
        return replay._data_table.read(tf.math.mod(ids, replay._max_length) + offsets)
    window = ids[:, None] + tf.range(num_steps, dtype=tf.int64)[None, :]
    return replay._data_table.read(tf.math.mod(window, replay._max_length) + offsets[:, None])
