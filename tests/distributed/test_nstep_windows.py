"""An actor's Reverb windows give the learner the same n-step targets as a single-process buffer.

A scripted stream of episodes (terminated, truncated, shorter than n) goes
through the actor's replay observer into a Reverb server on loopback and into
the `TFUniformReplayBuffer` a single-process run samples from. For every
window the DQN loss keeps, (start observation, n-step return, bootstrap
discount, bootstrap observation) must be the same on both paths.
"""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import array_spec, tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from tfrl.agents.dqn import _no_truncation_inside
from tfrl.distributed.actor import replay_observer
from tfrl.distributed.spec import REPLAY_TABLE
from tfrl.training.loops import make_replay_buffer

reverb = pytest.importorskip("reverb")

GAMMA = 0.9
# (length, terminated): the last episode only gives the single-process buffer
# the steps that follow the others' ends; its own windows are not compared.
EPISODES = [(5, True), (4, False), (2, True), (1, True), (6, True), (5, True)]

SPEC = trajectory.Trajectory(
    step_type=array_spec.ArraySpec((), np.int32),
    observation=array_spec.ArraySpec((), np.float32),
    action=array_spec.ArraySpec((), np.int64),
    policy_info=(),
    next_step_type=array_spec.ArraySpec((), np.int32),
    reward=array_spec.ArraySpec((), np.float32),
    discount=array_spec.ArraySpec((), np.float32),
)


def _step(step_type, obs, next_step_type, reward, discount):
    return trajectory.Trajectory(
        step_type=np.int32(step_type),
        observation=np.float32(obs),
        action=np.int64(0),
        policy_info=(),
        next_step_type=np.int32(next_step_type),
        reward=np.float32(reward),
        discount=np.float32(discount),
    )


def _stream():
    """What a PyDriver over an auto-resetting env hands its observers, boundaries included."""
    F, M, L = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST
    for e, (length, terminated) in enumerate(EPISODES):
        for t in range(length):
            last = t == length - 1
            yield _step(
                F if t == 0 else M,
                100 * e + t,
                L if last else M,
                10 * e + t + 1,
                0.0 if (last and terminated) else 1.0,
            )
        yield _step(L, 100 * e + length, F, 0.0, 1.0)  # the boundary step (LAST -> FIRST)


def _targets(windows, compared_below):
    """{(start obs, n-step return, bootstrap discount, bootstrap obs)} of the kept windows."""
    experience = tf.nest.map_structure(tf.convert_to_tensor, windows)
    keep = _no_truncation_inside(experience).numpy() * (
        experience.step_type[:, 0].numpy() != ts.StepType.LAST
    )
    rewards, discounts = windows.reward[:, :-1], GAMMA * windows.discount[:, :-1]
    found = set()
    for i in np.flatnonzero(keep):
        if windows.observation[i, 0] >= compared_below:
            continue
        ret, scale = 0.0, 1.0
        for r, d in zip(rewards[i], discounts[i]):
            ret, scale = ret + scale * r, scale * d
        bootstrap_obs = windows.observation[i, -1] if scale > 0 else None
        found.add((float(windows.observation[i, 0]), round(ret, 4), round(scale, 6), bootstrap_obs))
    return found


def _single_process(length):
    class Agent:
        collect_data_spec = tensor_spec.from_spec(SPEC)

    buffer = make_replay_buffer(Agent(), batch_size=1, max_length=1000)
    for step in _stream():
        buffer.add_batch(
            tf.nest.map_structure(lambda x: tf.convert_to_tensor(np.expand_dims(x, 0)), step)
        )
    everything = tf.nest.map_structure(lambda x: x[0].numpy(), buffer.gather_all())
    starts = range(len(everything.observation) - length + 1)
    return tf.nest.map_structure(
        lambda x: np.stack([x[s : s + length] for s in starts]), everything
    )


def _reverb(length):
    table = reverb.Table.queue(REPLAY_TABLE, max_size=1000)
    server = reverb.Server([table])
    try:
        client = reverb.Client(f"localhost:{server.port}")
        observer = replay_observer(client, length)
        for step in _stream():
            observer(step)
        observer.close()
        size = client.server_info()[REPLAY_TABLE].current_size
        items = [
            sample.data
            for sample in client.sample(REPLAY_TABLE, num_samples=size, emit_timesteps=False)
        ]
    finally:
        server.stop()
    flat = [np.stack([item[k] for item in items]) for k in range(len(items[0]))]
    return tf.nest.pack_sequence_as(SPEC, flat)


@pytest.mark.parametrize("n_step", [1, 2, 3])
def test_reverb_windows_give_the_single_process_n_step_targets(n_step):
    compared_below = 100 * (len(EPISODES) - 1)
    single = _targets(_single_process(n_step + 1), compared_below)
    distributed = _targets(_reverb(n_step + 1), compared_below)
    assert distributed == single
    # Every terminal transition is trained on: a window starts at it and does not bootstrap.
    for e, (length, terminated) in enumerate(EPISODES[:-1]):
        starts = {(obs, disc) for obs, _, disc, _ in distributed}
        if terminated:
            assert (float(100 * e + length - 1), 0.0) in starts
