"""Distributed training on Reverb: a replay server, actors and a learner as processes.

>>> result = tfrl.train("CartPole-v1", agent="dqn", distributed=True, actors=2)

or `tfrl train CartPole-v1 --agent dqn --distributed --actors 2`; each role
also runs alone (`tfrl replay-server`, `tfrl actor`, `tfrl learner`).
"""

from tfrl.distributed.launcher import DistributedResult, RoleFailedError, launch
from tfrl.distributed.lock import RunLockedError
from tfrl.distributed.spec import SUPPORTED_AGENTS

__all__ = ["SUPPORTED_AGENTS", "DistributedResult", "RoleFailedError", "RunLockedError", "launch"]
