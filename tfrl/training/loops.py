"""Compiled collect and train loops: the Trainer's hot path.

Each call runs many env steps or gradient steps inside one `tf.function`, so
the per-step Python and dispatch overhead of a step-at-a-time loop is paid
once per iteration instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.utils import common

from tfrl.console import native_stderr_hidden
from tfrl.errors import ConfigError
from tfrl.training.seeding import replay_last_id, sample_replay

logger = logging.getLogger(__name__)

__all__ = [
    "make_collect_fn",
    "make_off_policy_train_fn",
    "make_on_policy_train_fn",
    "make_replay_buffer",
    "mean_loss",
    "with_autograph_fallback",
]


def mean_loss(train_steps: int, step: Callable[[], tf.Tensor]) -> tf.Tensor:
    """Runs `step()` (one gradient step, returning its loss) `train_steps` times; the mean loss.

    A `tf.while_loop` for `tf.function(autograph=False)`, as TF-Agents' own
    `common.function` traces: AutoGraph would convert the agent's whole train
    path (TF-Agents and Keras code) first, which costs seconds each time a process
    traces its first train phase.
    """
    _, total = tf.while_loop(
        lambda i, _: i < train_steps,
        lambda i, total: (i + 1, total + step()),
        (tf.constant(0), tf.constant(0.0)),
    )
    return total / float(train_steps)


def with_autograph_fallback(
    build: Callable[[bool], Callable[[], tf.Tensor]],
) -> Callable[[], tf.Tensor]:
    """`build(autograph)` makes a train phase; this runs the AutoGraph-free one if it can.

    A network whose `call` branches on a tensor with a Python `if` needs
    AutoGraph: its first trace then fails before any update, and the phase is
    rebuilt with AutoGraph (a slower first trace, said once in the log).
    """
    phase = build(False)
    traced = False

    def run() -> tf.Tensor:
        nonlocal phase, traced
        if traced:
            return phase()
        try:
            loss = phase()
        except tf.errors.OperatorNotAllowedInGraphError as e:
            logger.info(
                "A network uses Python control flow on tensors (%s); tracing the train "
                "phase with AutoGraph instead (slower the first time).",
                str(e).splitlines()[0][:120],
            )
            phase = build(True)
            loss = phase()
        traced = True
        return loss

    return run


def make_replay_buffer(agent: Any, batch_size: int, max_length: int):
    """A uniform replay buffer with one row per parallel env."""
    return tf_uniform_replay_buffer.TFUniformReplayBuffer(
        data_spec=agent.collect_data_spec, batch_size=batch_size, max_length=max_length
    )


def make_collect_fn(env: Any, policy: Any, observers: list[Callable], num_steps: int):
    """Returns `collect(time_step, policy_state) -> (time_step, policy_state)`.

    Runs `num_steps` env steps (summed over the batch) in one compiled call.
    """
    driver = dynamic_step_driver.DynamicStepDriver(
        env, policy, observers=observers, num_steps=num_steps
    )
    return common.function(driver.run)


def make_off_policy_train_fn(
    agent: Any,
    replay: Any,
    batch_size: int,
    train_steps: int,
    generator: tf.random.Generator,
    jit_compile: bool = False,
):
    """Returns `train() -> mean loss` doing `train_steps` sampled gradient steps.

    Samples are drawn with `generator` (see `tfrl.training.seeding.sample_replay`).
    With `jit_compile`, the whole phase (sampling and gradient steps) is one XLA
    computation: much faster for small networks, whose steps are mostly op overhead.
    """
    sequence_length = agent.train_sequence_length

    def step(last_id: tf.Tensor) -> tf.Tensor:
        sample = sample_replay(replay, generator, batch_size, sequence_length, last_id)
        return agent.train(sample).loss

    def build(autograph: bool) -> Callable[[], tf.Tensor]:
        @tf.function(jit_compile=jit_compile, autograph=autograph)
        def steps(last_id: tf.Tensor) -> tf.Tensor:
            return mean_loss(train_steps, lambda: step(last_id))

        @tf.function(autograph=autograph)
        def train() -> tf.Tensor:
            # The buffer does not change during the phase: read its end once, outside XLA.
            return steps(replay_last_id(replay, sequence_length))

        return train

    train = with_autograph_fallback(build)
    if not jit_compile:
        return train
    compiled = False

    def train_or_explain() -> tf.Tensor:
        # The first call compiles; a network with an op XLA cannot compile (e.g. a
        # tf.numpy_function) fails there with a deep TensorFlow error: name the knob.
        nonlocal compiled
        if compiled:
            return train()
        try:
            with native_stderr_hidden():  # XLA's first compile logs through absl's C++ logger
                loss = train()
        except tf.errors.OpError as e:
            if "no full window" in str(e):
                raise
            first_line = str(e).strip().splitlines()[0]
            raise ConfigError(
                "The train phase failed to run compiled with XLA (jit_compile=True, set by "
                "the tuned row or by you). If your network has ops XLA cannot compile, pass "
                f"jit_compile=False. TensorFlow said: {first_line}"
            ) from e
        compiled = True
        return loss

    return train_or_explain


def make_on_policy_train_fn(agent: Any, replay: Any, train_steps: int):
    """Returns `train() -> mean loss` on the collected segment, then clears it."""

    def build(autograph: bool) -> Callable[[], tf.Tensor]:
        @tf.function(autograph=autograph)
        def train() -> tf.Tensor:
            experience = replay.gather_all()
            loss = mean_loss(train_steps, lambda: agent.train(experience).loss)
            replay.clear()  # after the loop: tf.function keeps stateful ops in program order
            return loss

        return train

    return with_autograph_fallback(build)
