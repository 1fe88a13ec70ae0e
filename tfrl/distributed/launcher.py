"""`tfrl.distributed.launch`: a replay server, N actors and a learner on this machine, supervised.

    result = tfrl.train("CartPole-v1", agent="dqn", distributed=True, actors=2,
                        output_dir="runs/dist", target_return=475)
    result.history.eval_returns[-1]

The launcher locks the run directory, writes `run.json`, starts the roles
(`tfrl replay-server`, `tfrl learner`, `tfrl actor --id K`; the same commands
run one role each on other machines), prints one progress line, restarts
actors that die (up to `max_restarts` each) and stops every role when the
learner ends, when any other role fails, on Ctrl-C or on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from typing import Any

from tfrl.atomic import atomic_write_text
from tfrl.distributed.lock import RunLock
from tfrl.distributed.process import interrupt_on_sigterm
from tfrl.distributed.progress import ProgressLine
from tfrl.distributed.spec import check_agent
from tfrl.distributed.status import read_status, write_status
from tfrl.distributed.supervisor import Role, Supervisor, describe_exit
from tfrl.errors import TfrlError, check_whole_number

__all__ = ["DistributedResult", "RoleFailedError", "launch"]

HOST = "127.0.0.1"


class RoleFailedError(TfrlError, RuntimeError):
    """A role of a distributed run stopped (crashed, or an actor ran out of restarts)."""


@dataclasses.dataclass
class DistributedResult:
    """What a distributed run ended with.

    Attributes:
        output_dir: the run directory.
        history: the learner's `History` (evaluations against env steps).
        env_steps: env steps the actors inserted into the replay table.
        train_steps: the learner's gradient steps.
        stopped_by: "total_env_steps" or "target_return".
        export_path: the export written at the end, or None.
        restarts: actor name → how many times it was restarted.
        pids: every process the launcher started.
    """

    output_dir: str
    history: Any
    env_steps: int
    train_steps: int
    stopped_by: str
    export_path: str | None
    restarts: dict[str, int]
    pids: list[int]


# Reverb 0.14's server listens on every interface whatever --host says, so ports are
# probed there: a port another program holds on any address of this machine is refused.
def _free_port(port: int = 0) -> int:
    """`port` (0: a free one) if Reverb can listen on it, else ServerStartError."""
    from tfrl.ports import EVERY_INTERFACE, listen

    sock = listen("Reverb", EVERY_INTERFACE, port)
    port = sock.getsockname()[1]
    sock.close()
    return port


def _wait_for_port(host: str, port: int, supervisor: Supervisor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for role, code in supervisor.poll():
            raise RoleFailedError(
                f"The {role.name} {describe_exit(code)} before it served port {port} (see "
                f"{supervisor.output_dir}/logs/{role.name}.log); pick another --replay-port "
                "if it is in use."
            )
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RoleFailedError(f"The replay server did not open {host}:{port} in {timeout:.0f} s.")


def _default_output_dir() -> str:
    return os.path.join("runs", time.strftime("distributed-%Y%m%d-%H%M%S"))


def _pids(supervisor: Supervisor) -> dict[str, Any]:
    """The launcher's status: each role's PID now, and every PID it ever started."""
    return {
        "pids": {name: role.pid for name, role in supervisor.roles.items()},
        "started": list(supervisor.started),
        "restarts": dict(supervisor.restarts),
    }


def _clear_status(output_dir: str) -> None:
    """Removes the status files of an earlier launch (a resumed run writes new ones)."""
    folder = os.path.join(output_dir, "status")
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        os.remove(os.path.join(folder, name))


def _learner_finished(ended: list, output_dir: str) -> bool:
    """True when the learner ended normally; raises if any role failed."""
    finished = False
    for role, code in ended:
        if role.name == "learner" and code == 0:
            finished = True
            continue
        if role.name.startswith("actor-") and code == 0:  # it saw the learner's `done`
            continue
        raise RoleFailedError(
            f"The {role.name} (pid {role.pid}) {describe_exit(code)}; every role is stopped. "
            f"See {output_dir}/logs/{role.name}.log. The learner's checkpoints stay: continue "
            f"with `tfrl train --distributed --resume --output {output_dir}`."
        )
    return finished


def launch(
    run: Any,
    *,
    actors: int = 2,
    output_dir: str | None = None,
    resume: bool = False,
    export: str | None = None,
    host: str = HOST,
    replay_port: int = 0,
    max_restarts: int = 3,
    verbose: int = 1,
    progress_every: float = 10.0,
    start_timeout: float = 180.0,
) -> DistributedResult:
    """Runs a `RunConfig` as a replay server, `actors` actors and a learner; returns the result.

    Args:
        run: the `tfrl.training.run.RunConfig` (agent "dqn" or "ddqn"; `num_envs`
            is unused: each actor steps one env).
        actors: actor processes. Default 2.
        output_dir: the run directory. Default `runs/distributed-<time>`.
        resume: continue the run in `output_dir` from the learner's latest
            checkpoint and the replay server's latest Reverb checkpoint.
        export: write `saved_models/<export>/<N>/` at the end. Default None.
        host: the address roles use to reach the replay server. Default 127.0.0.1.
            Reverb itself listens on every interface: firewall the port on shared networks.
        replay_port: the replay server's port; 0 picks a free one. Default 0.
        max_restarts: restarts allowed per actor within any 10 minutes before the run
            fails (each after a backoff of 1, 2, 4... s; a restarted actor draws new
            seeds). Default 3.
        verbose: 0 silent, 1 progress line and restart notices. Default 1.
        progress_every: seconds between progress lines when not on a terminal.
        start_timeout: seconds the replay server may take to open its port.

    Raises:
        RunLockedError: another launcher holds `output_dir`.
        RoleFailedError: the learner or the replay server stopped, or an actor
            died more than `max_restarts` times; everything is stopped first.
    """
    from tfrl.training.history import History
    from tfrl.training.run import check_run_dir

    run.validate()
    check_agent(run.agent)
    check_whole_number("actors", actors)
    check_whole_number("max_restarts", max_restarts, minimum=0)
    output_dir = output_dir or _default_output_dir()
    lock = RunLock(output_dir)
    existed = os.path.isdir(output_dir)
    if existed:  # a second launcher hears about the first before anything else
        lock.acquire()
    try:
        check_run_dir(output_dir, run, resume)
        port = _free_port(replay_port)
    except BaseException:
        lock.release()
        raise
    say = print if verbose else (lambda *a, **k: None)
    if not existed:
        lock.acquire()
    restore_sigterm = interrupt_on_sigterm()
    supervisor = Supervisor(output_dir, say=say)
    try:
        # Roles read run.json: a resumed run writes it too, with its new --steps / --target-return
        # (check_run_dir refused any other change).
        atomic_write_text(os.path.join(output_dir, "run.json"), json.dumps(run.to_dict()))
        _clear_status(output_dir)
        address = f"{host}:{port}"
        common = ["--output", output_dir]
        say(f"Distributed run in {output_dir}: replay server {address}, {actors} actors, learner")
        say(f"Warning: Reverb listens on port {port} of every network interface; firewall it.")
        supervisor.start(Role("replay-server", ["replay-server", *common, "--port", str(port)]))
        _wait_for_port(host, port, supervisor, start_timeout)
        learner = ["learner", *common, "--replay", address] + ["--resume"] * resume
        supervisor.start(Role("learner", learner + (["--export", export] if export else [])))
        for k in range(actors):
            args = ["actor", *common, "--replay", address, "--id", str(k)]
            actor = Role(f"actor-{k}", args, max_restarts=max_restarts, restart_flag="--restart")
            supervisor.start(actor)
        write_status(output_dir, "launcher", **_pids(supervisor))
        progress = ProgressLine(output_dir, run.total_env_steps, actors, progress_every)
        shown = _pids(supervisor)
        while not _learner_finished(supervisor.poll(), output_dir):
            if _pids(supervisor) != shown:  # an actor was restarted
                shown = _pids(supervisor)
                write_status(output_dir, "launcher", **shown)
            if verbose:
                progress.update()
            time.sleep(0.5)
        if verbose:
            progress.update(force=True)
    finally:
        supervisor.stop()
        lock.release()
        restore_sigterm()
    final = read_status(output_dir, "learner") or {}
    server = read_status(output_dir, "replay-server") or {}
    return DistributedResult(
        output_dir=output_dir,
        history=History.from_dict(final.get("history", History().to_dict())),
        env_steps=int(server.get("inserted", final.get("env_steps", 0))),
        train_steps=int(final.get("train_steps", 0)),
        stopped_by=str(final.get("stopped_by", "")),
        export_path=final.get("export_path"),
        restarts=dict(supervisor.restarts),
        pids=list(supervisor.started),
    )
