"""Starts role processes, restarts dead actors (bounded), stops everything on the way out.

Every role is a `python -m tfrl.cli.main <role> ...` child of the launcher, in
the launcher's process group, with its output in `<run dir>/logs/<role>.log`.
Children ask the kernel to SIGKILL them if the launcher dies
(`PR_SET_PDEATHSIG`, sent when the thread that started them ends), so even a
SIGKILLed launcher leaves none behind; on every other exit the launcher sends
SIGTERM, waits, then SIGKILLs.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import subprocess
import sys
import time

from tfrl.distributed.process import die_with_parent

__all__ = ["Role", "Supervisor"]

logger = logging.getLogger(__name__)


# A role may be restarted `max_restarts` times within any RESTART_WINDOW seconds; the
# k-th restart within that window waits min(BACKOFF * 2 ** (k - 1), MAX_BACKOFF) seconds.
RESTART_WINDOW = 600.0
BACKOFF = 1.0
MAX_BACKOFF = 30.0


@dataclasses.dataclass
class Role:
    """One supervised process: its name, command-line arguments and restart budget.

    A role with `max_restarts` is restarted whenever it ends, exit code 0
    included (actors never finish on their own: an exit means someone stopped
    it). `restart_flag`, if set, is passed with the restart count to each
    restarted process (`--restart 2`), so it can draw new seeds.
    """

    name: str
    args: list[str]
    max_restarts: int = 0
    restarts: int = 0
    process: subprocess.Popen | None = None
    restart_flag: str | None = None
    restart_times: list[float] = dataclasses.field(default_factory=list)
    restart_at: float | None = None  # set while the role waits out its backoff

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


def describe_exit(code: int) -> str:
    """'exited with code 1' / 'was killed by SIGKILL'."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Owns the role processes of one run.

    Args:
        output_dir: the run directory (logs go to `logs/`).
        say: where restart notices go (default: the logger).
    """

    def __init__(self, output_dir: str, say=None):
        self.output_dir = output_dir
        self.roles: dict[str, Role] = {}
        self.started: list[int] = []  # every PID ever started, for callers that check
        self.restarts: dict[str, int] = {}  # role name → restarts so far
        self._say = say or logger.warning

    def start(self, role: Role) -> Role:
        logs = os.path.join(self.output_dir, "logs")
        os.makedirs(logs, exist_ok=True)
        args = list(role.args)
        if role.restart_flag and role.restarts:
            args += [role.restart_flag, str(role.restarts)]
        with open(os.path.join(logs, f"{role.name}.log"), "ab") as log:
            role.process = subprocess.Popen(
                [sys.executable, "-m", "tfrl.cli.main", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=functools.partial(die_with_parent, os.getpid()),
            )
        self.roles[role.name] = role
        self.started.append(role.process.pid)
        return role

    def poll(self) -> list[tuple[Role, int]]:
        """Restarts actors that died (exit code not 0) within their budget; returns the other exits.

        Returns:
            (role, exit code) for each role that ended and was not restarted.
        """
        ended = []
        now = time.monotonic()
        for role in list(self.roles.values()):
            if role.restart_at is not None:  # waiting out its backoff
                if now >= role.restart_at:
                    role.restart_at = None
                    self.start(role)
                    self._say(f"{role.name} restarted as pid {role.pid}")
                continue
            code = role.process.poll() if role.process is not None else None
            if code is None:
                continue
            role.restart_times = [t for t in role.restart_times if now - t < RESTART_WINDOW]
            # Exit 0 is a role that finished (an actor stops once the learner is done).
            if code != 0 and len(role.restart_times) < role.max_restarts:
                role.restart_times.append(now)
                role.restarts += 1
                self.restarts[role.name] = role.restarts
                delay = min(BACKOFF * 2 ** (len(role.restart_times) - 1), MAX_BACKOFF)
                role.restart_at = now + delay
                self._say(
                    f"{role.name} (pid {role.pid}) {describe_exit(code)}; restarting in "
                    f"{delay:.0f} s (restart {len(role.restart_times)} of {role.max_restarts} "
                    f"allowed in {RESTART_WINDOW / 60:.0f} min)"
                )
            else:
                del self.roles[role.name]
                ended.append((role, code))
        return ended

    def alive(self) -> bool:
        return any(
            r.restart_at is not None or (r.process is not None and r.process.poll() is None)
            for r in self.roles.values()
        )

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM every role, wait up to `timeout` seconds, SIGKILL what is left."""
        processes = [r.process for r in self.roles.values() if r.process is not None]
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in processes:
            try:
                p.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.roles.clear()
