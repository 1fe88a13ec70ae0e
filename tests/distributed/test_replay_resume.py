"""A resumed learner refuses a replay server that did not load the run's Reverb checkpoint.

In process, on loopback: the run's real tables, items inserted, a Reverb
checkpoint, then a server restarted from it (the count survives, resume is
allowed) and one started empty (refused with the fix named).
"""

import numpy as np
import pytest
import tensorflow as tf

from tfrl.distributed.learner import check_replay_restored
from tfrl.distributed.replay_server import make_tables
from tfrl.distributed.spec import REPLAY_TABLE, build_agent
from tfrl.errors import CheckpointError
from tfrl.training.run import RunConfig

reverb = pytest.importorskip("reverb")

INSERTED = 12


def _inserted(server):
    info = reverb.Client(f"localhost:{server.port}").server_info()[REPLAY_TABLE]
    return int(info.rate_limiter_info.insert_stats.completed)


def test_resume_needs_the_replay_checkpoint(tmp_path):
    _, agent = build_agent(RunConfig(agent="dqn", hparams={"hidden_units": [8]}))
    spec = agent.collect_data_spec
    window = tf.nest.map_structure(
        lambda s: np.zeros((agent.train_sequence_length, *s.shape), s.dtype.as_numpy_dtype), spec
    )
    checkpoints = str(tmp_path / "reverb")

    def server():
        return reverb.Server(
            make_tables(agent), checkpointer=reverb.checkpointers.DefaultCheckpointer(checkpoints)
        )

    first = server()
    try:
        client = reverb.Client(f"localhost:{first.port}")
        with client.trajectory_writer(num_keep_alive_refs=agent.train_sequence_length) as writer:
            for _ in range(INSERTED):
                writer.append(tf.nest.map_structure(lambda x: x[0], window))
                if writer.episode_steps >= agent.train_sequence_length:
                    item = tf.nest.map_structure(
                        lambda c: c[-agent.train_sequence_length :], writer.history
                    )
                    writer.create_item(REPLAY_TABLE, priority=1.0, trajectory=item)
            writer.flush()
        saved = _inserted(first)
        assert saved > 0
        client.checkpoint()
    finally:
        first.stop()

    restarted = server()
    try:
        assert _inserted(restarted) == saved
        check_replay_restored(saved, _inserted(restarted), "runs/x", "localhost:1")
    finally:
        restarted.stop()

    empty = reverb.Server(make_tables(agent))
    try:
        with pytest.raises(CheckpointError, match="did not load this run's Reverb checkpoint"):
            check_replay_restored(saved, _inserted(empty), "runs/x", "localhost:1")
    finally:
        empty.stop()
