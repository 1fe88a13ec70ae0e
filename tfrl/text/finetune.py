"""KL-regularized RL fine-tuning of a `CharLM`: PPO, RLOO and GRPO over whole sequences.

    tuner = tfrl.text.fine_tune(tfrl.text.KeywordReward(["love"]), method="rloo", iterations=50)
    tuner.generator().generate(["ROMEO:"])

Each iteration samples `group_size` continuations of `prompts_per_batch`
prompts in one `tf.function` (a `tf.while_loop` over the cached GRU state),
scores the decoded texts with the reward, and takes `epochs` clipped
policy-gradient passes over the batch. The objective is the reward minus
β·KL(policy ‖ reference), with the per-token KL estimated from the sampled
tokens against the frozen pretrained reference (Ziegler et al. 2019,
https://arxiv.org/abs/1909.08593; TRL's PPO/RLOO/GRPO trainers):

- `ppo`: per-token rewards −β·KL_t plus the score at the last token;
  advantages by GAE from a value head on the policy's GRU states
  (Schulman et al. 2017);
- `rloo`: sequence return R − β·ΣKL_t, advantage = return minus the mean
  return of the other samples of the same prompt (Ahmadian et al. 2024);
- `grpo`: advantage = score standardized within its group; the KL enters the
  loss as the per-token k3 estimator (Shao et al. 2024, DeepSeekMath).

Rollouts are always sampled from the policy's full distribution
(temperature 1, no top-k/top-p), the distribution the log-probabilities and
KL are computed under; truncated sampling would bias the KL estimate (it can
even turn negative). β is adaptive by default (`target_kl`):
β ← max(min_kl_coef, β·(1 + clip(KL/target − 1, −0.2, 0.2)·n/horizon)), or
fixed with `target_kl=None`; β moves only on iterations that train (not while
paused at the budget) and never above `BETA_CAP` × `kl_coef`. `max_kl` is the
KL budget, kept by the update itself: no update starts while the policy's KL
is above half of it (the controller alone reacts too late; see
benchmarks/results/text_generation_kl_sweep.md). This is KL-based early
stopping: once the policy's KL reaches the gate, nearly every later iteration
is paused and the reward stops rising (a warning is logged after
`PAUSE_WARNING` paused iterations in a row).
`reward_normalization`
rescales scores by running statistics so the KL term neither dominates nor
vanishes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfrl.errors import ConfigError, TfrlError, check_names, check_whole_number
from tfrl.text.metrics import diversity
from tfrl.text.model import CharLM, LMConfig, build_lm, pretrained_lm
from tfrl.text.rewards import RewardFn, as_reward
from tfrl.text.sampling import START, GenerationConfig, TextGenerator, sample_rollout
from tfrl.text.tokenizer import CharTokenizer
from tfrl.training.callbacks import Callback, CallbackList
from tfrl.training.checkpoint import CheckpointManager
from tfrl.training.history import History
from tfrl.training.progress import ProgressLine
from tfrl.training.seeding import set_seed

__all__ = [
    "BETA_CAP",
    "METHODS",
    "PAUSE_WARNING",
    "FineTuneConfig",
    "FineTuner",
    "NonFiniteError",
    "RunningMoments",
    "fine_tune",
    "speaker_prompts",
]

logger = logging.getLogger(__name__)

METHODS = ("ppo", "rloo", "grpo")
# No update starts while the policy's KL is above this fraction of `max_kl`. Measured
# (benchmarks/results/text_generation_kl_sweep.md): a 32-sequence KL estimate of an unchanged
# policy varies by ±2-4 nats between iterations, and a paused policy's estimates sit
# around 1-4 nats above the gate (the last update before the pause, then estimation
# noise), so the margin is half the budget.
KL_GATE = 0.5
# Adaptive β never rises above this multiple of `kl_coef`. Uncapped, a controller fed a KL
# above its target multiplies β by up to 1 + 0.2 × sequences / kl_horizon every iteration
# (1.4 in the benchmark's configuration): a review run reached β 1.1e10 after 192
# iterations (float32 overflows at 3.4e38), and an infinite β makes the next update write
# NaN weights. At 1000× its start (100 by default) the KL penalty already dwarfs a reward
# scaled to unit spread (`reward_normalization`) at any KL above a few hundredths of a nat.
BETA_CAP = 1e3
# After this many paused iterations in a row, `train_iteration` logs a warning (once a run).
PAUSE_WARNING = 8
NORMALIZATIONS = ("none", "scale", "standardize")


class NonFiniteError(TfrlError, ArithmeticError):
    """A fine-tuning KL, advantage or loss is NaN or infinite.

    Non-finite advantages or KL (e.g. from an infinite β or a reward returning
    NaN) are caught before the update, so the weights stay as they were; a
    non-finite loss is caught right after the step that computed it.
    """


@dataclasses.dataclass
class FineTuneConfig:
    """Hyper-parameters of RL fine-tuning (defaults tuned on Tiny Shakespeare, 2 CPU cores).

    `target_kl` and `max_kl` are per sequence (nats), tuned for 48 tokens:
    scale both with `max_new_tokens` (e.g. × 32 / 48 for 32 tokens), as the
    application does. `max_kl` works as KL-based early stopping: once the
    policy's KL reaches the gate (`KL_GATE` × `max_kl`), almost every later
    iteration is paused (no update; sampling, logging and callbacks go on), so
    the reward stops rising there for good. To learn further, raise `max_kl`,
    lower `learning_rate`, or stop the run.

    Attributes:
        method: "ppo", "rloo" or "grpo". Default "rloo".
        prompts_per_batch: distinct prompts per iteration. Default 16.
        group_size: continuations sampled per prompt (RLOO and GRPO compare
            them; ≥ 2). Default 4.
        max_new_tokens: generated characters per continuation. Default 48.
        learning_rate: Adam's learning rate. Default 3e-4.
        epochs: optimization passes over each batch of rollouts. Default 2.
        clip_ratio: PPO's ε for the probability ratio. Default 0.2.
        kl_coef: β, the KL penalty's initial weight. Default 0.1. With adaptive β
            it must be > 0 (a multiplicative controller never moves β from 0);
            `target_kl=None, kl_coef=0` turns the KL penalty off.
        min_kl_coef: adaptive β's floor. Default None: `kl_coef` (β never falls
            below where it started). Set it lower to start with a strong
            penalty and let the controller relax it; 0 < min_kl_coef ≤ kl_coef.
        target_kl: adaptive β (Ziegler et al.'s controller) aims at this KL
            per sequence (nats); None keeps β fixed. Default 10.0 (for 48
            tokens; scale it with `max_new_tokens`). The default sits above
            the default gate (7.5 = `KL_GATE` × `max_kl`), and β moves only on
            iterations that train, i.e. at a KL below the gate: with a target
            above the gate β never rises, it stays at `min_kl_coef`, and the
            gate alone bounds the KL. A target below the gate (e.g. 7) lets β
            rise a little near the gate (measured, benchmark keyword task,
            RLOO and PPO, seeds 0-1: β up to 0.14, rewards 1.22/1.31/1.07/0.99
            against 1.22/1.05/1.07/0.99 at 10; too few runs to change the
            default). β stays ≤ `BETA_CAP` × `kl_coef`. β never falls below
            `min_kl_coef` (default `kl_coef`): early in a run the KL is near
            0, and a controller free to shrink β for many iterations leaves
            too little penalty when the policy starts to move (measured: KL 29
            nats after 32 iterations against a target of 6).
        kl_horizon: the adaptive controller's horizon, in sequences: β moves
            by at most 20% × sequences per iteration / horizon. Default 16
            (measured: 64 reacted too late, the KL overshot the target by up
            to 17 nats before β pulled it back).
        max_kl: the KL budget per sequence (nats), kept by the update itself:
            no update starts while the policy's KL to the reference is above
            half of it (the rollout's KL before the first epoch, an
            importance-weighted estimate before each later one, an
            approximation on the batch just trained on); the reward's pull
            pauses there (no training, no β update) while the next rollouts
            go on. In practice a hard stop: see above.
            The margin covers the noise of a batch's KL estimate (±2-4 nats
            for 32 sequences) and the last step before a pause: measured on
            the benchmark, the training KL stayed ≤ 12.6 with budget 15.
            Default 15.0 (for 48 tokens: scale it with `max_new_tokens`);
            None: no budget (the controller alone, which overshoots).
        reward_normalization: "scale" (divide scores by their running
            standard deviation, default), "standardize" (also subtract the
            running mean) or "none".
        value_coef: weight of the value loss (PPO). Default 0.5.
        gae_lambda: GAE's λ (PPO; γ = 1). Default 0.95.
        entropy_coef: weight of an entropy bonus. Default 0.0.
        max_grad_norm: gradients are clipped to this global norm. Default 1.0.
        stop: a sample ends at the first occurrence of this string in its
            generated text (e.g. "\n\n", the end of a speech): the reward sees
            the text before it, and tokens after it count in neither the KL
            nor the loss. Sampling itself still runs all `max_new_tokens`
            (the tokens after the stop are masked, not skipped), and only the
            generated text is searched: a stop string that begins in the
            prompt and ends in the generation is not seen. None (default)
            uses all `max_new_tokens`.
        seed: seeds sampling, prompt order and initialization. Default 0.
    """

    method: str = "rloo"
    prompts_per_batch: int = 16
    group_size: int = 4
    max_new_tokens: int = 48
    learning_rate: float = 3e-4
    epochs: int = 2
    clip_ratio: float = 0.2
    kl_coef: float = 0.1
    min_kl_coef: float | None = None
    target_kl: float | None = 10.0
    kl_horizon: int = 16
    max_kl: float | None = 15.0
    reward_normalization: str = "scale"
    value_coef: float = 0.5
    gae_lambda: float = 0.95
    entropy_coef: float = 0.0
    max_grad_norm: float = 1.0
    stop: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_names([self.method], METHODS, "Unknown fine-tuning method", f"Choose from {METHODS}.")
        check_names(
            [self.reward_normalization],
            NORMALIZATIONS,
            "Unknown reward_normalization",
            f"Choose from {NORMALIZATIONS}.",
        )
        for name in ("prompts_per_batch", "max_new_tokens", "epochs", "kl_horizon"):
            check_whole_number(name, getattr(self, name))
        check_whole_number(
            "group_size",
            self.group_size,
            minimum=2,
            hint=" RLOO and GRPO compare samples of the same prompt.",
        )
        check_whole_number("seed", self.seed, minimum=0)
        for name in ("learning_rate", "clip_ratio", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be > 0.")
        if self.kl_coef < 0:
            raise ConfigError(f"kl_coef={self.kl_coef} must be ≥ 0.")
        if self.stop is not None and (not isinstance(self.stop, str) or not self.stop):
            raise ConfigError(f"stop={self.stop!r} must be a non-empty string, or None.")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ConfigError(f"target_kl={self.target_kl} must be > 0, or None for a fixed β.")
        if self.target_kl is not None and not self.kl_coef > 0:
            raise ConfigError(
                f"kl_coef={self.kl_coef} with adaptive β (target_kl={self.target_kl}): the "
                "controller multiplies β, so it would stay 0 forever. Start β above 0 (and "
                "set min_kl_coef to let it fall lower), or pass target_kl=None for a fixed β."
            )
        if self.max_kl is not None and not self.max_kl > 0:
            raise ConfigError(f"max_kl={self.max_kl} must be > 0, or None for no limit.")
        if self.min_kl_coef is not None and not 0 < self.min_kl_coef <= self.kl_coef:
            raise ConfigError(
                f"min_kl_coef={self.min_kl_coef} must be > 0 and ≤ kl_coef={self.kl_coef} "
                "(adaptive β's floor), or None to use kl_coef."
            )


class RunningMoments:
    """Running mean and standard deviation of all scores seen (Chan et al.'s merge)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, x: np.ndarray) -> None:
        n = x.size
        if n == 0:
            return
        mean, m2 = float(x.mean()), float(((x - x.mean()) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        """The running standard deviation; 1.0 until there are two samples or any spread."""
        std = math.sqrt(self.m2 / self.count) if self.count > 1 else 1.0
        # Identical scores (e.g. a format reward every sample meets) have no scale to divide
        # by: dividing by ~0 would multiply rewards (and PPO's value targets) by millions.
        return std if std > 1e-3 else 1.0


def speaker_prompts(text: str, min_speeches: int = 5) -> list[str]:
    """ "NAME:" prompts for every speaker with at least `min_speeches` speeches."""
    from tfrl.text.corpus import speeches

    counts: dict[str, int] = {}
    for who, _ in speeches(text):
        counts[who] = counts.get(who, 0) + 1
    return sorted(f"{who}:" for who, n in counts.items() if n >= min_speeches)


class FineTuner:
    """Fine-tunes a copy of a pretrained `CharLM` to raise a reward, KL-regularized.

    Works with tfrl's callbacks (`Checkpoint`, `CSVLogger`, `TensorBoard`,
    custom ones) and records a `History`; an "env step" is one generated token.

    Args:
        reference: the pretrained model; it stays frozen as the KL reference
            and the policy starts as a copy of it.
        tokenizer: its tokenizer.
        reward: a callable on a list of texts (batched), or a Keras model
            (see `tfrl.text.rewards`).
        prompts: training prompts (strings), sampled uniformly.
        config: default `FineTuneConfig()`.

    Example:
        >>> model, tokenizer, _ = tfrl.text.pretrained_lm()
        >>> tuner = FineTuner(model, tokenizer, tfrl.text.KeywordReward(["love"]), ["ROMEO:"])
        >>> history = tuner.fit(iterations=30)
    """

    def __init__(
        self,
        reference: CharLM,
        tokenizer: CharTokenizer,
        reward: Any,
        prompts: Sequence[str],
        config: FineTuneConfig | None = None,
    ):
        self.config = c = config or FineTuneConfig()
        self.tokenizer = tokenizer
        self.reward_fn: RewardFn = as_reward(reward, tokenizer)
        if isinstance(prompts, str) or not prompts:
            raise ConfigError("prompts must be a non-empty list of strings, e.g. ['ROMEO:'].")
        for p in prompts:
            tokenizer.check(p)
        if c.stop is not None:
            tokenizer.check(c.stop)
        self.prompts = list(prompts)
        set_seed(c.seed)  # also op determinism: results must not depend on what ran before
        # Frozen by construction: only the policy's and value head's variables are trained
        # (the user's model, and its `trainable` flag, are left as they are).
        self.reference = reference
        self.policy = build_lm(reference.vocab_size, _shape_of(reference))
        self.policy.set_weights(reference.get_weights())
        self.value_head = tf.keras.layers.Dense(1, kernel_initializer="zeros", name="value")
        self.value_head.build([None, None, reference.units])
        self.optimizer = tf.keras.optimizers.Adam(c.learning_rate)
        self.beta = tf.Variable(c.kl_coef, dtype=tf.float32, trainable=False, name="beta")
        self.moments = RunningMoments()
        self.history = History()
        self.iteration = 0
        self.env_steps = 0
        self.train_steps = 0
        self.stop_training = False
        self.resuming = False
        self._paused_run, self._pause_warned = 0, False
        self._rng = np.random.default_rng(c.seed)
        # Prompt widths vary between batches: one graph with an open time dimension.
        self._rollout = tf.function(self._rollout_fn, reduce_retracing=True)
        self._train = tf.function(self._train_fn, reduce_retracing=True)
        self._kl_estimate = tf.function(self._kl_estimate_fn, reduce_retracing=True)

    def reset(self, seed: int | None = None) -> None:
        """Starts over from the reference (policy, value head, optimizer, β, statistics).

        Keeps the traced `tf.function`s, so a second run (e.g. another seed)
        skips tracing. `seed` replaces `config.seed`.
        """
        if seed is not None:
            check_whole_number("seed", seed, minimum=0)
            self.config = dataclasses.replace(self.config, seed=seed)
        self.policy.set_weights(self.reference.get_weights())
        for v in self.value_head.variables + self.optimizer.variables:
            v.assign(tf.zeros_like(v))
        self.beta.assign(self.config.kl_coef)
        self.moments = RunningMoments()
        self.history = History()
        self.iteration = self.env_steps = self.train_steps = 0
        self._paused_run, self._pause_warned = 0, False
        self._rng = np.random.default_rng(self.config.seed)

    # ---- state, for tfrl.callbacks.Checkpoint -------------------------------------------
    def checkpoint_manager(self, directory: str, max_to_keep: int = 3) -> CheckpointManager:
        trackables = {
            "policy": self.policy,
            "value_head": self.value_head,
            "optimizer": self.optimizer,
            "beta": self.beta,
        }
        return CheckpointManager(directory, trackables, max_to_keep)

    def end_episodes(self) -> None:
        """Nothing to end: each iteration's rollouts are whole sequences, so no episode
        is in progress between iterations (the `Checkpoint` callback calls this first)."""

    def state(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "train_steps": self.train_steps,
            "moments": [self.moments.count, self.moments.mean, self.moments.m2],
            "rng": self._rng.bit_generator.state,
            "history": self.history.to_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.iteration = state["iteration"]
        self.env_steps = state["env_steps"]
        self.train_steps = state["train_steps"]
        self.moments.count, self.moments.mean, self.moments.m2 = state["moments"]
        self._rng.bit_generator.state = state["rng"]
        self.history = History.from_dict(state["history"])

    # ---- the graph parts ---------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded ids and mask, a newline token first (as `TextGenerator` reads them)."""
        rows = [self.tokenizer.ids(START + p) for p in prompts]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int32)
        mask = np.zeros((len(rows), width), bool)
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = r
            mask[i, width - len(r) :] = True
        return ids, mask

    def _token_stats(self, model: CharLM, ids, mask, tokens, with_hidden=False):
        """Log-probs [B, N] of `tokens` after the prompts, entropies and GRU states."""
        seq = tf.concat([ids, tokens], axis=1)
        full_mask = tf.concat([mask, tf.ones_like(tokens, tf.bool)], axis=1)
        hidden, _ = model.hidden(seq, mask=full_mask)
        width = tf.shape(ids)[1]
        n = tf.shape(tokens)[1]
        states = hidden[:, width - 1 : width - 1 + n]
        logits = model.head(states)
        logp = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tokens, logits=logits)
        log_probs = tf.nn.log_softmax(logits)
        entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
        return logp, entropy, states

    def _rollout_fn(self, ids, mask, seed):
        """Tokens, log π, log π_ref, entropies and values of one batch, in one loop."""
        out = sample_rollout(
            self.policy, self.reference, ids, mask, self.config.max_new_tokens, seed
        )
        values = self.value_head(out["states"])[..., 0]
        return out["tokens"], out["logp"], out["ref_logp"], out["entropy"], values

    def _kl_estimate_fn(self, ids, mask, tokens, valid, old_logp, ref_logp):
        """The current policy's KL to the reference per sequence, estimated on the batch.

        Σ_t ratio_t·(log π − log π_ref) over the rollout's tokens, with the
        per-token importance ratio π/π_old: exact for the policy that sampled
        them (ratio 1). After an update it is an approximation: per-token
        ratios on prefixes the old policy sampled, evaluated on the batch the
        policy was just trained on (tests/text compare it with the updated
        policy's exact first-token KL).
        """
        logp, _, _ = self._token_stats(self.policy, ids, mask, tokens)
        ratio = tf.exp(logp - old_logp)
        per_sequence = tf.reduce_sum(ratio * (logp - ref_logp) * valid, axis=1)
        return tf.reduce_mean(per_sequence)

    def _train_fn(self, ids, mask, tokens, valid, old_logp, ref_logp, advantages, returns):
        c = self.config
        variables = self.policy.trainable_variables + self.value_head.trainable_variables
        count = tf.maximum(tf.reduce_sum(valid), 1.0)
        mean = lambda x: tf.reduce_sum(x * valid) / count  # tokens after a stop don't count
        with tf.GradientTape() as tape:
            logp, entropy, states = self._token_stats(self.policy, ids, mask, tokens)
            ratio = tf.exp(logp - old_logp)
            clipped = tf.clip_by_value(ratio, 1 - c.clip_ratio, 1 + c.clip_ratio)
            policy_loss = -mean(tf.minimum(ratio * advantages, clipped * advantages))
            loss = policy_loss - c.entropy_coef * mean(entropy)
            value_loss = tf.constant(0.0)
            if c.method == "ppo":
                values = self.value_head(states)[..., 0]
                value_loss = 0.5 * mean(tf.square(values - returns))
                loss += c.value_coef * value_loss
            if c.method == "grpo":
                log_ratio = ref_logp - logp
                loss += self.beta * mean(tf.exp(log_ratio) - log_ratio - 1)
        grads = tape.gradient(loss, variables)
        grads, _ = tf.clip_by_global_norm(grads, c.max_grad_norm)
        self.optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        clip_frac = mean(tf.cast(tf.abs(ratio - 1) > c.clip_ratio, tf.float32))
        return {"loss/policy": policy_loss, "loss/value": value_loss, "policy/clipfrac": clip_frac}

    # ---- advantages --------------------------------------------------------------------
    def _normalize(self, scores: np.ndarray) -> np.ndarray:
        mode = self.config.reward_normalization
        if mode == "none":
            return scores
        self.moments.update(scores)
        std = self.moments.std
        return (scores - self.moments.mean) / std if mode == "standardize" else scores / std

    def advantages(
        self,
        scores: np.ndarray,
        kl: np.ndarray,
        values: np.ndarray,
        valid: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(advantages, returns), each [batch, tokens], for the configured method.

        Args:
            scores: [batch] rewards (normalized), rows grouped by prompt.
            kl: [batch, tokens] per-token KL estimates log π − log π_ref.
            values: [batch, tokens] value-head estimates (PPO).
            valid: [batch, tokens] 1 up to and including a stop string, 0 after
                it (see `stop_mask`). Default: all tokens count.
        """
        c = self.config
        beta = float(self.beta.numpy())
        batch, n = kl.shape
        g = c.group_size
        valid = np.ones_like(kl) if valid is None else valid.astype(np.float32)
        kl = kl * valid
        if c.method == "ppo":
            values = values * valid  # the sequence ends at its last valid token
            rewards = -beta * kl
            last_token = np.maximum(valid.sum(axis=1).astype(int) - 1, 0)
            rewards[np.arange(batch), last_token] += scores
            adv = np.zeros_like(kl)
            last = np.zeros(batch, np.float32)
            for t in reversed(range(n)):
                next_value = values[:, t + 1] if t + 1 < n else 0.0
                delta = rewards[:, t] + next_value - values[:, t]
                last = delta + c.gae_lambda * last
                adv[:, t] = last
            returns = adv + values
            counted = adv[valid > 0]
            adv = (adv - counted.mean()) / (counted.std() + 1e-8) * valid
            return adv.astype(np.float32), returns.astype(np.float32)
        if c.method == "rloo":
            total = (scores - beta * kl.sum(axis=1)).reshape(-1, g)
            baseline = (total.sum(axis=1, keepdims=True) - total) / (g - 1)
            adv = (total - baseline).reshape(batch)
        else:  # grpo: the KL is in the loss
            grouped = scores.reshape(-1, g)
            adv = (grouped - grouped.mean(axis=1, keepdims=True)) / (
                grouped.std(axis=1, keepdims=True) + 1e-4
            )
            adv = adv.reshape(batch)
        adv = (adv[:, None] * valid).astype(np.float32)
        return adv, np.zeros_like(adv)

    def stop_mask(self, tokens: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(texts cut before the stop string, valid [batch, tokens] float32).

        `valid` is 1 up to and including the stop string's last character, 0
        after it; without a `config.stop`, every text is whole and every token valid.
        """
        texts = self.decode(tokens)
        valid = np.ones(tokens.shape, np.float32)
        stop = self.config.stop
        if stop is None:
            return texts, valid
        for row, text in enumerate(texts):
            at = text.find(stop)
            if at >= 0:
                texts[row] = text[:at]
                valid[row, at + len(stop) :] = 0  # one token per character
        return texts, valid

    def update_beta(self, kl_per_sequence: float, sequences: int) -> None:
        """Ziegler et al.'s adaptive controller (a no-op when `target_kl` is None).

        β stays within [`min_kl_coef`, `BETA_CAP` × `kl_coef`]; a non-finite KL
        raises `NonFiniteError`. `train_iteration` skips it on paused iterations.
        """
        c = self.config
        if c.target_kl is None:
            return
        if not math.isfinite(kl_per_sequence):
            raise NonFiniteError(
                f"The KL estimate is {kl_per_sequence}: the policy diverged (NaN or infinite "
                "log-probabilities). Lower learning_rate or max_grad_norm, or set max_kl."
            )
        error = float(np.clip(kl_per_sequence / c.target_kl - 1, -0.2, 0.2))
        beta = float(self.beta.numpy()) * (1 + error * sequences / c.kl_horizon)
        floor = c.kl_coef if c.min_kl_coef is None else c.min_kl_coef
        self.beta.assign(min(max(beta, floor), BETA_CAP * c.kl_coef))

    # ---- the loop ----------------------------------------------------------------------
    def decode(self, tokens: np.ndarray) -> list[str]:
        return [self.tokenizer.text(row) for row in tokens]

    def train_iteration(self) -> dict[str, Any]:
        """One collect-and-train iteration; returns its logs."""
        c = self.config
        start = time.perf_counter()
        chosen = self._rng.integers(0, len(self.prompts), c.prompts_per_batch)
        prompts = [self.prompts[i] for i in chosen for _ in range(c.group_size)]
        ids, mask = self.encode_prompts(prompts)
        seed = tf.constant([c.seed, self.iteration * 1_000_003], tf.int64)
        tokens, logp, ref_logp, entropy, values = (
            t.numpy() for t in self._rollout(tf.constant(ids), tf.constant(mask), seed)
        )
        rollout_seconds = time.perf_counter() - start
        texts, valid = self.stop_mask(tokens)
        raw = np.asarray(self.reward_fn(texts), np.float32).reshape(len(texts))
        scores = self._normalize(raw)
        kl = (logp - ref_logp) * valid
        kl_seq = float(kl.sum(axis=1).mean())
        adv, returns = self.advantages(scores, kl, values, valid)
        if not (np.isfinite(adv).all() and np.isfinite(returns).all()):
            raise NonFiniteError(
                f"Iteration {self.iteration}: non-finite advantages (β = "
                f"{float(self.beta.numpy())}, KL {kl_seq:.3g}, scores {raw.min():.3g}.."
                f"{raw.max():.3g}); no update was applied. Check the reward for NaN/inf "
                "and lower kl_coef or learning_rate."
            )
        batch_args = [ids, mask, tokens, valid, logp, ref_logp, adv, returns]
        batch_args = [tf.constant(a) for a in batch_args]
        stats = {"loss/policy": math.nan, "loss/value": math.nan, "policy/clipfrac": math.nan}
        # The KL budget: no update starts while the policy's KL is above the gate, half
        # the budget (the rollout's KL first, then the estimate after each epoch).
        gate = None if c.max_kl is None else KL_GATE * c.max_kl
        paused = gate is not None and kl_seq > gate
        epochs = 0
        for epoch in range(0 if paused else c.epochs):
            if epoch > 0 and gate is not None and self._kl_estimate(*batch_args[:6]) > gate:
                break
            stats = self._train(*batch_args)
            self.train_steps += 1
            epochs += 1
            losses = {k: float(v) for k, v in stats.items() if k.startswith("loss/")}
            if not all(math.isfinite(v) for v in losses.values()):
                raise NonFiniteError(
                    f"Iteration {self.iteration}: non-finite loss {losses} (β = "
                    f"{float(self.beta.numpy())}, KL {kl_seq:.3g}). Lower learning_rate, "
                    "kl_coef or max_grad_norm."
                )
        # β moves only with training: while paused its KL stays put, and a controller
        # fed the same error every iteration would multiply β without end.
        if not paused:
            self.update_beta(kl_seq, len(texts))
        self._paused_run = self._paused_run + 1 if paused else 0
        if self._paused_run == PAUSE_WARNING and not self._pause_warned:
            self._pause_warned = True
            logger.warning(
                "%d iterations in a row paused at the KL budget (KL %.3g > gate %.3g = "
                "%.2g × max_kl): the policy no longer trains. Raise max_kl, lower "
                "learning_rate, or stop the run.",
                PAUSE_WARNING,
                kl_seq,
                gate,
                KL_GATE,
            )
        self.iteration += 1
        self.env_steps += tokens.size
        seconds = time.perf_counter() - start
        speech = [len(t.lstrip("\n").split("\n\n", 1)[0]) for t in texts]
        logs = {
            "env_steps": self.env_steps,
            "iteration": self.iteration,
            "objective/scores": float(raw.mean()),
            "objective/kl": kl_seq,
            "objective/non_score_reward": -float(self.beta.numpy()) * kl_seq,
            "objective/entropy": float((entropy * valid).sum() / valid.sum()),
            "beta": float(self.beta.numpy()),
            "gen/length": float(valid.sum(axis=1).mean()),
            "gen/speech_length": float(np.mean(speech)),
            "rollout_tokens_per_sec": tokens.size / rollout_seconds,
            "steps_per_sec": tokens.size / seconds,
            "sample": prompts[0] + texts[0],
        }
        logs.update({k: float(v) for k, v in stats.items()})
        logs["policy/epochs"] = float(epochs)
        logs["policy/paused"] = float(paused)
        return logs

    def fit(
        self,
        iterations: int,
        callbacks: list[Callback] | None = None,
        verbose: int = 0,
        resume: bool = False,
    ) -> History:
        """Runs until `iterations` iterations in total have been done.

        Args:
            iterations: the total (a resumed run continues up to it).
            callbacks: e.g. `tfrl.callbacks.Checkpoint(dir)`, `TensorBoard(dir)`,
                `CSVLogger(path, columns=(...))`.
            verbose: 1 shows a progress line (tokens/s, reward, KL, loss).
            resume: restore the latest checkpoint of a `Checkpoint` callback first.
        """
        check_whole_number("iterations", iterations)
        self.stop_training = False
        self.resuming = resume
        calls = CallbackList(callbacks)
        calls.set_trainer(self)
        tokens_per_iteration = (
            self.config.prompts_per_batch * self.config.group_size * self.config.max_new_tokens
        )
        progress = (
            ProgressLine(iterations * tokens_per_iteration, unit="tokens") if verbose else None
        )
        logs: dict[str, Any] = {}
        try:
            calls.on_train_begin()
            while self.iteration < iterations and not self.stop_training:
                logs = self.train_iteration()
                self.history.log(logs)
                calls.on_iteration_end(self.env_steps, logs)
                if progress is not None:
                    progress.update(
                        self.env_steps, _shown(logs), evaluated=self.iteration % 10 == 0
                    )
            calls.on_train_end(logs)
            calls.after_train_end(logs)
            if progress is not None:
                progress.close(self.env_steps, _shown(logs))
        finally:
            calls.close()
        return self.history

    # ---- evaluation and export ---------------------------------------------------------
    def evaluate(
        self,
        prompts: Sequence[str],
        samples_per_prompt: int = 4,
        seed: int = 12345,
        model: CharLM | None = None,
    ) -> dict[str, Any]:
        """Mean reward, KL to the reference, reference perplexity and diversity on `prompts`.

        Samples from the full distribution of `model` (default: the policy;
        pass `tuner.reference` for the pretrained baseline, whose KL is 0).
        The perplexity is the reference model's on the generated tokens:
        exp(−mean log π_ref), high for gibberish. Diversity (`distinct_1`,
        `distinct_2`, `repeat_run`, `max_repeat_run`; see
        `tfrl.text.diversity`) falls when a policy collapses onto a few
        rewarded phrases. Tokens after a `config.stop` count in none of these.
        `texts` are all the generated texts (e.g. to score with a second judge).
        """
        model = model or self.policy
        rows = [p for p in prompts for _ in range(samples_per_prompt)]
        ids, mask = self.encode_prompts(rows)
        fn = _eval_fn(self, model)
        tokens, logp, ref_logp = (
            t.numpy()
            for t in fn(tf.constant(ids), tf.constant(mask), tf.constant([seed, 0], tf.int64))
        )
        texts, valid = self.stop_mask(tokens)
        rewards = np.asarray(self.reward_fn(texts), np.float32).reshape(len(texts))
        kl = ((logp - ref_logp) * valid).sum(axis=1)
        return {
            "reward": float(rewards.mean()),
            "reward_sem": float(rewards.std() / math.sqrt(len(rewards))),
            "kl": float(kl.mean()),
            "ref_perplexity": float(np.exp(-(ref_logp * valid).sum() / valid.sum())),
            **diversity(texts),
            "samples": [
                r + t for r, t in zip(rows[::samples_per_prompt], texts[::samples_per_prompt])
            ],
            "texts": texts,
        }

    def generator(self, config: GenerationConfig | None = None) -> TextGenerator:
        """The fine-tuned policy as a `TextGenerator` (for `generate()` and `tfrl.export`)."""
        return TextGenerator(self.policy, self.tokenizer, config)


def _eval_fn(tuner: FineTuner, model: CharLM):
    cache = tuner.__dict__.setdefault("_eval_fns", {})
    key = id(model)
    if key not in cache:

        @tf.function(reduce_retracing=True)
        def fn(ids, mask, seed):
            n = tuner.config.max_new_tokens
            out = sample_rollout(model, tuner.reference, ids, mask, n, seed)
            return out["tokens"], out["logp"], out["ref_logp"]

        cache[key] = fn
    return cache[key]


def _shape_of(model: CharLM) -> LMConfig:
    return LMConfig(embedding_dim=model.embedding.output_dim, units=model.units)


def _shown(logs: dict[str, Any]) -> dict[str, Any]:
    """What the progress line shows: tokens/s, reward, KL and the policy loss."""
    return {
        "steps_per_sec": logs.get("steps_per_sec", 0.0),
        "train_return": logs.get("objective/scores", math.nan),
        "kl": logs.get("objective/kl", math.nan),
        "loss": logs.get("loss/policy", math.nan),
        "paused": logs.get("policy/paused", 0.0),
    }


def fine_tune(
    reward: Any,
    method: str = "rloo",
    iterations: int = 100,
    prompts: Sequence[str] | None = None,
    config: FineTuneConfig | None = None,
    lm_config: LMConfig | None = None,
    callbacks: list[Callback] | None = None,
    verbose: int = 1,
) -> FineTuner:
    """One line: pretrained LM (cached) → fine-tuned for `reward` → the `FineTuner`.

    Args:
        reward: a callable on a list of texts, a Keras model, or a built-in
            from `tfrl.text.rewards`.
        method: "ppo", "rloo" or "grpo". Default "rloo".
        iterations: collect-and-train iterations. Default 100.
        prompts: default: "NAME:" for the corpus' speakers (`speaker_prompts`).
        config: overrides every fine-tuning knob (its `method` wins over `method`).
        lm_config: the pretrained model to start from. Default `LMConfig()`.
        callbacks, verbose: as in `FineTuner.fit`.
    """
    from tfrl.text.corpus import load_corpus

    config = config or FineTuneConfig(method=method)
    model, tokenizer, _ = pretrained_lm(lm_config)
    if prompts is None:
        prompts = speaker_prompts(load_corpus((lm_config or LMConfig()).corpus))
    tuner = FineTuner(model, tokenizer, reward, prompts, config)
    tuner.fit(iterations, callbacks=callbacks, verbose=verbose)
    return tuner
