"""Rewards on generated texts: any batched callable, a Keras model, or a built-in.

A reward maps a list of decoded texts (the generated continuations) to one
number each: `reward(texts) -> np.ndarray [len(texts)]`. Built-ins:

- `KeywordReward`: counts words from a lexicon (a rule);
- `LengthReward`: how close the first line's length is to a target (a format rule);
- `ModelReward`: a Keras model on token ids, e.g. `train_speaker_reward("ROMEO")`,
  a classifier trained with `model.fit` on one speaker's lines against the rest
  of the corpus, so "write like Romeo" is a learned reward, not a rule.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfrl.errors import ConfigError, check_names, check_whole_number
from tfrl.text.corpus import load_corpus, speeches
from tfrl.text.tokenizer import CharTokenizer
from tfrl.training.seeding import set_seed

__all__ = [
    "KeywordReward",
    "LengthReward",
    "ModelReward",
    "RewardFn",
    "SpeakerRewardConfig",
    "as_reward",
    "train_speaker_reward",
]

RewardFn = Callable[[Sequence[str]], Any]


class KeywordReward:
    """Counts whole-word, case-insensitive occurrences of lexicon words.

    Args:
        words: the lexicon, e.g. ("love", "heart").
        cap: the most matches counted per text. Default None (no cap).
    """

    def __init__(self, words: Sequence[str], cap: int | None = None):
        words = [w.strip().lower() for w in words if w.strip()]
        if not words:
            raise ConfigError("KeywordReward needs at least one non-empty word.")
        self.words = tuple(words)
        self.cap = cap
        self._pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.I)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        counts = np.array([len(self._pattern.findall(t)) for t in texts], np.float32)
        return counts if self.cap is None else np.minimum(counts, self.cap)

    def __repr__(self) -> str:
        return f"KeywordReward({list(self.words)!r})"


class LengthReward:
    """1 − |len(first line) − target| / target, at least −1: rewards lines of a set length.

    Args:
        target: the wanted number of characters before the first newline. Default 40.
    """

    def __init__(self, target: int = 40):
        check_whole_number("target", target)
        self.target = target

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        lengths = np.array([len(t.lstrip("\n").split("\n", 1)[0]) for t in texts], np.float32)
        return np.maximum(1 - np.abs(lengths - self.target) / self.target, -1.0)


class ModelReward:
    """A Keras model's score for each text.

    Args:
        model: maps int32 ids [batch, length] to [batch] or [batch, 1] scores.
        tokenizer: encodes the texts; characters outside its vocabulary are dropped.
        length: texts are cut or padded (with id `pad_id`) to this many tokens. Default 64.
        pad_id: the padding id. Default `tokenizer.vocab_size`.
        activation: applied to the outputs: "sigmoid" (logits → probabilities,
            default), or None.
    """

    def __init__(
        self,
        model: tf.keras.Model,
        tokenizer: CharTokenizer,
        length: int = 64,
        pad_id: int | None = None,
        activation: str | None = "sigmoid",
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.length = length
        self.pad_id = tokenizer.vocab_size if pad_id is None else pad_id
        self.activation = activation
        self._call = tf.function(lambda ids: model(ids, training=False))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = np.full((len(texts), self.length), self.pad_id, np.int32)
        index = {c: i for i, c in enumerate(self.tokenizer.vocabulary)}
        for row, text in enumerate(texts):
            known = [index[c] for c in text if c in index][: self.length]
            ids[row, : len(known)] = known
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        scores = np.asarray(self._call(tf.constant(self.encode(texts)))).reshape(len(texts))
        if self.activation == "sigmoid":
            scores = 1 / (1 + np.exp(-scores))
        return scores.astype(np.float32)


def as_reward(reward: Any, tokenizer: CharTokenizer | None = None) -> RewardFn:
    """A batched reward callable from a callable or a Keras model."""
    if isinstance(reward, tf.keras.Model):
        if tokenizer is None:
            raise ConfigError("A Keras model reward needs the tokenizer to encode texts.")
        return ModelReward(reward, tokenizer)
    if callable(reward):
        return reward
    raise ConfigError(
        f"reward={reward!r} is neither a callable on a list of texts nor a Keras model; "
        "pass e.g. tfrl.text.KeywordReward(['love']) or a function texts -> scores."
    )


@dataclasses.dataclass
class SpeakerRewardConfig:
    """The learned speaker reward's classifier and its training.

    Attributes:
        length: characters per example (chunks of speeches): the length of
            the texts it will score. Default 48, `FineTuneConfig.max_new_tokens`.
        examples: training chunks per class. Default 12,000.
        epochs: `model.fit` epochs (it overfits the speaker's few lines
            after about two). Default 2.
        architecture: "cnn" (character 5-grams, max-pooled; default) or
            "bag" (character 3-grams, averaged over the window): a second,
            differently built classifier is a second opinion on what a
            policy learned from the first (not an independent one: with
            another `holdout` the two still share 8 of their 9 training
            tenths). A GRU was tried and was unstable:
            benchmarks/results/text_generation_speaker_classifier.md.
        holdout: which tenth of each side's speeches (in corpus order) is held
            out for the metrics, 0-9. Default 9 (the last tenth). A judge
            trained with another `holdout` and `seed` saw one other tenth.
        seed: seeds sampling and initialization. Default 0.
    """

    length: int = 48
    examples: int = 12_000
    epochs: int = 2
    architecture: str = "cnn"
    holdout: int = 9
    seed: int = 0

    def __post_init__(self) -> None:
        check_names([self.architecture], ARCHITECTURES, "Unknown architecture",
                    f"Choose from {ARCHITECTURES}.")  # fmt: skip
        if not (isinstance(self.holdout, int) and 0 <= self.holdout <= 9):
            raise ConfigError(f"holdout={self.holdout!r} must be a whole number from 0 to 9.")


ARCHITECTURES = ("cnn", "bag")


def _classifier(architecture: str, vocab_size: int, name: str) -> tf.keras.Model:
    """A binary text classifier on token ids [batch, length] → logits [batch, 1]."""
    if architecture == "cnn":
        body = [
            tf.keras.layers.Conv1D(96, 5, activation="relu"),
            tf.keras.layers.GlobalMaxPooling1D(),
        ]
    else:  # "bag"
        body = [
            tf.keras.layers.Conv1D(64, 3, activation="relu"),
            tf.keras.layers.GlobalAveragePooling1D(),
        ]
    return tf.keras.Sequential(
        [tf.keras.layers.Embedding(vocab_size + 1, 32), *body, tf.keras.layers.Dropout(0.3),
         tf.keras.layers.Dense(1)],
        name=name,
    )  # fmt: skip


def holdout_split(items: Sequence[str], holdout: int) -> tuple[list[str], list[str]]:
    """(training, held out): tenth number `holdout` (0-9, in order) of `items` is held out."""
    lo, hi = len(items) * holdout // 10, len(items) * (holdout + 1) // 10
    return list(items[:lo]) + list(items[hi:]), list(items[lo:hi])


def openings(speeches_: Sequence[str], length: int) -> list[str]:
    """Real speeches shaped like generations after a "NAME:" prompt: "\n" + their start."""
    return ["\n" + s[: length - 1] for s in speeches_]


def _chunks(texts: list[str], n: int, length: int, rng: np.random.Generator) -> list[str]:
    out = []
    for i in rng.integers(0, len(texts), n):
        t = texts[i]
        start = rng.integers(0, max(len(t) - length, 0) + 1)
        out.append(t[start : start + length])
    return out


def train_speaker_reward(
    speaker: str = "ROMEO",
    tokenizer: CharTokenizer | None = None,
    text: str | None = None,
    config: SpeakerRewardConfig | None = None,
) -> tuple[ModelReward, dict[str, float]]:
    """Trains a classifier "is this `speaker`'s line?" with `model.fit`; returns it as a reward.

    Positives are chunks of `speaker`'s speeches, negatives chunks of everyone
    else's, balanced; one tenth of each side's speeches (`config.holdout`,
    default the last) is held out.

    Returns:
        (reward, metrics): the reward gives P(speaker | text) in [0, 1].
        metrics: `val_accuracy` and `val_auc` (see `auc`) on held-out chunks,
        `opening_auc` on held-out speech openings, and the reward's mean on
        held-out real text of the speaker (`speaker_score`: what the real
        thing scores, the ceiling a fine-tuned policy is compared with) and of
        everyone else (`others_score`); the same for held-out speeches shaped
        like generations, "\\n" and their first `length` − 1 characters
        (`speaker_opening_score`, `others_opening_score`). A policy scoring
        above the real text exploits the classifier rather than writing like
        the speaker; score its texts with a second classifier (another
        `architecture`, `holdout` and `seed`) to see it.
    """
    config = config or SpeakerRewardConfig()
    text = load_corpus() if text is None else text
    tokenizer = tokenizer or CharTokenizer.from_text(text)
    pairs = speeches(text)
    mine = [s for who, s in pairs if who == speaker]
    rest = [s for who, s in pairs if who != speaker]
    if len(mine) < 10:
        names = sorted({who for who, _ in pairs}, key=lambda w: -sum(x == w for x, _ in pairs))
        raise ConfigError(
            f"speaker={speaker!r} has {len(mine)} speeches in the corpus; pick one with "
            f"more, e.g. {names[:5]}."
        )
    rng = np.random.default_rng(config.seed)

    (mine_train, mine_val) = holdout_split(mine, config.holdout)
    (rest_train, rest_val) = holdout_split(rest, config.holdout)
    n = config.examples
    texts = _chunks(mine_train, n, config.length, rng) + _chunks(rest_train, n, config.length, rng)
    labels = np.array([1.0] * n + [0.0] * n, np.float32)
    val_texts = _chunks(mine_val, 500, config.length, rng) + _chunks(
        rest_val, 500, config.length, rng
    )
    val_labels = np.array([1.0] * 500 + [0.0] * 500, np.float32)

    set_seed(config.seed)  # also op determinism: results must not depend on what ran before
    name = f"speaker_{re.sub(r'[^A-Za-z0-9]', '_', speaker)}_{config.architecture}"
    model = _classifier(config.architecture, tokenizer.vocab_size, name)
    reward = ModelReward(model, tokenizer, config.length)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(3e-3),
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0.0)],
    )
    model.fit(
        reward.encode(texts), labels, batch_size=128, epochs=config.epochs, shuffle=True, verbose=0
    )
    _, accuracy = model.evaluate(reward.encode(val_texts), val_labels, verbose=0)
    scores = reward(val_texts)
    mine_openings = reward(openings(mine_val, config.length))
    rest_openings = reward(openings(rest_val, config.length))
    return reward, {
        "val_accuracy": float(accuracy),
        "val_auc": auc(scores[:500], scores[500:]),
        "speaker_score": float(scores[:500].mean()),
        "others_score": float(scores[500:].mean()),
        "opening_auc": auc(mine_openings, rest_openings),
        "speaker_opening_score": float(mine_openings.mean()),
        "others_opening_score": float(rest_openings.mean()),
    }


def auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counting half: the ROC curve's area.

    Threshold-free, so a classifier whose held-out scores are all low (it has
    memorized its training speeches) is still judged by how it ranks them.
    """
    positives, negatives = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float((positives > negatives).mean() + 0.5 * (positives == negatives).mean())
