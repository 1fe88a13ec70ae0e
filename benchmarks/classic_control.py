"""tfrl's tuned defaults on classic control, beside the RL Zoo's published results.

    python benchmarks/classic_control.py                      # every pair, seeds 0 1 2
    python benchmarks/classic_control.py --pairs dqn:Acrobot-v1 ppo:Pendulum-v1 --seeds 0
    python benchmarks/classic_control.py --budget-scale 0.5   # half of each budget
    python benchmarks/classic_control.py --pairs ppo:Pendulum-v1 --merge  # add to the last run
    python benchmarks/classic_control.py --report-only        # tables and plot from the JSON

Each (agent, env) of the tuned tables (tfrl/agents/tuned/*.yaml) trains as
`tfrl train ENV --agent X --steps BUDGET --seed S` would, with the tuned row
over the agent's defaults. The score of a run is its last evaluation (20
greedy episodes on separate seeded envs, every tenth of the budget); the RL
Zoo's are from its benchmark.md (one run each, deterministic evaluation).
Every finished run is saved at once (atomically) to results/classic_control.json,
and results/classic_control.md and results/classic_control.png are rewritten from
it, so a crash loses only the run in progress. `--merge` keeps the runs already in
the JSON file and skips those (agent, env, seed, budget) runs; without it a new
file is started.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time

from tfrl.console import quiet

quiet()

import machine  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_agents  # noqa: E402

import tfrl  # noqa: E402
from tfrl.atomic import atomic_write_png, atomic_write_text  # noqa: E402
from tfrl.training.run import RunConfig, build_trainer  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


@dataclasses.dataclass(frozen=True)
class Pair:
    agent: str
    env_id: str
    budget: int  # env steps tfrl trains for (at --budget-scale 1)
    zoo_score: float | None  # the RL Zoo's published mean return, None when it has none
    zoo_budget: int | None


PAIRS = [
    Pair("dqn", "CartPole-v1", 50_000, 500.0, 50_000),
    Pair("dqn", "Acrobot-v1", 100_000, -76.6, 100_000),
    Pair("dqn", "MountainCar-v0", 120_000, -100.8, 120_000),
    Pair("dqn", "LunarLander-v3", 100_000, 154.0, 100_000),
    Pair("ddqn", "CartPole-v1", 50_000, 500.0, 50_000),
    Pair("ddqn", "Acrobot-v1", 100_000, -76.6, 100_000),
    Pair("ddqn", "MountainCar-v0", 120_000, -100.8, 120_000),
    Pair("ddqn", "LunarLander-v3", 100_000, 154.0, 100_000),
    Pair("ppo", "CartPole-v1", 100_000, 500.0, 100_000),
    # The Zoo trains PPO on Acrobot for 1M steps; a tenth of that here.
    Pair("ppo", "Acrobot-v1", 100_000, -73.5, 1_000_000),
    Pair("ppo", "Pendulum-v1", 100_000, -172.0, 100_000),
    Pair("reinforce", "CartPole-v1", 100_000, None, None),
    Pair("reinforce", "Acrobot-v1", 100_000, None, None),
    Pair("reinforce", "Pendulum-v1", 100_000, None, None),
]


@dataclasses.dataclass
class Result:
    pair: Pair
    seed: int
    budget: int
    eval_steps: list[int]
    eval_returns: list[float]
    wall_seconds: float
    command: str = ""
    date: str = ""

    @property
    def score(self) -> float:
        return self.eval_returns[-1]


def run_pair(pair: Pair, seed: int, budget: int, eval_episodes: int) -> Result:
    tf.keras.utils.set_random_seed(seed)
    run = RunConfig(
        env_id=pair.env_id,
        agent=pair.agent,
        total_env_steps=budget,
        seed=seed,
        eval_every=max(budget // 10, 1),
        eval_episodes=eval_episodes,
    )
    start = time.perf_counter()
    trainer = build_trainer(run)
    history = trainer.fit(budget, eval_every=run.eval_every, eval_episodes=eval_episodes, verbose=0)
    if not history.eval_steps or history.eval_steps[-1] < trainer.env_steps:
        result = trainer.evaluate(eval_episodes)  # score the final policy too
        history.log_eval(trainer.env_steps, result.mean, result.std, 0.0)
    wall = time.perf_counter() - start
    return Result(
        pair,
        seed,
        budget,
        [int(s) for s in history.eval_steps],
        [float(x) for x in history.eval_returns],
        wall,
    )


def _to_json(results: list[Result]) -> str:
    rows = []
    for r in results:
        row = dataclasses.asdict(r)
        row["pair"] = f"{r.pair.agent}:{r.pair.env_id}"
        rows.append(row)
    return json.dumps(rows, indent=1) + "\n"


def _from_json(path: str) -> list[Result]:
    known = {f"{p.agent}:{p.env_id}": p for p in PAIRS}
    with open(path) as f:
        rows = json.load(f)
    return [Result(**{**row, "pair": known[row["pair"]]}) for row in rows if row["pair"] in known]


def _ordered(results: list[Result]) -> list[Result]:
    """Pairs in PAIRS order, seeds ascending (whatever order the runs were made in)."""
    return sorted(results, key=lambda r: (PAIRS.index(r.pair), r.budget, r.seed))


def _verdict(pair: Pair, mean: float, std: float, budget: int) -> str:
    if pair.zoo_score is None:
        return "no Zoo reference"
    smaller = budget < (pair.zoo_budget or budget)
    at = "at a smaller budget" if smaller else "at the same budget"
    if mean >= pair.zoo_score:
        return f"matches or beats the Zoo {at}"
    short = f"**short of the Zoo** by {pair.zoo_score - mean:.1f} {at}"
    if std and mean + std >= pair.zoo_score:
        return f"{short} on the mean, within one std (the seeds spread widely)"
    return short


def random_return(env_id: str, episodes: int, seed: int = 0) -> float:
    """Mean return of uniformly random actions: the floor a learner must clear."""
    import gymnasium as gym

    env = gym.make(env_id)
    env.action_space.seed(seed)
    total = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
    env.close()
    return total / episodes


def report(results: list[Result], eval_episodes: int) -> str:
    commands = list(dict.fromkeys(r.command for r in results))
    dates = sorted(r.date for r in results if r.date)
    seeds = sorted({r.seed for r in results})
    lines = [
        "# Classic control: tfrl's tuned defaults beside the RL Zoo",
        "",
        ("Command: " if len(commands) == 1 else "Commands (merged with --merge): ")
        + ", ".join(f"`{c}`" for c in commands),
        "",
        f"Date: {dates[0] if dates else '?'} to {dates[-1] if dates else '?'} (each run's end). "
        f"Versions: Python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"tf-agents {tf_agents.__version__}, tfrl {tfrl.__version__}. "
        f"Machine: {machine.describe()}, shared with other jobs while this ran (wall times "
        "are noisy).",
        "",
        f"Each run: `tfrl train ENV --agent X --steps BUDGET --seed S` (the tuned row of "
        f"tfrl/agents/tuned/X.yaml; `tfrl hparams ENV --agent X`); score = the last "
        f"evaluation's mean return over {eval_episodes} greedy episodes on separate seeded "
        f"envs; std is the sample standard deviation over seeds; best evaluation = the "
        "highest evaluation of each run, averaged over seeds; random actions = the "
        f"mean return of uniformly random actions over {eval_episodes} episodes. Seeds: "
        f"{', '.join(map(str, seeds))}. RL Zoo: benchmark.md, one run each, "
        "deterministic evaluation.",
        "",
        "| agent | env | budget (env steps) | tfrl score, mean ± std (seeds) | per seed "
        "| best evaluation | wall s per run | random actions | RL Zoo (budget) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_pair: dict[tuple[Pair, int], list[Result]] = {}
    for r in _ordered(results):
        by_pair.setdefault((r.pair, r.budget), []).append(r)
    for (pair, _), rs in by_pair.items():
        scores = [r.score for r in rs]
        mean = statistics.mean(scores)
        std = statistics.stdev(scores) if len(scores) > 1 else 0.0
        spread = f"{mean:.1f} ± {std:.1f} ({len(scores)})" if len(scores) > 1 else f"{mean:.1f} (1)"
        best = statistics.mean(max(r.eval_returns) for r in rs)
        zoo = "—" if pair.zoo_score is None else f"{pair.zoo_score:g} ({pair.zoo_budget:,})"
        lines.append(
            f"| {pair.agent} | {pair.env_id} | {rs[0].budget:,} | {spread} "
            f"| {', '.join(f'{s:.0f}' for s in scores)} | {best:.1f} "
            f"| {statistics.mean(r.wall_seconds for r in rs):.0f} "
            f"| {random_return(pair.env_id, eval_episodes):.1f} | {zoo} "
            f"| {_verdict(pair, mean, std, rs[0].budget)} |"
        )
    lines += ["", "Learning curves (mean over seeds): classic_control.png.", ""]
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by_pair: dict[tuple[Pair, int], list[Result]] = {}
    for r in _ordered(results):
        by_pair.setdefault((r.pair, r.budget), []).append(r)
    n = len(by_pair)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, ((pair, _), rs) in zip(axes.flat, by_pair.items()):
        for r in rs:
            ax.plot(r.eval_steps, r.eval_returns, color="tab:blue", alpha=0.25, lw=1)
        length = min(len(r.eval_returns) for r in rs)
        mean = np.mean([r.eval_returns[:length] for r in rs], axis=0)
        ax.plot(rs[0].eval_steps[:length], mean, color="tab:blue", lw=2, label="tfrl")
        if pair.zoo_score is not None:
            ax.axhline(pair.zoo_score, color="tab:red", ls="--", lw=1, label="RL Zoo")
        ax.axhline(random_return(pair.env_id, 20), color="gray", ls=":", lw=1, label="random")
        ax.set_title(f"{pair.agent} · {pair.env_id}", fontsize=10)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.legend(fontsize=7)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    atomic_write_png(fig, path, dpi=90)
    plt.close(fig)


def save(results: list[Result], output: str, eval_episodes: int) -> str:
    """Writes the JSON, the Markdown table and the PNG, each atomically; returns the table."""
    base = os.path.splitext(output)[0]
    atomic_write_text(base + ".json", _to_json(_ordered(results)))
    text = report(results, eval_episodes)
    atomic_write_text(output, text)
    plot(results, base + ".png")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", nargs="+", help="AGENT:ENV, e.g. dqn:Acrobot-v1 (default all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget-scale", type=float, default=1.0, help="fraction of each budget")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--output", default=os.path.join(RESULTS, "classic_control.md"))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the runs already in the output's .json and skip them",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the .md and .png from the output's .json; run nothing",
    )
    args = parser.parse_args()
    pairs = PAIRS
    if args.pairs:
        known = {f"{p.agent}:{p.env_id}": p for p in PAIRS}
        unknown = [p for p in args.pairs if p not in known]
        if unknown:
            parser.error(f"unknown pairs {unknown}; choose from {sorted(known)}")
        pairs = [known[p] for p in args.pairs]
    command = ("python benchmarks/classic_control.py " + " ".join(sys.argv[1:])).strip()
    saved = os.path.splitext(args.output)[0] + ".json"
    merge = args.merge or args.report_only
    results = _from_json(saved) if merge and os.path.exists(saved) else []
    if args.report_only:
        if not results:
            parser.error(f"--report-only needs runs in {saved}")
        print(save(results, args.output, args.eval_episodes))
        return 0
    done = {(r.pair, r.seed, r.budget) for r in results}
    text = ""
    # Seed by seed over all pairs: a run cut short still has every pair on the first seeds.
    for seed in args.seeds:
        for pair in pairs:
            budget = max(int(pair.budget * args.budget_scale), 1)
            if (pair, seed, budget) in done:
                print(f"{pair.agent} {pair.env_id} seed {seed}: already in {saved}", flush=True)
                continue
            r = run_pair(pair, seed, budget, args.eval_episodes)
            r.command = command
            r.date = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}"
            results.append(r)
            print(
                f"{pair.agent} {pair.env_id} seed {seed}: {r.score:.1f} after {budget} env "
                f"steps, {r.wall_seconds:.0f} s; curve {[round(x) for x in r.eval_returns]}",
                flush=True,
            )
            text = save(results, args.output, args.eval_episodes)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
