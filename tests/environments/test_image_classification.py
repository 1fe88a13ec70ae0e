"""tfrl/ImageClassification-v0: the DQNimb MDP, its vector env, data loaders and errors."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow_datasets as tfds
from gymnasium.utils.env_checker import check_env

import environments  # noqa: F401  (registers the ids)
import tfrl
from environments import image_classification as ic
from environments.image_classification import data as data_lib
from tfrl.errors import ConfigError, UnknownNameError

ENV_ID = "tfrl/ImageClassification-v0"


def test_check_env_passes():
    check_env(gym.make(ENV_ID).unwrapped, skip_render_check=True)


def test_rewards_and_episode_end_follow_the_paper():
    env = gym.make(ENV_ID, imbalance_ratio=0.1).unwrapped
    lam = env.reward_lambda
    assert 0.09 < lam < 0.11  # ρ = minority / majority < 1
    rewards, ended_on = [], None
    env.reset(seed=3)
    for _ in range(len(env._episodes.data)):
        label = env._episodes.label()[0]
        wrong = 1 - label
        # Answer majority samples wrongly and minority ones wrongly too: the first minority ends it.
        _, reward, terminated, truncated, info = env.step(int(wrong))
        assert info["label"] == label and not truncated
        rewards.append(reward)
        if terminated:
            ended_on = label
            break
    assert ended_on == 1  # a misclassified minority sample ends the episode
    assert rewards[-1] == -1.0
    assert all(r == pytest.approx(-lam) for r in rewards[:-1])
    # Always right: +λ per majority sample, +1 per minority one, until the data runs out.
    env.reset(seed=3)
    total, steps, terminated = 0.0, 0, False
    while not terminated:
        _, reward, terminated, _, info = env.step(int(env._episodes.label()[0]))
        total += reward
        steps += 1
    data = env._episodes.data
    assert steps == len(data)
    assert total == pytest.approx(data.minority_count + lam * data.majority_count)


def test_make_uses_the_native_vector_env_and_auto_resets():
    env = tfrl.envs.make(ENV_ID, num_envs=4, seed=0)
    vector = env.pyenv.gym_env if hasattr(env.pyenv, "gym_env") else env.pyenv.envs[0].gym_env
    assert isinstance(vector, ic.ImageClassificationVectorEnv)
    raw = ic.ImageClassificationVectorEnv(num_envs=3)
    observation, _ = raw.reset(seed=0)
    assert observation.shape == (3, 8, 8, 1)
    labels = raw._episodes.label()
    wrong = 1 - labels
    _, _, terminated, _, info = raw.step(wrong)
    np.testing.assert_array_equal(info["label"], labels)
    np.testing.assert_array_equal(terminated, labels == 1)
    # NEXT_STEP auto-reset: the ended copies restart (reward 0) at position 0 of a new order.
    _, reward2, terminated2, _, _ = raw.step(np.zeros(3, np.int64))
    assert np.all(reward2[terminated] == 0.0) and not np.any(terminated2[terminated])
    assert np.all(raw._episodes.position[terminated] == 0)
    # Seeded copies are reproducible and differ from each other.
    again = ic.ImageClassificationVectorEnv(num_envs=3)
    np.testing.assert_array_equal(again.reset(seed=0)[0], observation)
    assert not np.array_equal(raw._episodes.order[0], raw._episodes.order[1])


def test_imbalance_ratio_and_classes_are_configurable():
    data = ic.load(ic.ImageClassificationConfig(imbalance_ratio=0.05))
    assert data.minority_count / data.majority_count == pytest.approx(0.05, abs=0.002)
    multi = ic.load(
        ic.ImageClassificationConfig(
            classes=(0, 1, 2), minority_classes=(2,), binary=False, imbalance_ratio=0.2
        )
    )
    counts = np.bincount(multi.labels)
    assert len(counts) == 3 and multi.class_names == ["0", "1", "2"]
    assert counts[2] == int(0.2 * counts[:2].min())
    env = gym.make(ENV_ID, classes=(0, 1, 2), binary=False)
    assert env.action_space.n == 3


def test_validation_split_is_held_out_of_training_per_class():
    def split(name, **kwargs):
        config = ic.ImageClassificationConfig(split=name, validation_fraction=0.2, **kwargs)
        return ic.load(config)

    whole = ic.load(ic.ImageClassificationConfig())
    train, validation = split("train"), split("validation")
    assert len(train) + len(validation) == len(whole)
    assert validation.minority_count == round(0.2 * whole.minority_count)
    assert validation.majority_count == round(0.2 * whole.majority_count)
    flat = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in flat for image in validation.images)
    # data_seed picks other validation samples; split_seed other test images.
    other = split("validation", data_seed=1)
    assert not np.array_equal(other.images, validation.images)
    tests = [
        ic.load(ic.ImageClassificationConfig(split="test", imbalance_ratio=1.0, split_seed=s))
        for s in (0, 1)
    ]
    assert len(tests[0]) == len(tests[1]) and not np.array_equal(tests[0].images, tests[1].images)
    for seed, test in enumerate(tests):  # every split_seed keeps test images out of training
        config = ic.ImageClassificationConfig(imbalance_ratio=1.0, split_seed=seed)
        seen = {image.tobytes() for image in ic.load(config).images}
        assert not any(image.tobytes() in seen for image in test.images), seed


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dataset": "mnsit"}, UnknownNameError, "Unknown dataset 'mnsit'. Did you mean 'mnist'"),
        ({"imbalance_ratio": 10}, ConfigError, r"must be in \(0, 1\].*pass 0.1"),
        ({"imbalance_ratio": 0.0}, ConfigError, "minority / majority"),
        ({"minority_classes": (11,)}, ConfigError, "not classes of 'digits'"),
        ({"validation_fraction": 1.0}, ConfigError, r"must be in \[0, 1\)"),
        ({"split": "validation"}, ConfigError, "needs validation_fraction > 0"),
    ],
)
def test_bad_config_is_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        gym.make(ENV_ID, **kwargs)


@pytest.mark.parametrize(
    ("name", "shape"),
    [("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))],
)
def test_tfds_loaders_with_mock_data(name, shape):
    data_lib.load_raw.cache_clear()
    try:
        with tfds.testing.mock_data(num_examples=60):
            env = gym.make(ENV_ID, dataset=name, imbalance_ratio=0.5)
            observation, _ = env.reset(seed=0)
    finally:
        data_lib.load_raw.cache_clear()
    assert observation.shape == shape and observation.dtype == np.float32
    assert observation.min() >= 0.0 and observation.max() <= 1.0


def test_missing_tfds_data_names_the_fix(tmp_path):
    with pytest.raises(ic.DatasetNotFoundError, match=r"not prepared.*dataset='digits'"):
        data_lib.load_raw("fashion_mnist", "train", str(tmp_path))


@pytest.mark.slow
def test_dqn_classifier_beats_chance_and_the_majority_class():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    env = tfrl.envs.make(ENV_ID, num_envs=16, seed=0)
    agent = tfrl.agents.make(
        "ddqn",
        env,
        q_network=tf.keras.Sequential(
            [tf.keras.layers.Flatten(), tf.keras.layers.Dense(64, "relu"), tf.keras.layers.Dense(2)]
        ),
        learning_rate=1e-3,
        gamma=0.1,
        exploration_steps=1000,
        learning_starts=500,
        train_steps=32,
    )
    tfrl.Trainer(agent, env, seed=0).fit(3000, eval_every=None, verbose=0)
    test = ic.load(ic.ImageClassificationConfig(split="test", imbalance_ratio=1.0))
    labels = agent._q_network(test.images)[0].numpy().argmax(axis=1)
    report = ic.classification_report(test.labels, labels, 2, (1,))
    # The majority-class answer has G-mean 0 and minority recall 0; chance has G-mean ≈ 0.5.
    assert report["g_mean"] > 0.8, report
    assert report["minority_recall"] > 0.8, report


def test_fit_supervised_reports_the_epoch_it_kept_after_predict():
    whole = ic.load(ic.ImageClassificationConfig(imbalance_ratio=0.5))
    train = ic.LabelledImages(whole.images[:300], whole.labels[:300], (1,), whole.class_names)
    # Validation labels flipped: the better the model fits, the worse its validation
    # loss, so early stopping fires and the first epoch's weights are the ones kept.
    flipped = ic.LabelledImages(train.images, 1 - train.labels, (1,), train.class_names)
    model = ic.fit_supervised(train, validation=flipped, epochs=30, patience=2)
    model.predict(train.images[:8], verbose=0)  # replaces model.history with an empty one
    assert model.epochs_run < 30
    assert model.kept_epoch == model.epochs_run - 2
    assert model.kept_epoch == 1
    # At the cap, the last epoch's weights are kept (Keras restores only on a stop).
    capped = ic.fit_supervised(train, validation=train, epochs=2, patience=5)
    assert (capped.epochs_run, capped.kept_epoch) == (2, 2)


def test_balanced_ddqn_weighs_td_errors_by_lambda_over_reward_size():
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    env = tfrl.envs.make(ENV_ID, num_envs=2, seed=0)
    network = tf.keras.Sequential([tf.keras.layers.Flatten(), tf.keras.layers.Dense(2)])
    agent = ic.BalancedDDQN(
        env.time_step_spec(), env.action_spec(), q_network=network, reward_lambda=0.1
    )
    sample = tensor_spec.sample_spec_nest(agent.collect_data_spec, outer_dims=(3, 2), seed=0)
    mid = tf.ones((3, 2), tf.int32)  # no episode boundary inside the samples
    # A majority sample (|r| = λ), a minority one (|r| = 1) and an auto-reset step (r = 0).
    reward = tf.constant([[0.1, 0.1], [-1.0, 1.0], [0.0, 0.1]])
    experience = sample._replace(
        step_type=mid, next_step_type=mid, reward=reward, discount=tf.ones((3, 2))
    )
    plain = tfrl.agents.DDQN._loss
    weighted = agent._loss(experience).loss.numpy()
    expected = plain(agent, experience, weights=tf.constant([1.0, 0.1, 1.0])).loss.numpy()
    assert weighted == pytest.approx(expected)
    assert weighted != pytest.approx(plain(agent, experience).loss.numpy())
    with pytest.raises(ConfigError, match=r"reward_lambda=1\.5"):
        ic.BalancedDDQN(env.time_step_spec(), env.action_spec(), reward_lambda=1.5)
