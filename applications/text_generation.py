"""Fine-tune a Keras language model with RL to raise a reward, then export and serve it.

    python applications/text_generation.py              # learned reward: "write like ROMEO"
    python applications/text_generation.py --reward keyword --method grpo
    python applications/text_generation.py --help

Steps: load the pretrained GRU LM (bundled with tfrl; another `LMConfig` is
pretrained once with `model.fit` and cached), build the reward (a classifier
trained with `model.fit` on one speaker's lines vs the rest, a keyword
lexicon, or a line-length rule), print samples for fixed prompts, fine-tune
with PPO, RLOO or GRPO against a KL penalty to the frozen pretrained model,
print the same prompts' samples again, write reward/KL curves as PNG, and
export to `saved_models/text_generator/<N>/` whose `serving_default` takes
prompt strings and returns generated text. Serve it with:

    tfrl serve --model_name text_generator --model_base_path saved_models/text_generator
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import sys
import time

from tfrl.cli import flags
from tfrl.console import quiet

quiet()

import numpy as np  # noqa: E402

import tfrl  # noqa: E402
import tfrl.text  # noqa: E402
from tfrl.errors import ConfigError, check_whole_number  # noqa: E402
from tfrl.text.finetune import METHODS  # noqa: E402

PROMPTS = ["ROMEO:", "JULIET:", "KING RICHARD III:"]
LEXICON = ("love", "heart", "sweet", "fair", "kiss", "dear", "gentle")


@dataclasses.dataclass
class Args:
    reward: str = dataclasses.field(
        default="speaker", metadata={"choices": ("speaker", "keyword", "length")}
    )
    """speaker (learned classifier), keyword (love lexicon) or length (first line ≈ 40 chars)"""
    speaker: str = "ROMEO"
    """the speaker whose lines the learned reward prefers"""
    method: str = dataclasses.field(default="rloo", metadata={"choices": METHODS})
    """ppo, rloo or grpo"""
    iterations: int = 30
    """collect-and-train iterations"""
    prompts_per_batch: int = 16
    """prompts per iteration"""
    group_size: int = 4
    """samples per prompt"""
    max_new_tokens: int = 48
    """generated characters per sample"""
    kl_coef: float = 0.1
    """β, the KL penalty's initial weight (and its floor when adaptive: then > 0)"""
    target_kl: float = 10.0
    """adaptive β's target KL, in nats per 48 generated tokens: the run's target per
    sequence is target_kl × max_new_tokens / 48; 0 keeps β fixed at kl_coef"""
    max_kl: float = 15.0
    """the KL budget, nats per 48 generated tokens (scaled like target_kl): no update
    starts while the policy's KL is above half of it; 0 turns it off"""
    stop: str = ""
    """a sample ends at this string, e.g. '\\n\\n' (the end of a speech; backslash
    escapes are read); '' uses all max_new_tokens"""
    seed: int = 0
    """seeds sampling, prompt order and initialization"""
    output: str = "runs/text_generation"
    """where curves (PNG), the CSV log and TensorBoard events go"""
    export_base: str = "saved_models"
    """the generator is exported to <export_base>/text_generator/<N>/"""
    verbose: int = 1
    """1 shows a progress line"""


def parse_args() -> Args:
    return flags.parse(Args, __doc__)


def make_reward(args: Args, tokenizer):
    if args.reward == "speaker":
        config = tfrl.text.SpeakerRewardConfig(length=args.max_new_tokens)
        reward, metrics = tfrl.text.train_speaker_reward(args.speaker, tokenizer, config=config)
        print(
            f"Reward: P({args.speaker} | text), held-out accuracy {metrics['val_accuracy']:.3f}; "
            f"real held-out {args.speaker} text scores {metrics['speaker_score']:.3f} (a policy "
            f"above that games the classifier), other speakers {metrics['others_score']:.3f}"
        )
        return reward
    if args.reward == "keyword":
        print(f"Reward: count of {list(LEXICON)} (capped at 3)")
        return tfrl.text.KeywordReward(LEXICON, cap=3)
    if args.reward == "length":
        print("Reward: first line close to 40 characters")
        return tfrl.text.LengthReward(40)
    raise AssertionError(args.reward)  # the flag's choices keep it out


def make_config(args: Args) -> tfrl.text.FineTuneConfig:
    """The fine-tuning config: the KL target and budget scaled to the sample length."""
    per_token = args.max_new_tokens / 48
    return tfrl.text.FineTuneConfig(
        method=args.method,
        prompts_per_batch=args.prompts_per_batch,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
        kl_coef=args.kl_coef,
        target_kl=args.target_kl * per_token if args.target_kl else None,
        max_kl=args.max_kl * per_token if args.max_kl else None,
        stop=codecs.decode(args.stop, "unicode_escape") if args.stop else None,
        seed=args.seed,
    )


