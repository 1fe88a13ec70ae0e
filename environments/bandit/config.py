"""Configuration of the k-armed bandit."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class BanditConfig:
    """How the arms pay.

    Attributes:
        num_arms: number of arms (actions). Default 10.
        means: each arm's mean reward; default None draws them from N(0, 1)
            with `means_seed`, as in Sutton & Barto's 10-armed testbed.
        means_seed: seed for drawing `means`. Default 0.
        reward_std: standard deviation of the reward noise. Default 1.0.
    """

    num_arms: int = 10
    means: tuple[float, ...] | None = None
    means_seed: int = 0
    reward_std: float = 1.0

    def __post_init__(self) -> None:
        if self.num_arms < 2:
            raise ValueError(f"num_arms={self.num_arms} must be ≥ 2.")
        if self.means is not None and len(self.means) != self.num_arms:
            raise ValueError(
                f"means has {len(self.means)} values but num_arms={self.num_arms}; "
                "give one mean per arm."
            )
        if self.reward_std < 0:
            raise ValueError(f"reward_std={self.reward_std} must be ≥ 0.")
