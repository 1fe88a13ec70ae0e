"""tfrl/TrainingControl-v1: one fresh Keras model per episode, the learning rate as action."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium.utils.env_checker import check_env

import environments  # noqa: F401  (registers the ids)
from tfrl.errors import ConfigError, UnknownNameError

ENV_ID = "tfrl/TrainingControl-v1"


def tiny_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x[:80], y[:80], x[80:], y[80:]


def tiny_model(input_shape, num_classes):
    return tf.keras.Sequential([tf.keras.layers.Dense(num_classes, input_shape=input_shape)])


def test_check_env_passes():
    env = gym.make(ENV_ID, epochs=3, dataset_factory=tiny_data, model_factory=tiny_model)
    check_env(env.unwrapped, skip_render_check=True)


def test_actions_scale_the_learning_rate_and_rewards_track_validation_accuracy():
    env = gym.make(
        ENV_ID,
        epochs=4,
        initial_learning_rate=0.05,
        lr_range=3.0,
        dataset_factory=tiny_data,
        model_factory=tiny_model,
    )
    observation, info = env.reset(seed=0)
    assert observation.shape == (11,) and info["epoch"] == 1
    assert info["learning_rate"] == pytest.approx(0.05)
    accuracy, total, rates = info["val_accuracy"], 0.0, []
    for action in (2, 2, 0):
        observation, reward, terminated, _, info = env.step(action)
        rates.append(info["learning_rate"])
        total += reward
    assert rates == pytest.approx([0.1, 0.15, 0.075])  # ×2, ×2 stopped at 0.05 × 3, ×0.5
    assert terminated
    # Rewards telescope: final − first accuracy, plus the final-accuracy term.
    assert total == pytest.approx(2 * info["val_accuracy"] - accuracy, abs=1e-6)


@pytest.mark.parametrize(
    "lr_range, actions, expected",
    [
        ((4.0, 1.5), (2, 2, 0, 0, 0), [0.15, 0.15, 0.075, 0.0375, 0.025]),
        (None, (2, 2, 2, 0), [0.2, 0.2, 0.2, 0.1]),  # the default (10, 2): up to twice the start
    ],
)
def test_a_lopsided_band_limits_rises_and_falls_separately(lr_range, actions, expected):
    band = {} if lr_range is None else {"lr_range": lr_range}
    env = gym.make(
        ENV_ID,
        epochs=len(actions) + 1,
        initial_learning_rate=0.1,
        dataset_factory=tiny_data,
        model_factory=tiny_model,
        **band,
    )
    env.reset(seed=0)
    rates = [env.step(action)[4]["learning_rate"] for action in actions]
    assert rates == pytest.approx(expected)


def test_v0_keeps_its_decade_band_and_v1_defaults_to_the_lopsided_one():
    v0 = gym.make("tfrl/TrainingControl-v0", dataset_factory=tiny_data, model_factory=tiny_model)
    v1 = gym.make(ENV_ID, dataset_factory=tiny_data, model_factory=tiny_model)
    assert v0.unwrapped.config.lr_range == (10.0, 10.0)
    assert v1.unwrapped.config.lr_range == (10.0, 2.0)


def test_resets_with_the_same_seed_reproduce_the_episode():
    env = gym.make(ENV_ID, epochs=2, dataset_factory=tiny_data, model_factory=tiny_model)
    first, _ = env.reset(seed=7)
    second, _ = env.reset(seed=7)
    np.testing.assert_allclose(first, second, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tasks": ("mlp:digtis",)}, UnknownNameError, "Did you mean 'digits'"),
        ({"tasks": ("mlp-digits",)}, ConfigError, "'<model>:<dataset>'"),
        ({"epochs": 1}, ConfigError, "epochs=1"),
        ({"initial_learning_rate": 2.0}, ConfigError, "initial_learning_rate"),
        ({"lr_range": 0.5}, ConfigError, "lr_range=0.5 must be a number ≥ 1"),
        (
            {"lr_range": (10, 0.5)},
            ConfigError,
            r"lr_range=\(10, 0.5\) must be a number ≥ 1 or a pair",
        ),
        ({"lr_range": (2, 2, 2)}, ConfigError, "or a pair \\(down, up\\)"),
        (
            {"model_factory": lambda s, n: "not a model", "dataset_factory": tiny_data},
            ConfigError,
            "must return a tf.keras.Model",
        ),
    ],
)
def test_bad_config_is_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        gym.make(ENV_ID, **kwargs)


def test_synthetic6_loads_offline_with_a_large_validation_split():
    from applications import training_control as app
    from environments.training_control.tasks import load_dataset, parse_task

    assert parse_task("mlp2:synthetic6") == ("mlp2", "synthetic6")
    x, y, x_val, y_val = load_dataset("synthetic6")
    assert x.shape == (4200, 40) and x_val.shape == (1800, 40)
    assert set(np.unique(y)) == set(np.unique(y_val)) == set(range(6))
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)  # standardized on train
    assert load_dataset("synthetic")[0].shape[1] == 20  # not the training task's data
    app.check_held_out(app.Args(eval_task="mlp2:synthetic6"))  # no default task trains on it
