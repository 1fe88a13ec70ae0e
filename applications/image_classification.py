"""Imbalanced image classification with DQN (DQNimb) vs a class-weighted supervised CNN.

    python applications/image_classification.py          # digits, "2" vs the rest at 1:10
    python applications/image_classification.py --total-env-steps 2000 --baseline-epochs 2
    python applications/image_classification.py --help

The agent sees one training image per step and answers with a label on
`tfrl/ImageClassification-v0` (Lin et al. 2020): ±1 on minority samples,
±λ on majority ones (λ = ρ, the minority/majority ratio), and a wrong label
on a minority sample ends the episode. Its Q-network is the paper's CNN (a
Keras model), trained with Double DQN, γ = 0.1, whose TD loss weighs each
transition by λ/|r| so both classes count alike in the Q regression
(`BalancedDDQN`; `--td-weights none` for the plain loss). The baseline is the same CNN
trained with cross-entropy and balanced class weights. Both are scored on the
held-out test split (its natural class balance) by G-mean, the geometric mean
of per-class recalls, and by minority recall/precision/F1. The classifier is
exported to `saved_models/image_classifier/<N>/`; its `serving_default`
takes a batch of images and returns `labels`, `scores` and `label_names`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from tfrl.cli import flags
from tfrl.console import quiet

quiet()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfrl  # noqa: E402
from environments import image_classification as ic  # noqa: E402
from tfrl.atomic import atomic_write_png  # noqa: E402
from tfrl.export.classifier import classifier_function  # noqa: E402

ENV_ID = "tfrl/ImageClassification-v0"


@dataclasses.dataclass
class Args:
    dataset: str = "digits"
    """digits (offline, 8×8), or a prepared TFDS mnist / fashion_mnist / cifar10"""
    minority_classes: str = "2"
    """comma-separated classes made rare (the paper: digit 2 vs the rest)"""
    imbalance_ratio: float = 0.1
    """ρ = minority / majority training samples (0.1 is 1:10)"""
    total_env_steps: int = 40_000
    """DQN training budget in env steps (images labelled)"""
    validation_fraction: float = 0.15
    """share of the training data held out to pick the DQN's weights and stop the baseline"""
    eval_every: int = 2_000
    """env steps between greedy evaluations of the DQN on the validation split"""
    select: str = dataclasses.field(default="return", metadata={"choices": ("return", "g_mean")})
    """what picks the DQN's kept weights on validation: return (the env's DQNimb return) or
    g_mean (of its greedy labels; measured worse: benchmarks/results/)"""
    td_weights: str = dataclasses.field(
        default="balanced", metadata={"choices": ("balanced", "none")}
    )
    """balanced weighs each transition's TD loss by λ/|r| so both classes count alike in the
    Q regression (ic.BalancedDDQN; same reward and targets); none is plain Double DQN"""
    epsilon_end: float = 0.5
    """exploration rate once decayed (from 1 over the first fifth of the steps); labels do not
    change which image comes next, so wide exploration costs nothing and trains the Q-value
    of every label on every kind of image (0.05 left majority images' minority Q-values
    under-trained: measured more false positives)"""
    num_envs: int = 16
    """episodes stepped together as one batch"""
    learning_rate: float = 2.5e-4
    """Adam step size of the Q-network (the paper's)"""
    gamma: float = 0.1
    """discount; the paper uses 0.1-0.5 (labels barely depend on the future)"""
    baseline_epochs: int = 100
    """epoch cap of the class-weighted supervised CNN (it stops early on validation loss)"""
    seed: int = 0
    """seeds the train/test split, the samples kept, data order, networks and exploration"""
    export_base: str = "saved_models"
    """the classifier goes to <export_base>/image_classifier/<N>/"""
    plot: str = "runs/image_classification/confusion.png"
    """confusion-matrix PNG ('' skips it)"""
    verbose: int = 1
    """1 shows training progress, 0 only the summary"""


def parse_args(argv: list[str] | None = None) -> Args:
    return flags.parse(Args, __doc__, argv)


def env_config(args: Args, seed: int, split: str = "train") -> dict:
    """The env's keyword arguments; the seed picks the split and the samples kept."""
    classes = tuple(int(c) for c in args.minority_classes.split(","))
    config = {
        "dataset": args.dataset,
        "minority_classes": classes,
        "imbalance_ratio": args.imbalance_ratio,
        "validation_fraction": args.validation_fraction,
        "data_seed": seed,
        "split_seed": seed,
        "split": split,
    }
    if split == "test":  # its natural class balance (ρ = 1 keeps every minority sample)
        config |= {"imbalance_ratio": 1.0, "validation_fraction": 0.0}
    return config


