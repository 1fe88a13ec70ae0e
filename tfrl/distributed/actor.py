"""An actor: steps one env with the learner's latest collect policy, writes to Reverb.

Built on TF-Agents' `train.Actor` (a `PyDriver` over one Python env),
`ReverbAddTrajectoryObserver` (writes every `n_step + 1`-step window of an
episode into the replay table) and `ReverbVariableContainer` (reads the
policy variables and counters the learner published). Each actor seeds its
env and exploration apart from the others (`seed + 1000 * (actor_id + 1) + restarts`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from tfrl.distributed.process import interrupt_on_sigterm
from tfrl.distributed.spec import (
    CONNECT_TIMEOUT,
    REPLAY_TABLE,
    VARIABLE_TABLE,
    build_agent,
    connect,
    policy_variables,
    wait_for_variables,
)
from tfrl.distributed.status import write_status

__all__ = ["replay_observer", "run_actor"]

# Seeds of actor k are offset by this times (k + 1) from the run's seed.
SEED_STRIDE = 1000


def replay_observer(client: Any, sequence_length: int) -> Any:
    """Writes every `sequence_length`-step window of each episode into the replay table.

    An episode's end is padded with zero LAST-typed steps (`pad_end_of_episodes`,
    `tile_end_of_episodes`), so the windows that start in an episode's last
    `sequence_length - 2` steps (the terminal transition among them) are written
    too, as in a single-process replay buffer, where they run into the next episode.

    Args:
        client: a `reverb.Client` of the replay server.
        sequence_length: steps per window (`agent.train_sequence_length`, `n_step + 1`).
    """
    from tf_agents.replay_buffers.reverb_utils import ReverbAddTrajectoryObserver

    return ReverbAddTrajectoryObserver(
        client,
        REPLAY_TABLE,
        sequence_length=sequence_length,
        stride_length=1,
        pad_end_of_episodes=True,
        tile_end_of_episodes=True,
    )


def run_actor(
    run: Any,
    output_dir: str,
    replay: str,
    actor_id: int = 0,
    steps_per_pull: int = 200,
    max_env_steps: int | None = None,
    restart: int = 0,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> int:
    """Collects until the learner is done or `max_env_steps`; returns its env steps.

    SIGTERM/SIGINT stop it with KeyboardInterrupt (after closing its writers).

    Args:
        run: the run's `RunConfig`.
        output_dir: the run directory (`tensorboard/actor-K/`, `status/actor-K.json`).
        replay: the replay server's `host:port`.
        actor_id: K, which names this actor's files and offsets its seeds.
        steps_per_pull: env steps between two reads of the learner's variables.
        max_env_steps: stop after this many env steps. Default: run until stopped.
        restart: how many times this actor was restarted; mixed into its seeds, so a
            restarted actor does not replay the episodes and exploration it started with.
        connect_timeout: seconds to wait for the replay server before ReplayConnectionError.
    """
    interrupt_on_sigterm()
    import tensorflow as tf
    from tf_agents.experimental.distributed.reverb_variable_container import (
        ReverbVariableContainer,
    )
    from tf_agents.metrics import py_metrics
    from tf_agents.policies.py_tf_eager_policy import PyTFEagerPolicy
    from tf_agents.train.actor import Actor

    from tfrl.envs import make_py

    offset = SEED_STRIDE * (actor_id + 1) + restart
    _, agent = build_agent(run, seed_offset=offset)
    seed = None if run.seed is None else run.seed + offset
    env = make_py(run.env_id, num_envs=1, seed=seed, **run.env_kwargs)
    variables = policy_variables(agent)
    role = f"actor-{actor_id}"
    client = connect(replay, role, connect_timeout)
    wait_for_variables(client, role)
    container = ReverbVariableContainer(replay, table_names=[VARIABLE_TABLE])
    container.update(variables)
    observer = replay_observer(client, agent.train_sequence_length)
    returns = py_metrics.AverageReturnMetric(buffer_size=20)
    steps = py_metrics.EnvironmentSteps()
    actor = Actor(
        env,
        PyTFEagerPolicy(agent.collect_policy, use_tf_function=True),
        agent.train_step_counter,
        steps_per_run=steps_per_pull,
        observers=[observer],
        metrics=[returns, steps],
    )
    writer = tf.summary.create_file_writer(os.path.join(output_dir, "tensorboard", role))
    finished = _watch_done(replay, variables, role)
    try:
        while max_env_steps is None or int(steps.result()) < max_env_steps:
            if finished.is_set():
                break
            start = time.perf_counter()
            actor.run()
            if not _flush(observer, finished, role):
                break
            rate = steps_per_pull / (time.perf_counter() - start)
            container.update(variables)
            if int(variables["done"].numpy()):
                finished.set()
                break
            done = int(steps.result())
            train_return = float(returns.result())
            with writer.as_default():
                tf.summary.scalar("env_steps_per_sec", rate, step=done)
                tf.summary.scalar("train_return", train_return, step=done)
            write_status(
                output_dir,
                role,
                env_steps=done,
                env_steps_per_sec=rate,
                train_return=train_return,
                learner_train_step=int(agent.train_step_counter.numpy()),
            )
    finally:  # a stop (KeyboardInterrupt) propagates: exit 130, which the launcher restarts
        if finished.is_set():
            print(f"{role}: the learner is done; stopping.", flush=True)
        else:
            observer.close()  # a finished run's pending items need no flush (none will be read)
        writer.close()
    return int(steps.result())


def _flush(observer: Any, finished: Any, role: str) -> bool:
    """Waits until the server took this actor's items; False if the learner finished meanwhile.

    Flushing after every pull keeps the writer's pending items few (Reverb warns,
    over and over, when they pile up behind the rate limiter) and waits in
    one-second calls, so SIGTERM/SIGINT stop a wait for the learner.
    """
    import reverb

    said = False
    while not finished.is_set():
        try:
            observer._get_writer().flush(timeout_ms=1000)  # TF-Agents' flush() cannot time out
            return True
        except reverb.errors.DeadlineExceededError:
            if not said:
                print(f"{role}: waiting for the learner (rate limiter) ...", flush=True)
                said = True
    return False


def _watch_done(replay: str, variables: Any, role: str, every: float = 2.0, grace: float = 15.0):
    """A daemon thread that sets the returned Event once the learner published `done`.

    The actor's loop stops at its next check; an actor blocked in a Reverb write (the
    rate limiter holds inserts once the learner stops sampling) is ended by the
    thread after `grace` seconds with exit code 0.
    """
    import threading

    import reverb
    import tensorflow as tf

    flat = tf.nest.flatten(variables)
    index = next(i for i, v in enumerate(flat) if v is variables["done"])
    finished = threading.Event()

    def watch() -> None:
        client = reverb.Client(replay)
        while not finished.wait(every):
            try:
                sample = next(client.sample(VARIABLE_TABLE, num_samples=1))
            except Exception:  # the server went away: the actor's own calls will say so
                continue
            if int(sample[0].data[index]):
                finished.set()
        time.sleep(grace)  # the main thread normally exits (ending this thread) by then
        print(f"{role}: the learner is done; stopping.", flush=True)
        os._exit(0)

    threading.Thread(target=watch, name=f"{role}-done-watch", daemon=True).start()
    return finished
