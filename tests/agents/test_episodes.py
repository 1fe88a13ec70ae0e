import numpy as np

from tests.agents.agent_specs import SEGMENT, SEGMENT_MASK, SEGMENT_RETURNS_HALF, F, L, M, segment
from tfrl.agents import episodes


def test_mask_keeps_only_steps_whose_episode_ends_in_the_segment():
    mask = episodes.complete_episode_mask(segment(**SEGMENT)).numpy()
    np.testing.assert_array_equal(mask, SEGMENT_MASK)


def test_mask_is_zero_for_a_row_without_an_episode_end():
    experience = segment(
        step_type=[[M, M, M]],
        next_step_type=[[M, M, M]],
        reward=[[1, 1, 1]],
        discount=[[1, 1, 1]],
        action=[[0, 0, 0]],
    )
    np.testing.assert_array_equal(episodes.complete_episode_mask(experience).numpy(), [[0, 0, 0]])


def test_mask_drops_boundaries_between_complete_episodes():
    # One-step episodes, as in a bandit: FIRST→LAST, then the LAST→FIRST boundary.
    experience = segment(
        step_type=[[F, L, F, L]],
        next_step_type=[[L, F, L, F]],
        reward=[[3, 0, 5, 0]],
        discount=[[0, 1, 0, 1]],
        action=[[0, 0, 1, 1]],
    )
    np.testing.assert_array_equal(
        episodes.complete_episode_mask(experience).numpy(), [[1, 0, 1, 0]]
    )
    np.testing.assert_allclose(
        episodes.discounted_returns(experience, 0.9).numpy()[0, [0, 2]], [3, 5]
    )


def test_returns_restart_at_terminated_and_truncated_ends():
    returns = episodes.discounted_returns(segment(**SEGMENT), gamma=0.5).numpy()
    for row, expected in enumerate(SEGMENT_RETURNS_HALF):
        for t, value in enumerate(expected):
            if value is not None:
                assert returns[row, t] == value, (row, t)


def test_a_time_limit_cut_bootstraps_from_the_final_value_and_a_termination_does_not():
    # Row 0: the episode is cut by a time limit at item 1 (discount 1); row 1: it terminates.
    experience = segment(
        step_type=[[F, M, L, F], [F, M, L, F]],
        next_step_type=[[M, L, F, M], [M, L, F, M]],
        reward=[[1, 1, 0, 1], [1, 1, 0, 1]],
        discount=[[1, 1, 1, 1], [1, 0, 1, 1]],
        action=[[0, 0, 0, 0], [0, 0, 0, 0]],
    )
    values = np.array([[0, 0, 10, 0], [0, 0, 10, 0]], np.float32)  # V(final obs) = 10
    returns = episodes.discounted_returns(experience, 0.5, values).numpy()
    np.testing.assert_allclose(returns[0, :2], [1 + 0.5 * (1 + 0.5 * 10), 1 + 0.5 * 10])
    np.testing.assert_allclose(returns[1, :2], [1.5, 1])
    without = episodes.discounted_returns(experience, 0.5).numpy()
    np.testing.assert_allclose(without[0, :2], [1.5, 1])
