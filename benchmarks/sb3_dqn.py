"""SB3 DQN on CartPole-v1 with the RL Zoo's settings, under the benchmark protocol.

Run by benchmarks/cartpole.py in a subprocess (torch and TensorFlow never share a
process or its threads), one seed per call; prints one JSON line:

    python benchmarks/sb3_dqn.py --seed 0 --max-env-steps 80000

Settings: rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1: MlpPolicy
net_arch [256, 256], learning_rate 2.3e-3, batch_size 64, buffer_size 100,000,
learning_starts 1,000, gamma 0.99, target_update_interval 10, train_freq 256,
gradient_steps 128, exploration_fraction 0.16 (of n_timesteps 50,000),
exploration_final_eps 0.04; one env, as the Zoo trains it. Needs the `peers`
extra (stable-baselines3, torch).
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np

ENV_ID = "CartPole-v1"
ZOO_CARTPOLE = dict(
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1_000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
    policy_kwargs=dict(net_arch=[256, 256]),
)
ZOO_TIMESTEPS = 50_000  # exploration_fraction is a fraction of this


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--max-env-steps", type=int, default=80_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--solved", type=float, default=475.0)
    parser.add_argument("--stability-evals", type=int, default=10)
    args = parser.parse_args()

    import stable_baselines3
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    eval_env = gym.vector.SyncVectorEnv(
        [lambda: gym.make(ENV_ID) for _ in range(args.eval_episodes)]
    )
    eval_env.reset(seed=10_000 + args.seed)
    out = {
        "side": "sb3",
        "seed": args.seed,
        "eval_returns": [],
        "eval_seconds": 0.0,
        "versions": f"stable-baselines3 {stable_baselines3.__version__}, torch {torch.__version__}",
    }

    def evaluate(model) -> float:
        """Mean return of one greedy episode on each eval env copy."""
        obs, _ = eval_env.reset()
        returns = np.zeros(args.eval_episodes)
        done = np.zeros(args.eval_episodes, bool)
        while not done.all():
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = eval_env.step(action)
            returns += reward * ~done
            done |= terminated | truncated
        return float(returns.mean())

    class Protocol(BaseCallback):
        def _on_training_start(self) -> None:
            self.start = time.perf_counter()
            self.next_eval = args.eval_every
            self.solved_index = None

        def _on_step(self) -> bool:
            steps = self.num_timesteps
            if steps < self.next_eval:
                return True
            self.next_eval += args.eval_every
            train_seconds = time.perf_counter() - self.start - out["eval_seconds"]
            t = time.perf_counter()
            mean = evaluate(self.model)
            out["eval_seconds"] += time.perf_counter() - t
            out["eval_returns"].append(mean)
            out["env_steps"], out["train_seconds"] = steps, train_seconds
            if self.solved_index is None and mean >= args.solved:
                self.solved_index = len(out["eval_returns"]) - 1
                out.update(
                    solved_at=steps,
                    solved_index=self.solved_index,
                    train_seconds_to_solve=train_seconds,
                    total_seconds_to_solve=train_seconds + out["eval_seconds"],
                )
            if self.solved_index is not None:
                after = len(out["eval_returns"]) - 1 - self.solved_index
                return after < args.stability_evals
            return True

    env = gym.make(ENV_ID)
    fraction = ZOO_CARTPOLE["exploration_fraction"] * ZOO_TIMESTEPS / args.max_env_steps
    settings = {**ZOO_CARTPOLE, "exploration_fraction": min(fraction, 1.0)}
    model = DQN("MlpPolicy", env, seed=args.seed, verbose=0, device="cpu", **settings)
    model.learn(total_timesteps=args.max_env_steps, callback=Protocol())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
