"""`sample_replay`, which every off-policy train phase (compiled or not) draws with."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.replay_buffers import tf_uniform_replay_buffer

from tfrl.training.seeding import replay_last_id, sample_replay


def _buffer(items: int, max_length: int = 10) -> tf_uniform_replay_buffer.TFUniformReplayBuffer:
    """Two rows; row r's item i holds the value 1000 * r + i."""
    replay = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        tf.TensorSpec([], tf.int64), batch_size=2, max_length=max_length
    )
    for i in range(items):
        replay.add_batch(tf.constant([i, 1000 + i], tf.int64))
    return replay


@pytest.mark.parametrize("items", [6, 10, 27], ids=["partly-filled", "full", "wrapped"])
def test_windows_are_consecutive_written_items_covering_the_whole_buffer(items):
    replay, steps = _buffer(items), 3
    generator = tf.random.Generator.from_seed(0)
    windows = sample_replay(replay, generator, 4000, steps).numpy()
    first, last = max(0, items - 10), items - 1  # the items the buffer still holds
    starts = windows[:, 0] % 1000
    np.testing.assert_array_equal(windows - windows[:, :1], np.tile(np.arange(steps), (4000, 1)))
    assert starts.min() == first and (windows % 1000).max() == last  # both ends, no further
    assert set(windows[:, 0] // 1000) == {0, 1}  # both rows


def test_a_buffer_without_a_whole_window_is_refused():
    with pytest.raises(tf.errors.InvalidArgumentError, match="no full window"):
        replay_last_id(_buffer(2), 3)
