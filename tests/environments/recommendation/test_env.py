"""tfrl/Recommendation-v0: gymnasium contract, vectorized = single, errors, RecSim fidelity."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import environments  # noqa: F401  (registers tfrl/ ids)
import tfrl
from environments.recommendation import (
    RecommendationEnv,
    RecommendationVectorEnv,
    SlateError,
)
from environments.recommendation.baselines import (
    MyopicPolicy,
    QualityOraclePolicy,
    RandomPolicy,
    run_sessions,
)
from tfrl.errors import ConfigError, TfrlError, UnknownNameError


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"preset": "recsim"}, {"observation": "flat"}, {"slate_size": 1}],
    ids=["default", "recsim", "flat", "k1"],
)
def test_check_env_passes(kwargs):
    check_env(gym.make("tfrl/Recommendation-v0", **kwargs).unwrapped, skip_render_check=True)


def _single_rollout(seed, actions, **config):
    """One single env stepped like a next-step-autoreset vector env row."""
    env = RecommendationEnv(**config)
    observation, _ = env.reset(seed=seed)
    observations, rewards, done = [observation], [], False
    for action in actions:
        if done:
            observation, _ = env.reset()
            reward, done = 0.0, False
        else:
            observation, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        observations.append(observation)
        rewards.append(reward)
    return observations, rewards


@pytest.mark.parametrize("preset", ["default", "recsim"])
def test_vector_env_plays_the_single_envs_sessions(preset):
    config = {"preset": preset, "budget": 12.0}
    n, steps = 3, 60
    rng = np.random.default_rng(0)
    k = RecommendationEnv(**config).config.slate_size
    actions = np.stack(
        [np.stack([rng.permutation(10)[:k] for _ in range(n)]) for _ in range(steps)]
    )
    vector = RecommendationVectorEnv(n, **config)
    observation, _ = vector.reset(seed=5)
    vector_obs, vector_rewards, ended = [observation], [], 0
    for t in range(steps):
        observation, reward, terminated, truncated, _ = vector.step(actions[t])
        vector_obs.append(observation)
        vector_rewards.append(reward)
        ended += int((terminated | truncated).sum())
    assert ended >= n  # every user's session ended and restarted at least once
    for i in range(n):
        single_obs, single_rewards = _single_rollout(5 + i, actions[:, i], **config)
        np.testing.assert_allclose([r[i] for r in vector_rewards], single_rewards)
        for v, s in zip(vector_obs, single_obs):
            np.testing.assert_array_equal(v["user"][i], s["user"])
            np.testing.assert_array_equal(v["candidates"][i], s["candidates"])
            assert v["response"][i] == s["response"]


def test_make_steps_many_users_as_one_vector_env():
    env = tfrl.envs.make("tfrl/Recommendation-v0", num_envs=64, seed=0)
    assert env.batch_size == 64
    assert isinstance(env.pyenv.gym_env.unwrapped, RecommendationVectorEnv)
    time_step = env.reset()
    assert time_step.observation["candidates"].shape == (64, 10, 12)
    next_step = env.step(np.tile([0, 1, 2], (64, 1)))
    assert next_step.reward.shape == (64,)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"slate_size": 11}, ConfigError, "slate_size=11 is larger than num_candidates=10"),
        ({"budget": -5}, ConfigError, "budget=-5 must be a positive, finite number"),
        ({"budget": float("inf")}, ConfigError, "budget=inf .* use max_steps"),
        ({"session_features": "yes"}, ConfigError, "session_features='yes' must be True"),
        ({"preset": "recsimm"}, UnknownNameError, "Did you mean 'recsim'"),
        ({"choice_model": "probit"}, UnknownNameError, "choice_model='probit'"),
        ({"corpus": "movielens", "tfds_name": "movielenz/100k"}, UnknownNameError, "movielenz"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        RecommendationEnv(**kwargs)


@pytest.mark.parametrize(
    "slate, match",
    [
        ([1, 1, 2], "shows a candidate twice"),
        ([0, 3, 10], r"outside 0\.\.9"),
        ([0, 1], "hold"),
        ([0.0, 1.7, 2.0], "integer candidate ids, got float64"),
    ],
)
def test_bad_slates_are_refused(slate, match):
    env = RecommendationEnv()
    env.reset(seed=0)
    with pytest.raises(SlateError, match=match):
        env.step(slate)
    assert isinstance(SlateError("x"), TfrlError)


def test_vector_env_refuses_float_slates():
    env = RecommendationVectorEnv(2)
    env.reset(seed=0)
    with pytest.raises(SlateError, match="integer candidate ids"):
        env.step(np.array([[0, 1, 2], [3, 4, 5.5]]))


def test_session_features_are_a_config_field_off_in_the_recsim_preset():
    default = RecommendationEnv()
    recsim = RecommendationEnv(preset="recsim")
    # RecSim's user observation is the 20 interests alone: the budget stays hidden.
    assert recsim.observation_space["user"].shape == (20,)
    assert default.observation_space["user"].shape == (10 + 3,)
    both = RecommendationEnv(preset="recsim", session_features=True)
    assert both.observation_space["user"].shape == (23,)
    observation, _ = recsim.reset(seed=0)
    assert observation["user"].shape == (20,)
    observation, *_ = recsim.step([0, 1])
    assert observation["user"].shape == (20,)
    flat = RecommendationEnv(preset="recsim", observation="flat")
    assert flat.observation_space.shape == (20 + 10 * 20 + 3,)


def test_session_features_give_the_budget_left():
    env = RecommendationEnv()
    observation, _ = env.reset(seed=3)
    c = env.config
    for _ in range(20):
        observation, _, terminated, truncated, _ = env.step([0, 1, 2])
        if terminated or truncated:
            break
        minutes, no_clicks, minutes_quality = 100.0 * observation["user"][c.num_topics :]
        known = (
            c.budget
            - minutes
            - c.no_click_cost * no_clicks
            + c.budget_quality_factor * minutes_quality
        )
        assert known == pytest.approx(env._sessions.budget[0], abs=1e-3)


def _overlap(stats, mean, half_width):
    return abs(stats.mean - mean) <= stats.ci95 + half_width


def test_recsim_preset_reproduces_recsims_published_figures():
    # Measured on recsim 0.2.4 (10 candidates, slate 2, 1,000 sessions, 95% CIs).
    random = run_sessions(RandomPolicy, 1_000, preset="recsim")
    quality = run_sessions(QualityOraclePolicy, 1_000, preset="recsim")
    assert _overlap(random, 153.9, 0.8), random
    assert _overlap(quality, 280.7, 3.4), quality


def test_default_config_has_the_clickbait_trade_off():
    random = run_sessions(RandomPolicy, 300)
    myopic = run_sessions(MyopicPolicy, 300)
    oracle = run_sessions(QualityOraclePolicy, 300)
    assert myopic.ctr > random.ctr > oracle.ctr
    assert oracle.mean > 1.1 * myopic.mean
