"""Slate recommendation for long-term engagement: SlateQ vs the click-maximizer, served.

    python applications/recommendation.py                      # default config, ~3 minutes
    python applications/recommendation.py --serve-once         # ... and one `tfrl serve` request
    python applications/recommendation.py --preset recsim --total-env-steps 196608  # RecSim, ~4 min
    python applications/recommendation.py --no-require-win --total-env-steps 2048   # a smoke run
    python applications/recommendation.py --help

Trains `slateq` on `tfrl/Recommendation-v0`, then plays the same held-out
user sessions (seeds apart from training) with every recommender: random
slates, the myopic click-maximizer, the quality-first oracle (it sees the
hidden quality) and SlateQ. Prints and writes the mean ± 95% CI of minutes
watched per session and the click-through rate (clicks per slate), plus a
learning-curve PNG, then exports the recommender to
`saved_models/recommender/<N>/` (`recommender_recsim/` for the recsim preset;
serving_default: user and candidate features in, slate and per-candidate
scores out) and checks that the reloaded export picks the same slates.

Exit status: 0 on success; 3 (`EXIT_NO_WIN`) when SlateQ's held-out minutes
per session are not clear of the myopic click-maximizer's (95% CIs
overlapping or below) and `--require-win` is on (the default); 1 on any
error (a failed export check, a server that does not answer, a traceback).
`--no-require-win` reports the comparison but exits 0, for smoke runs on tiny
budgets that cannot win.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any

from tfrl.cli import flags
from tfrl.console import quiet

quiet()

import numpy as np  # noqa: E402

import tfrl  # noqa: E402
from environments.recommendation.baselines import (  # noqa: E402
    MyopicPolicy,
    QualityOraclePolicy,
    RandomPolicy,
    from_tf_policy,
    run_sessions,
)
from environments.recommendation.tuned import train_slateq  # noqa: E402

ENV_ID = "tfrl/Recommendation-v0"
EXIT_NO_WIN = 3


@dataclasses.dataclass
class Args:
    preset: str = "default"
    """environment preset: default (clickbait trade-off) or recsim (RecSim interest evolution)"""
    total_env_steps: int = 100_000
    """training env steps (user-steps summed over the parallel users)"""
    num_envs: int = 64
    """users stepped together as one batch"""
    seed: int = 0
    """seed for users, exploration and evaluation"""
    eval_sessions: int = 500
    """held-out sessions each recommender plays"""
    results_dir: str = "runs/recommendation"
    """where results.md and learning_curve.png go"""
    export_base: str = "saved_models"
    """where the SavedModel goes (<base>/recommender/<version>/; recommender_recsim/ for the
    recsim preset, whose inputs differ)"""
    serve_once: bool = False
    """serve the export with `tfrl serve` on 127.0.0.1 and answer one :predict request"""
    verbose: int = 1
    """1 shows a progress bar, 0 prints only the summary"""
    require_win: bool = True
    """exit 3 unless slateq's 95% CI is clear above myopic's (--no-require-win: exit 0)"""


def parse_args() -> Args:
    return flags.parse(Args, __doc__)


def train(args: Args) -> tuple:
    """Trains slateq on the preset (seeded by `args.seed`); returns (agent, history)."""
    agent, history, seconds = train_slateq(
        args.preset,
        args.total_env_steps,
        seed=args.seed,
        num_envs=args.num_envs,
        eval_episodes=50,
        verbose=args.verbose,
    )
    steps = history.history["env_steps"][-1]
    print(f"Trained slateq for {steps:,} env steps in {seconds:.0f} s (evaluations apart)")
    return agent, history


def main(args: Args) -> int:
    agent, history = train(args)

    held_out = {"sessions": args.eval_sessions, "seed": 10_000, "preset": args.preset}
    results = {
        "random": run_sessions(RandomPolicy, **held_out),
        "myopic (click-maximizer)": run_sessions(MyopicPolicy, **held_out),
        "quality-first oracle": run_sessions(QualityOraclePolicy, **held_out),
        "slateq": run_sessions(from_tf_policy(agent), **held_out),
    }
    table = _table(results)
    print(table)
    os.makedirs(args.results_dir, exist_ok=True)
    _write_results(args, table, history, results)

    path = tfrl.export(agent, os.path.join(args.export_base, _model_name(args)))
    _check_export(agent, path, args)
    print(f"Exported to {path} (serving_default: user, candidates → slate, scores)")
    if args.serve_once:
        _serve_once(os.path.dirname(path), args)

    rl, myopic = results["slateq"], results["myopic (click-maximizer)"]
    gain = rl.mean / myopic.mean - 1.0
    print(
        f"slateq vs myopic: {gain:+.1%} minutes per session (CTR {rl.ctr:.3f} vs {myopic.ctr:.3f})"
    )
    if rl.mean - rl.ci95 > myopic.mean + myopic.ci95:
        return 0
    if not args.require_win:
        print("slateq did not beat myopic (allowed: --no-require-win)")
        return 0
    print(
        f"slateq did not beat myopic with non-overlapping 95% CIs: exit {EXIT_NO_WIN} "
        "(train longer, or pass --no-require-win for a smoke run)"
    )
    return EXIT_NO_WIN


def _table(results: dict) -> str:
    lines = [
        "| recommender | minutes per session (mean ± 95% CI) | CTR (clicks per slate) |",
        "|---|---|---|",
    ]
    for name, stats in results.items():
        lines.append(f"| {name} | {stats.mean:.1f} ± {stats.ci95:.1f} | {stats.ctr:.3f} |")
    return "\n".join(lines)


def _write_results(args: Args, table: str, history, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfrl.atomic import atomic_write_text

    command = " ".join(["python applications/recommendation.py", *sys.argv[1:]])
    text = (
        f"# Recommendation ({args.preset} config)\n\n`{command}`\n\n"
        f"{args.eval_sessions} held-out sessions per recommender, slateq trained "
        f"{args.total_env_steps} env steps (seed {args.seed}).\n\n{table}\n"
    )
    atomic_write_text(os.path.join(args.results_dir, "results.md"), text)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(
        history.eval_steps, history.eval_returns, marker="o", label="slateq (greedy, 50 sessions)"
    )
    for (name, stats), style in zip(results.items(), ("--", ":", "-.")):
        if name != "slateq":
            ax.axhline(stats.mean, linestyle=style, color="gray", label=name)
    ax.set_xlabel("env steps")
    ax.set_ylabel("minutes watched per session")
    ax.set_title(f"tfrl/Recommendation-v0 ({args.preset})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    tmp = os.path.join(args.results_dir, ".learning_curve.png.tmp")
    fig.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, os.path.join(args.results_dir, "learning_curve.png"))
    plt.close(fig)


def _check_export(agent, path: str, args: Args) -> None:
    """The reloaded export must pick the same slates as the in-memory policy."""
    env = tfrl.envs.make(ENV_ID, num_envs=8, seed=99, preset=args.preset)
    observation = env.reset().observation
    served = tfrl.load(path).signatures["serving_default"](
        user=observation["user"], candidates=observation["candidates"]
    )
    expected = from_tf_policy(agent)({k: v.numpy() for k, v in observation.items()}, {})
    if not np.array_equal(served["slate"].numpy(), expected):
        raise SystemExit(f"Export check failed: {served['slate'].numpy()} != {expected}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model_name(args: Args) -> str:
    """The export's name: presets have different inputs, so each has its own model."""
    return "recommender" if args.preset == "default" else f"recommender_{args.preset}"


