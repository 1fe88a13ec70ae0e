"""What every role of a distributed run shares: supported agents, table names, the agent.

The replay server, the actors and the learner each build the same agent from the
run's `RunConfig` (tuned hyper-parameters, then the run's own), so their specs and
policy variables match without sending anything but tensors through Reverb.
"""

from __future__ import annotations

import time
from typing import Any

from tfrl.errors import ConfigError, IncompatibleAgentError, TfrlError

__all__ = [
    "CONNECT_TIMEOUT",
    "REPLAY_TABLE",
    "SUPPORTED_AGENTS",
    "VARIABLE_TABLE",
    "ReplayConnectionError",
    "build_agent",
    "check_agent",
    "connect",
    "parse_address",
    "policy_variables",
    "read_run",
    "wait_for_variables",
]

SUPPORTED_AGENTS = ("dqn", "ddqn")
REPLAY_TABLE = "replay"
VARIABLE_TABLE = "variables"  # tf_agents' ReverbVariableContainer default
CONNECT_TIMEOUT = 60.0  # seconds a role waits for the replay server before giving up


class ReplayConnectionError(TfrlError, ConnectionError):
    """The replay server did not answer within the connect timeout."""


def connect(replay: str, role: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A `reverb.Client` of `replay` once its server answers, else ReplayConnectionError.

    Asks the server in one-second calls, so SIGTERM/SIGINT (KeyboardInterrupt)
    stop the wait; prints "ROLE: connecting to ..." and "ROLE: connected ...".
    """
    import reverb

    print(f"{role}: connecting to the replay server at {replay} ...", flush=True)
    client = reverb.Client(replay)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.server_info(timeout=1)
            break
        except reverb.errors.ReverbError:
            if time.monotonic() >= deadline:
                raise ReplayConnectionError(
                    f"{role}: no replay server answered at {replay} within {timeout:g} s. "
                    f"Start `tfrl replay-server --port {replay.rpartition(':')[2]}` on that "
                    "host first, check --replay HOST:PORT and the firewall, or wait longer "
                    "with --connect-timeout SECONDS."
                ) from None
            time.sleep(0.2)
    print(f"{role}: connected to {replay}", flush=True)
    return client


def wait_for_variables(client: Any, role: str) -> None:
    """Waits, interruptibly, until the learner has published its policy variables once."""
    said = False
    while client.server_info(timeout=10)[VARIABLE_TABLE].current_size < 1:
        if not said:
            print(f"{role}: waiting for the learner to publish its policy ...", flush=True)
            said = True
        time.sleep(0.5)


def check_agent(agent: str) -> None:
    """Refuses agents that cannot train from a replay table, before anything starts."""
    if agent not in SUPPORTED_AGENTS:
        from tfrl.agents import agent_class

        kind = "on-policy" if agent_class(agent).config_class.on_policy else "not supported"
        raise IncompatibleAgentError(
            f"--agent {agent!r} cannot train distributed ({kind}: it learns from the segment "
            f"it just collected, not from a replay table). Distributed training supports "
            f"{', '.join(SUPPORTED_AGENTS)}; train {agent!r} without --distributed."
        )


def parse_address(address: str) -> str:
    """Checks a `host:port` replay address and returns it."""
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--replay {address!r} must be HOST:PORT of a `tfrl replay-server`, "
            "e.g. 127.0.0.1:8520."
        )
    return address


def read_run(output_dir: str):
    """The RunConfig of a distributed run directory (its run.json), checked."""
    from tfrl.training.run import read_run_config

    run = read_run_config(output_dir)
    check_agent(run.agent)
    return run


def build_agent(run: Any, seed_offset: int = 0):
    """(batched TF env of one copy, agent) for a RunConfig, seeded before anything is built."""
    from tfrl import agents, envs
    from tfrl.training.seeding import set_seed

    seed = None if run.seed is None else run.seed + seed_offset
    if seed is not None:
        set_seed(seed)
    hparams = agents.hparams.resolve(run.agent, run.env_id, run.hparams).hparams
    env = envs.make(run.env_id, num_envs=1, seed=seed, **run.env_kwargs)
    return env, agents.make(run.agent, env, **hparams)


def policy_variables(agent: Any) -> dict[str, Any]:
    """What the learner publishes and actors pull: the collect policy, the counters, `done`.

    `done` (a new int32 variable, 0) is set to 1 in the learner's last push: actors
    that read it stop, so hand-started actors end with the run on any machine.
    """
    import tensorflow as tf

    return {
        "policy": agent.collect_policy.variables(),
        "train_step": agent.train_step_counter,
        "env_steps": agent.env_step_counter,
        "done": tf.Variable(0, dtype=tf.int32, trainable=False, name="done"),
    }