def show(title: str, generator, reward) -> None:
    texts = generator.generate(PROMPTS, seed=1)  # cut at --stop by the generator
    scores = reward(texts)
    print(title)
    for prompt, text, score in zip(PROMPTS, texts, scores):
        print(f"  [{score:.2f}] {prompt}{text!r}")


def main(args: Args) -> int:
    # Every cheap check before the LM loads: a bad flag costs no waiting.
    try:
        config = make_config(args)
        check_whole_number("iterations", args.iterations)
        # The export cuts at --stop in its graph, as training and the printed samples do.
        generation = tfrl.text.GenerationConfig(max_length=args.max_new_tokens, stop=config.stop)
    except ConfigError as e:
        print(f"text_generation.py: error: {e}", file=sys.stderr)
        return 2
    model, tokenizer, lm_metrics = tfrl.text.pretrained_lm(verbose=args.verbose)
    print(
        f"Pretrained LM: validation perplexity {lm_metrics.get('val_perplexity', float('nan')):.2f}"
    )
    reward = make_reward(args, tokenizer)
    prompts = tfrl.text.speaker_prompts(tfrl.text.load_corpus())
    held_out = prompts[::5]
    if config.target_kl is not None or config.max_kl is not None:
        print(
            f"KL per {config.max_new_tokens}-token sample: target {config.target_kl}, "
            f"budget {config.max_kl} nats"
        )
    tuner = tfrl.text.FineTuner(
        model, tokenizer, reward, [p for p in prompts if p not in held_out], config
    )
    show(
        "Before fine-tuning:",
        tfrl.text.TextGenerator(model, tokenizer, generation),
        reward,
    )
    before = tuner.evaluate(held_out, model=tuner.reference)

    os.makedirs(args.output, exist_ok=True)
    callbacks = [
        tfrl.callbacks.CSVLogger(
            os.path.join(args.output, "log.csv"),
            columns=("env_steps", "objective/scores", "objective/kl", "objective/entropy",
                     "policy/clipfrac", "beta", "sample"),
        ),
        tfrl.callbacks.TensorBoard(os.path.join(args.output, "tensorboard")),
    ]  # fmt: skip
    start = time.perf_counter()
    history = tuner.fit(args.iterations, callbacks=callbacks, verbose=args.verbose)
    wall = time.perf_counter() - start
    after = tuner.evaluate(held_out)
    generator = tuner.generator(generation)
    show("After fine-tuning:", generator, reward)
    print(
        f"{args.method.upper()} on held-out prompts: reward {before['reward']:.3f} → "
        f"{after['reward']:.3f}, KL to the reference {after['kl']:.2f} nats/sequence, reference "
        f"perplexity {before['ref_perplexity']:.2f} → {after['ref_perplexity']:.2f}; "
        f"{tuner.env_steps:,} tokens generated in {wall:.0f} s"
    )
    print(
        f"Diversity: distinct-2 {before['distinct_2']:.2f} → {after['distinct_2']:.2f}, "
        f"repeated-word run {before['repeat_run']:.2f} → {after['repeat_run']:.2f} "
        "(falling distinct-2 or rising runs: the policy repeats what the reward pays for)"
    )
    plot_path = plot(history, os.path.join(args.output, "curves.png"), config.target_kl or 0.0)
    print(f"Curves: {plot_path}")

    path = tfrl.export(generator, os.path.join(args.export_base, "text_generator"))
    check_export(generator, path)
    print(f"Exported to {path} (serving_default: prompts → text)")
    return 0


def plot(history, path: str, target_kl: float = 0.0) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key, title in zip(
        axes,
        ("objective/scores", "objective/kl", "beta"),
        ("reward", "KL to reference (nats/seq)", "β (KL coefficient)"),
    ):
        ax.plot(np.arange(1, len(history.history[key]) + 1), history.history[key])
        ax.set(title=title, xlabel="iteration")
    if target_kl:
        axes[1].axhline(target_kl, color="gray", linestyle=":", label="target")
        axes[1].legend()
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=90)
    os.replace(path + ".tmp.png", path)
    plt.close(fig)
    return path


def check_export(generator, path: str) -> None:
    """The reloaded export must write the same text as the generator for a fixed seed."""
    from tfrl.export import SessionModel

    model = SessionModel(path)
    try:
        feeds = {
            "prompts": np.array([b"ROMEO:"], dtype=object),
            "max_length": np.int32(32),
            "temperature": np.float32(1.0),
            "seed": np.int64(7),
        }
        exported = model.run("generate", feeds)["text"][0].decode()
    finally:
        model.close()
    expected = generator.generate(["ROMEO:"], max_length=32, temperature=1.0, seed=7)[0]
    if exported != expected:
        raise SystemExit(f"Export check failed: {exported!r} != {expected!r}")


if __name__ == "__main__":
    sys.exit(main(parse_args()))
