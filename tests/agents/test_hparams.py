"""The tuned hyper-parameter tables: read by runs, overridden by users, shown by `tfrl hparams`."""

import gymnasium as gym
import pytest

from tfrl import agents
from tfrl.agents import hparams
from tfrl.cli.main import main
from tfrl.errors import UnknownNameError
from tfrl.training.run import RunConfig, build_trainer

ISSUE_PAIRS = [
    *[(a, e) for a in ("dqn", "ddqn") for e in ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")],
    *[(a, "LunarLander-v3") for a in ("dqn", "ddqn")],
    *[(a, e) for a in ("ppo", "reinforce") for e in ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")],
]


@pytest.mark.parametrize("agent, env_id", ISSUE_PAIRS)
def test_every_promised_pair_has_a_valid_row(agent, env_id):
    row = hparams.tuned(agent, env_id)
    assert row is not None, f"no tuned row for {agent} on {env_id}"
    assert env_id in gym.registry
    assert row.source and row.budget
    # Every field exists and every value passes the config's own checks.
    config = agents.agent_class(agent).config_class(**row.hparams)
    for name, value in row.hparams.items():
        got = getattr(config, name)
        assert (list(got) if isinstance(got, tuple) else got) == value


@pytest.mark.parametrize("agent, env_id", ISSUE_PAIRS)
def test_every_promised_pair_builds_its_agent_and_acts_on_its_env(agent, env_id):
    # What `tfrl train ENV --agent X` builds: the tuned row's agent on that env.
    trainer = build_trainer(RunConfig(env_id=env_id, agent=agent, num_envs=2))
    for name, value in hparams.tuned(agent, env_id).hparams.items():
        got = getattr(trainer.agent.config, name)
        assert (list(got) if isinstance(got, tuple) else got) == value
    action = trainer.agent.collect_policy.action(trainer.env.reset()).action
    assert action.shape[0] == 2
    assert trainer.env.action_spec().is_compatible_with(action[0])


def test_a_run_gets_the_tuned_row_and_user_values_win():
    row = hparams.tuned("dqn", "Acrobot-v1")
    assert row.hparams["target_update_period"] != agents.DQNConfig().target_update_period
    run = RunConfig(env_id="Acrobot-v1", agent="dqn", num_envs=2, hparams={"learning_rate": 0.0123})
    config = build_trainer(run).agent.config
    assert config.target_update_period == row.hparams["target_update_period"]
    assert config.batch_size == row.hparams["batch_size"]
    assert config.learning_rate == 0.0123  # the table says 6.3e-4; the user's value wins


def test_a_pair_without_a_row_uses_the_agent_defaults_and_says_so():
    resolved = hparams.resolve("softmax", "CartPole-v1", {"learning_rate": 0.5})
    assert resolved.row is None
    assert resolved.hparams == {"learning_rate": 0.5}
    assert set(resolved.origins.values()) == {"default", "user"}
    assert "No tuned hyper-parameters for softmax on CartPole-v1" in resolved.describe()


def test_tfrl_hparams_prints_the_row_with_origins(capsys):
    assert main(["hparams", "MountainCar-v0", "--agent", "dqn", "--hparam", "gamma=0.9"]) == 0
    out = capsys.readouterr().out
    assert "Tuned row for dqn on MountainCar-v0: tfrl/agents/tuned/dqn.yaml" in out
    assert "Source: RL Zoo dqn.yml MountainCar-v0" in out
    table = out.split("origin\n", 1)[1]
    lines = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    assert lines["learning_rate"][1:] == ["0.004", "tuned"]
    assert lines["gamma"][1:] == ["0.9", "user"]
    assert lines["loss"][1:] == ["huber", "default"]


@pytest.mark.parametrize(
    "argv, suggestion",
    [
        (["hparams", "Acrobt-v1", "--agent", "dqn"], "Did you mean 'Acrobot-v1'?"),
        (["hparams", "Acrobot-v1", "--agent", "dqm"], "Did you mean 'dqn'?"),
        (["hparams", "Acrobot-v1", "--hparam", "gama=0.9"], "Did you mean 'gamma'?"),
    ],
)
def test_bad_names_get_did_you_mean(capsys, argv, suggestion):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert suggestion in err and "Traceback" not in err


def test_resolve_refuses_unknown_names_before_building_anything():
    with pytest.raises(UnknownNameError, match="Did you mean 'ppo'"):
        hparams.resolve("ppp", "CartPole-v1")


def test_a_preset_gets_its_own_row_and_other_presets_the_ids():
    env_id = "tfrl/Recommendation-v0"
    recsim = hparams.resolve("slateq", env_id, {"train_steps": 3}, preset="recsim")
    assert recsim.row.env_id == f"{env_id} preset=recsim"
    assert recsim.hparams["target"] == "monte_carlo" and recsim.hparams["train_steps"] == 3
    assert recsim.origins["batch_size"] == "tuned" and recsim.origins["train_steps"] == "user"
    assert hparams.resolve("slateq", env_id, preset="default").row is None
    assert hparams.resolve("slateq", env_id).row is None
    # A run whose env is the recsim preset trains with the recsim row.
    run = RunConfig(
        agent="slateq",
        env_id=env_id,
        num_envs=2,
        seed=0,
        env_kwargs={"preset": "recsim"},
        hparams={"batch_size": 8},
    )
    agent = build_trainer(run).agent
    assert agent.config.target == "monte_carlo" and agent.config.relative_values
