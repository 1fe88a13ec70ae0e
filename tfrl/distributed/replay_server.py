"""The Reverb server of a distributed run: a replay table and the policy-variable table.

Actors insert `n_step + 1`-step sequences into the replay table; the learner
samples batches from it and writes its policy variables into the one-item
variable table, which actors read. A rate limiter keeps the learner's samples
per inserted item at what the agent's hyper-parameters ask of a single-process
run (`train_steps * batch_size / collect_env_steps`), so neither side runs away
from the other. The server checkpoints its tables (`<run dir>/reverb/`) when
the learner checkpoints, and a restarted server loads the newest one.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any

from tfrl.distributed.process import interrupt_on_sigterm
from tfrl.distributed.spec import REPLAY_TABLE, VARIABLE_TABLE, build_agent, policy_variables
from tfrl.distributed.status import write_status

__all__ = ["KEEP_CHECKPOINTS", "check_port", "make_tables", "serve"]

KEEP_CHECKPOINTS = 2


def make_tables(agent: Any) -> list:
    """The replay table (uniform sampling, FIFO, rate-limited) and the variable table."""
    import reverb
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    c = agent.config
    samples_per_insert = c.train_steps * c.batch_size / c.collect_env_steps
    min_size = max(c.learning_starts, c.batch_size)
    replay = reverb.Table(
        REPLAY_TABLE,
        sampler=reverb.selectors.Uniform(),
        remover=reverb.selectors.Fifo(),
        max_size=c.replay_capacity,
        rate_limiter=reverb.rate_limiters.SampleToInsertRatio(
            samples_per_insert=samples_per_insert,
            min_size_to_sample=min_size,
            # Either side may run ahead of the ratio by two collect iterations' worth.
            error_buffer=max(2 * c.collect_env_steps * samples_per_insert, 2 * c.batch_size),
        ),
        signature=tensor_spec.add_outer_dim(tensor_spec.from_spec(agent.collect_data_spec)),
    )
    variables = reverb.Table(
        VARIABLE_TABLE,
        sampler=reverb.selectors.Uniform(),
        remover=reverb.selectors.Fifo(),
        max_size=1,
        max_times_sampled=0,
        rate_limiter=reverb.rate_limiters.MinSize(1),
        signature=tf.nest.map_structure(
            lambda v: tf.TensorSpec(v.shape, v.dtype), policy_variables(agent)
        ),
    )
    return [replay, variables]


def _prune(directory: str) -> None:
    """Keeps the newest KEEP_CHECKPOINTS Reverb checkpoints (their names sort by time)."""
    if not os.path.isdir(directory):
        return
    names = sorted(n for n in os.listdir(directory) if not n.startswith("."))
    for name in names[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def check_port(port: int) -> None:
    """Fails in one line if `port` cannot be opened on every interface (as Reverb opens it)."""
    from tfrl.ports import EVERY_INTERFACE, listen

    listen("replay server", EVERY_INTERFACE, port).close()


def serve(run: Any, output_dir: str, port: int, poll_seconds: float = 2.0) -> None:
    """Serves the run's tables on `port` until SIGTERM/SIGINT; loads the newest checkpoint.

    Args:
        run: the run's `RunConfig`.
        output_dir: the run directory (`reverb/` checkpoints, `status/replay-server.json`).
        port: the TCP port (Reverb listens on every interface of this machine).
        poll_seconds: how often the status file is refreshed.
    """
    check_port(port)  # before TensorFlow and Reverb start: one line, not a gRPC traceback
    import reverb

    _, agent = build_agent(run)
    checkpoints = os.path.join(os.path.abspath(output_dir), "reverb")
    os.makedirs(checkpoints, exist_ok=True)
    restoring = any(not n.startswith(".") for n in os.listdir(checkpoints))
    server = reverb.Server(
        make_tables(agent),
        port=port,
        checkpointer=reverb.checkpointers.DefaultCheckpointer(checkpoints),
    )
    print(
        f"Warning: Reverb listens on port {server.port} of every network interface of this "
        "machine, not only 127.0.0.1; let only the learner and actor hosts reach it (firewall).",
        file=sys.stderr,
        flush=True,
    )
    client = reverb.Client(f"localhost:{server.port}")
    size = int(client.server_info()[REPLAY_TABLE].current_size)
    if restoring:
        print(f"Restored {size:,} replay items from {checkpoints}", flush=True)
    print(f"Replay server ready on port {server.port}", flush=True)
    interrupt_on_sigterm()
    try:
        while True:
            info = client.server_info()[REPLAY_TABLE]
            write_status(
                output_dir,
                "replay-server",
                port=server.port,
                replay_size=int(info.current_size),
                inserted=int(info.rate_limiter_info.insert_stats.completed),
                sampled=int(info.rate_limiter_info.sample_stats.completed),
            )
            _prune(checkpoints)
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