def load_split(args: Args, seed: int, split: str) -> ic.LabelledImages:
    """The "train", "validation" or "test" images of this seed."""
    return ic.load(ic.ImageClassificationConfig(**env_config(args, seed, split)))


def reward_lambda(args: Args, seed: int) -> float:
    """The env's λ for this seed: minority / majority images in its training split."""
    train = load_split(args, seed, "train")
    return train.minority_count / train.majority_count


def train_dqn(args: Args, seed: int) -> tuple:
    """Trains Double DQN with the paper's CNN; returns (agent, env, seconds, kept env step).

    With a validation split, the greedy policy is evaluated on it every
    `eval_every` env steps (by `args.select`: the env's own DQNimb return over
    8 episodes, or the G-mean of its labels) and the weights of the best
    evaluation are kept, as the baseline keeps its best epoch.
    """
    if args.select not in ("g_mean", "return"):
        raise SystemExit(f"--select {args.select!r}: choose g_mean or return.")
    if args.td_weights not in ("balanced", "none"):
        raise SystemExit(f"--td-weights {args.td_weights!r}: choose balanced or none.")
    tfrl.set_seed(seed)
    env = tfrl.envs.make(ENV_ID, num_envs=args.num_envs, seed=seed, **env_config(args, seed))
    image_shape = tuple(env.observation_spec().shape)
    num_labels = int(env.action_spec().maximum) + 1
    config = tfrl.agents.DQNConfig(
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        epsilon_end=args.epsilon_end,
        exploration_steps=max(args.total_env_steps // 5, 1),
        learning_starts=min(1_000, args.total_env_steps // 2),
        collect_env_steps=256,
        train_steps=64,
        batch_size=64,
        target_update_period=200,
        replay_capacity=50_000,
    )
    q_network = ic.cnn(image_shape, num_labels)
    if args.td_weights == "balanced":
        agent = ic.BalancedDDQN(
            env.time_step_spec(),
            env.action_spec(),
            config,
            q_network=q_network,
            reward_lambda=reward_lambda(args, seed),
        )
    else:
        agent = tfrl.agents.make("ddqn", env, config, q_network=q_network)
    eval_env, callbacks = None, []
    if args.validation_fraction > 0 and args.select == "return":
        eval_env = tfrl.envs.make(
            ENV_ID, num_envs=8, seed=seed + 1, **env_config(args, seed, "validation")
        )
        callbacks.append(tfrl.callbacks.EarlyStopping(float("inf"), restore_best=True))
    elif args.validation_fraction > 0:
        callbacks.append(KeepBestGMean(load_split(args, seed, "validation"), args.eval_every))
    trainer = tfrl.Trainer(agent, env, seed=seed, eval_env=eval_env)
    start = time.perf_counter()
    trainer.fit(
        args.total_env_steps,
        eval_every=args.eval_every if eval_env is not None else None,
        eval_episodes=8,
        callbacks=callbacks,
        verbose=args.verbose,
    )
    kept = callbacks[0].best_step if callbacks else args.total_env_steps
    return agent, env, time.perf_counter() - start, kept


class KeepBestGMean(tfrl.callbacks.EarlyStopping):
    """Keeps the weights whose greedy labels score the best G-mean on `validation`.

    Scores every `every` env steps and after the last iteration; the weights
    are restored at the end of `fit` (EarlyStopping's `restore_best`; it never
    stops early). `best_return` holds the best G-mean, `best_step` its env step.
    """

    def __init__(self, validation: ic.LabelledImages, every: int):
        super().__init__(float("inf"), restore_best=True)
        self.validation, self.every, self._last, self._serve = validation, every, 0, None

    def _score(self, env_steps: int) -> None:
        if self._serve is None:  # one traced function for every evaluation
            self._serve = classifier_function(self.trainer.agent.policy)
        labels = dqn_labels(self.trainer.agent, self.validation.images, self._serve)
        score = ic.g_mean(self.validation.labels, labels, len(self.validation.class_names))
        self.on_evaluate_end(env_steps, {"eval_return": score})
        self._last = env_steps

    def on_iteration_end(self, env_steps, logs):
        if env_steps - self._last >= self.every:
            self._score(env_steps)

    def on_train_end(self, logs=None):
        if self._last != self.trainer.env_steps:
            self._score(self.trainer.env_steps)


def dqn_labels(agent, images: np.ndarray, serve=None) -> np.ndarray:
    """The greedy policy's labels (argmax of the Q-values), in batches of 512.

    Computed by the classifier export's own `serving_default` function, so these
    are the labels the exported model serves.
    """
    serve = serve or classifier_function(agent.policy)
    dtype = agent.policy.time_step_spec.observation.dtype
    batches = [images[i : i + 512] for i in range(0, len(images), 512)]
    return np.concatenate([serve(images=tf.constant(b, dtype))["labels"].numpy() for b in batches])


def run_seed(args: Args, seed: int) -> dict:
    """Both methods on one seed: {'dqn': report, 'supervised': report, 'agent': agent, ...}."""
    test = load_split(args, seed, "test")
    num_labels = len(test.class_names)
    agent, _, dqn_seconds, dqn_kept = train_dqn(args, seed)
    train = load_split(args, seed, "train")
    validation = load_split(args, seed, "validation") if args.validation_fraction > 0 else None
    start = time.perf_counter()
    model = ic.fit_supervised(train, validation=validation, epochs=args.baseline_epochs, seed=seed)
    supervised_seconds = time.perf_counter() - start
    supervised_labels = model.predict(test.images, verbose=0).argmax(axis=1)
    report = {
        "dqn": ic.classification_report(
            test.labels, dqn_labels(agent, test.images), num_labels, test.minority_labels
        ),
        "supervised": ic.classification_report(
            test.labels, supervised_labels, num_labels, test.minority_labels
        ),
    }
    report["dqn"]["seconds"] = dqn_seconds
    report["supervised"]["seconds"] = supervised_seconds
    report["dqn"]["kept"] = dqn_kept  # env step of the weights kept
    report["supervised"]["epochs_run"] = model.epochs_run
    report["supervised"]["kept"] = model.kept_epoch  # epoch of the weights kept
    return {**report, "agent": agent, "test": test, "train": train}


def plot_confusion(matrices: dict[str, list], class_names: list[str], path: str) -> None:
    """One confusion-matrix panel per method (rows: true label, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.8))
    for ax, (name, matrix) in zip(np.atleast_1d(axes), matrices.items()):
        matrix = np.asarray(matrix)
        ax.imshow(
            matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1
        )
        for (i, j), count in np.ndenumerate(matrix):
            share = count / max(matrix[i].sum(), 1)
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                color="white" if share > 0.5 else "black",
            )
        ticks = range(len(class_names))
        ax.set_xticks(ticks, class_names)
        ax.set_yticks(ticks, class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
    fig.tight_layout()
    atomic_write_png(fig, path)
    plt.close(fig)


def main(args: Args) -> int:
    result = run_seed(args, args.seed)
    test = result["test"]
    train = result["train"]
    minority = ", ".join(test.class_names[i] for i in test.minority_labels)
    print(
        f"{args.dataset}: minority {minority}; "
        f"train {train.minority_count} minority / {train.majority_count} majority "
        f"(ρ = {train.minority_count / train.majority_count:.3f}); test {len(test)} images"
    )
    methods = (("dqn", "DQN (DQNimb reward)"), ("supervised", "supervised CNN, class weights"))
    width = max(len(name) for _, name in methods) + 2
    print(
        f"{'method':<{width}}{'G-mean':>8}{'recall':>8}{'prec.':>8}{'F1':>8}{'acc.':>8}"
        f"{'seconds':>9}"
    )
    for key, name in methods:
        r = result[key]
        print(
            f"{name:<{width}}{r['g_mean']:>8.3f}{r['minority_recall']:>8.3f}"
            f"{r['minority_precision']:>8.3f}{r['minority_f1']:>8.3f}{r['accuracy']:>8.3f}"
            f"{r['seconds']:>9.1f}"
        )
    if args.plot:
        plot_confusion(
            {
                "DQN": result["dqn"]["confusion_matrix"],
                "supervised CNN": result["supervised"]["confusion_matrix"],
            },
            test.class_names,
            args.plot,
        )
        print(f"Confusion matrices: {args.plot}")
    agent = result["agent"]
    path = tfrl.export.export_classifier(
        agent, os.path.join(args.export_base, "image_classifier"), class_names=test.class_names
    )
    served = tfrl.load(path).signatures["serving_default"](images=tf.constant(test.images[:64]))
    if not np.array_equal(served["labels"].numpy(), dqn_labels(agent, test.images[:64])):
        raise SystemExit("Export check failed: the exported classifier labels images differently.")
    print(f"Exported to {path} (serving_default: images → labels, scores, label_names)")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
