"""tfrl.keras.RLController: it sets the learning rate inside model.fit; learning mode; errors."""

import numpy as np
import pytest
import tensorflow as tf

import tfrl
from tfrl.errors import ConfigError


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 6)).astype(np.float32)
    return x, (x[:, 0] - x[:, 1] > 0).astype(np.int64)


def compiled(optimizer=None):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Dense(8, "relu"), tf.keras.layers.Dense(2)])
    model.compile(
        optimizer or tf.keras.optimizers.SGD(0.1),
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


class LearningRateSpy(tf.keras.callbacks.Callback):
    """The rate each epoch really trains with, read back from the optimizer."""

    def on_train_begin(self, logs=None):
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate.numpy()))


def test_controller_sets_the_optimizers_learning_rate_during_fit():
    x, y = data()
    choices = iter([2, 2, 0])  # ×2, ×2 (stopped at 0.1 × 1.5), ×0.5
    seen = []

    def controller(observation):
        seen.append(observation)
        return next(choices)

    rl, spy = tfrl.keras.RLController(controller, lr_range=1.5), LearningRateSpy()
    compiled().fit(x, y, validation_split=0.25, epochs=4, callbacks=[rl, spy], verbose=0)
    assert spy.rates == pytest.approx([0.1, 0.15, 0.15, 0.075])
    assert rl.learning_rates == [0.1, 0.15, 0.15, 0.075]  # as set, without float32 noise
    assert len(seen) == 3 and seen[0].shape == (tfrl.keras.OBSERVATION_SIZE,)
    assert seen[1][10] == pytest.approx(2 / 4)  # progress feature


def test_an_export_records_its_band_and_the_reloaded_controller_keeps_it(tmp_path):
    x, y = data()
    learner = tfrl.keras.RLController(learning=True, seed=0, train_steps=1, lr_range=(3, 1.5))
    compiled().fit(x, y, validation_split=0.25, epochs=2, callbacks=[learner], verbose=0)
    path = learner.export(str(tmp_path / "lr_controller"))
    assert tfrl.keras.RLController(path).lr_range == (3.0, 1.5)
    assert tfrl.keras.RLController(str(tmp_path / "lr_controller")).lr_range == (3.0, 1.5)
    assert tfrl.keras.RLController(path, lr_range=4).lr_range == (4.0, 4.0)  # yours wins
    plain = tfrl.export(learner.agent, str(tmp_path / "plain"))  # records no band
    assert tfrl.keras.RLController(plain).lr_range == tfrl.keras.LR_RANGE


def test_learned_controller_exports_and_reloads_with_the_same_decisions(tmp_path):
    x, y = data()
    learner = tfrl.keras.RLController(learning=True, seed=0, train_steps=5)
    initial = [w.numpy().copy() for w in learner.agent.policy.variables()]
    for _ in range(2):
        compiled().fit(x, y, validation_split=0.25, epochs=3, callbacks=[learner], verbose=0)
    assert len(learner._transitions) == 4  # 2 decisions per 3-epoch fit
    assert learner._transitions[-1][4]  # the last one ends the episode
    # It learned: 5 DQN steps after each fit with transitions, and the Q-network moved.
    assert int(learner.agent.train_step_counter.numpy()) == 10
    trained = [w.numpy() for w in learner.agent.policy.variables()]
    assert any(not np.allclose(a, b) for a, b in zip(initial, trained))
    path = learner.export(str(tmp_path / "lr_controller"))
    reloaded = tfrl.keras.RLController(path)
    spy = LearningRateSpy()
    compiled().fit(x, y, validation_split=0.25, epochs=3, callbacks=[reloaded, spy], verbose=0)
    greedy = tfrl.keras.RLController(learner.agent.policy)
    for observation, action in zip(reloaded.observations, reloaded.actions):
        assert greedy._act(observation) == action
    assert spy.rates == pytest.approx(reloaded.learning_rates)


def test_learning_seed_fixes_the_controller_and_leaves_the_global_seed_alone():
    def draw_after(global_seed: int, controller_seed: int):
        tf.random.set_seed(global_seed)
        controller = tfrl.keras.RLController(learning=True, seed=controller_seed)
        return tf.random.uniform([4]).numpy(), [
            w.numpy() for w in controller.agent.policy.variables()
        ]

    draw, weights = draw_after(1, controller_seed=7)
    same_draw, same_weights = draw_after(1, controller_seed=8)
    other_draw, other_weights = draw_after(2, controller_seed=7)
    # The user's global seed, not the controller's, decides what they draw next.
    np.testing.assert_array_equal(draw, same_draw)
    assert not np.allclose(draw, other_draw)
    # The controller's seed, not the global one, decides its initial weights.
    for a, b in zip(weights, other_weights):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(weights[0], same_weights[0])


def test_a_schedule_instead_of_a_variable_is_refused():
    x, y = data()
    schedule = tf.keras.optimizers.schedules.CosineDecay(0.1, 100)
    model = compiled(tf.keras.optimizers.SGD(schedule))
    with pytest.raises(ConfigError, match=r"learning_rate is a schedule \(CosineDecay\)"):
        model.fit(
            x,
            y,
            validation_split=0.25,
            epochs=2,
            verbose=0,
            callbacks=[tfrl.keras.RLController(lambda o: 1)],
        )


def test_a_model_without_a_learning_rate_to_control_is_refused():
    rl = tfrl.keras.RLController(lambda o: 1)
    model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    rl.set_model(model)
    with pytest.raises(ConfigError, match="needs a compiled model"):
        rl.on_train_begin()
    model.optimizer = object()  # e.g. a custom optimizer with no learning rate
    with pytest.raises(ConfigError, match="has no `learning_rate`"):
        rl.on_train_begin()


def test_fit_without_validation_data_is_refused():
    x, y = data()
    with pytest.raises(ConfigError, match="pass validation_data= or validation_split="):
        compiled().fit(x, y, epochs=2, verbose=0, callbacks=[tfrl.keras.RLController(lambda o: 1)])


def test_bad_controllers_are_refused():
    with pytest.raises(ConfigError, match="needs a controller"):
        tfrl.keras.RLController()
    with pytest.raises(ConfigError, match="cannot use a int"):
        tfrl.keras.RLController(3)
    with pytest.raises(ConfigError, match="lr_range=0 must be a number ≥ 1"):
        tfrl.keras.RLController(lambda o: 1, lr_range=0)