def _serve_once(base_path: str, args: Args) -> None:
    """Starts `tfrl serve`, sends one user with its candidates, prints the answer, stops."""
    with tempfile.TemporaryFile() as log:  # the server's stderr, shown if it fails
        _serve_and_ask(base_path, args, log)


def _serve_and_ask(base_path: str, args: Args, log: Any) -> None:
    port, grpc_port = _free_port(), _free_port()
    tfrl_cli = os.path.join(os.path.dirname(sys.executable), "tfrl")
    server = subprocess.Popen(
        [
            tfrl_cli,
            "serve",
            "--model_name",
            _model_name(args),
            "--model_base_path",
            base_path,
            "--rest_api_port",
            str(port),
            "--port",
            str(grpc_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        env = tfrl.envs.make(ENV_ID, seed=7, preset=args.preset)
        observation = env.reset().observation
        body = {
            "inputs": {
                "user": np.round(observation["user"].numpy(), 3).tolist(),
                "candidates": np.round(observation["candidates"].numpy(), 3).tolist(),
            }
        }
        url = f"http://127.0.0.1:{port}/v1/models/{_model_name(args)}:predict"
        answer = None
        for _ in range(240):
            try:
                request = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.loads(response.read())
                break
            except urllib.error.HTTPError as e:  # the server answered: an error, not a wait
                raise SystemExit(f"tfrl serve answered {e.code}: {e.read().decode()}") from None
            except OSError:
                if server.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip()[-2000:]
                    raise SystemExit(f"tfrl serve exited before answering:\n{tail}") from None
                time.sleep(0.5)
        if answer is None:
            raise SystemExit("tfrl serve did not answer within 2 minutes")
        outputs = answer["outputs"]
        print(f"POST {url} (one user, {len(body['inputs']['candidates'][0])} candidates) →")
        print(f"  slate {outputs['slate'][0]}, scores {np.round(outputs['scores'][0], 2).tolist()}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(parse_args()))
