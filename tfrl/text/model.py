"""`CharLM`: a small GRU language model, pretrained with `model.fit` and cached.

    model, tokenizer = tfrl.text.pretrained_lm()     # trains once, then loads from the cache

The model maps token ids [batch, time] to next-token logits [batch, time,
vocab]. `step()` advances one token from a cached GRU state, which is what
batched sampling runs inside its `tf.while_loop`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from typing import Any

import numpy as np
import tensorflow as tf

from tfrl.atomic import atomic_directory
from tfrl.errors import ConfigError, check_whole_number
from tfrl.text.corpus import load_corpus
from tfrl.text.tokenizer import CharTokenizer
from tfrl.training.seeding import set_seed

__all__ = [
    "CharLM",
    "LMConfig",
    "build_lm",
    "cache_directory",
    "load_lm",
    "pretrain",
    "pretrained_lm",
    "save_lm",
]

logger = logging.getLogger(__name__)

# The default LMConfig()'s model ships with the package (1.1 MB, made by
# `pretrain(LMConfig())`); other configurations are pretrained once and cached.
_BUNDLED = os.path.join(os.path.dirname(__file__), "data")


@dataclasses.dataclass
class LMConfig:
    """The language model and its pretraining.

    Attributes:
        embedding_dim: size of the character embedding. Default 64.
        units: GRU units. Default 256.
        seq_length: characters per training window. Default 100.
        batch_size: windows per gradient step. Default 64.
        epochs: passes over the training part of the corpus. Default 8.
        learning_rate: Adam's learning rate. Default 0.003.
        validation_fraction: the corpus' tail held out for perplexity. Default 0.1.
        corpus: see `tfrl.text.load_corpus`. Default "tinyshakespeare" (bundled).
        max_chars: use only the first `max_chars` characters (tiny runs); None = all.
        seed: seeds initialization and shuffling. Default 0.
    """

    embedding_dim: int = 64
    units: int = 256
    seq_length: int = 100
    batch_size: int = 64
    epochs: int = 8
    learning_rate: float = 0.003
    validation_fraction: float = 0.1
    corpus: str = "tinyshakespeare"
    max_chars: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "units", "seq_length", "batch_size", "epochs"):
            check_whole_number(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate} must be > 0.")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction={self.validation_fraction} must be in (0, 1).")

    def key(self) -> str:
        """A short hash naming this configuration's cache entry."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class CharLM(tf.keras.Model):
    """Embedding → GRU → Dense: next-character logits.

    Args:
        vocab_size: number of tokens.
        embedding_dim: embedding size. Default 64.
        units: GRU units. Default 256.
        seed: seeds the initial weights, so they do not depend on what the
            process drew before (Keras' unseeded initializers draw from the
            global random state). Default None (unseeded).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        units: int = 256,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.units = units
        init = tf.keras.initializers
        # Keras' default initializers, each seeded apart when a seed is given.
        seeded = lambda cls, i, **kw: cls(seed=None if seed is None else seed * 4 + i, **kw)
        self.embedding = tf.keras.layers.Embedding(
            vocab_size,
            embedding_dim,
            embeddings_initializer=seeded(init.RandomUniform, 0, minval=-0.05, maxval=0.05),
            name="embedding",
        )
        self.gru = tf.keras.layers.GRU(
            units,
            return_sequences=True,
            return_state=True,
            kernel_initializer=seeded(init.GlorotUniform, 1),
            recurrent_initializer=seeded(init.Orthogonal, 2),
            name="gru",
        )
        self.head = tf.keras.layers.Dense(
            vocab_size, kernel_initializer=seeded(init.GlorotUniform, 3), name="logits"
        )

    def hidden(
        self,
        ids: tf.Tensor,
        state: tf.Tensor | None = None,
        mask: tf.Tensor | None = None,
        training: bool = False,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """GRU outputs [batch, time, units] and the final state [batch, units]."""
        x = self.embedding(ids)
        return self.gru(x, initial_state=state, mask=mask, training=training)

    def call(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        outputs, _ = self.hidden(ids, training=training)
        return self.head(outputs)

    def step(self, ids: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One token per row: ids [batch] → (logits [batch, vocab], new state)."""
        output, new_state = self.gru.cell(self.embedding(ids), [state])
        return self.head(output), new_state[0] if isinstance(new_state, list) else new_state

    def initial_state(self, batch: tf.Tensor | int) -> tf.Tensor:
        return tf.zeros([batch, self.units])

    def get_config(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding.output_dim,
            "units": self.units,
        }


def build_lm(vocab_size: int, config: LMConfig | None = None) -> CharLM:
    """A new, built `CharLM` for `config` (default `LMConfig()`), initialized from its seed."""
    config = config or LMConfig()
    model = CharLM(vocab_size, config.embedding_dim, config.units, seed=config.seed)
    model(tf.zeros([1, 1], tf.int32))
    return model


def _windows(ids: np.ndarray, length: int, batch: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    n = (len(ids) - 1) // length
    if n < 1:
        raise ConfigError(
            f"The corpus has {len(ids)} characters, fewer than one window of "
            f"seq_length={length}; use a longer corpus or a shorter seq_length."
        )
    x = ids[: n * length].reshape(n, length)
    y = ids[1 : n * length + 1].reshape(n, length)
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch).prefetch(2)


def pretrain(
    config: LMConfig | None = None, text: str | None = None, verbose: int = 0
) -> tuple[CharLM, CharTokenizer, dict[str, float]]:
    """Trains a `CharLM` on a corpus with `model.fit` (next-character cross-entropy).

    Args:
        config: default `LMConfig()`.
        text: the corpus; default `load_corpus(config.corpus)`.
        verbose: passed to `model.fit`. Default 0.

    Returns:
        (model, tokenizer, metrics) with the validation loss and perplexity.
    """
    config = config or LMConfig()
    text = load_corpus(config.corpus) if text is None else text
    tokenizer = CharTokenizer.from_text(text)  # the whole corpus' characters
    if config.max_chars is not None:
        text = text[: config.max_chars]
    ids = tokenizer.ids(text)
    split = int(len(ids) * (1 - config.validation_fraction))
    set_seed(config.seed)  # also op determinism: results must not depend on what ran before
    train = _windows(ids[:split], config.seq_length, config.batch_size, True, config.seed)
    val = _windows(
        ids[split:], min(config.seq_length, len(ids) - split - 1), config.batch_size, False, 0
    )
    model = build_lm(tokenizer.vocab_size, config)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(config.learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(train, epochs=config.epochs, validation_data=val, verbose=verbose)
    val_loss = float(model.evaluate(val, verbose=0))
    return model, tokenizer, {"val_loss": val_loss, "val_perplexity": float(np.exp(val_loss))}


def save_lm(model: CharLM, tokenizer: CharTokenizer, path: str, metrics: dict | None = None) -> str:
    """Writes weights, vocabulary and shape to the directory `path`, atomically."""
    with atomic_directory(path, overwrite=True) as tmp:
        model.save_weights(os.path.join(tmp, "weights.h5"))
        info = {"vocabulary": "".join(tokenizer.vocabulary), "config": model.get_config()}
        info["metrics"] = metrics or {}
        with open(os.path.join(tmp, "lm.json"), "w", encoding="utf-8") as f:
            json.dump(info, f)
    return path


def load_lm(path: str) -> tuple[CharLM, CharTokenizer, dict[str, float]]:
    """Reads what `save_lm` wrote: (model, tokenizer, metrics)."""
    try:
        with open(os.path.join(path, "lm.json"), encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"{path} holds no saved language model (lm.json); see save_lm.") from e
    tokenizer = CharTokenizer(info["vocabulary"])
    model = CharLM(**info["config"])
    model(tf.zeros([1, 1], tf.int32))
    model.load_weights(os.path.join(path, "weights.h5"))
    return model, tokenizer, info.get("metrics", {})


def cache_directory(cache_dir: str | None = None) -> str:
    """Where pretrained models are cached: `cache_dir`, $TFRL_CACHE, or ~/.cache/tfrl."""
    return os.path.join(
        cache_dir or os.environ.get("TFRL_CACHE") or os.path.expanduser("~/.cache/tfrl"), "text"
    )


def pretrained_lm(
    config: LMConfig | None = None, cache_dir: str | None = None, verbose: int = 0
) -> tuple[CharLM, CharTokenizer, dict[str, float]]:
    """The pretrained LM for `config`: loaded from the cache, or pretrained and cached.

    The default configuration's model is bundled with tfrl, so it loads at once.

    Returns:
        (model, tokenizer, metrics); metrics hold the validation perplexity.
    """
    config = config or LMConfig()
    name = f"charlm-{config.key()}"
    path = os.path.join(cache_directory(cache_dir), name)
    for found in (path, os.path.join(_BUNDLED, name)):
        if os.path.isfile(os.path.join(found, "lm.json")):
            logger.info("Loading the pretrained LM from %s", found)
            return load_lm(found)
    logger.info("Pretraining the LM (cached at %s)", path)
    model, tokenizer, metrics = pretrain(config, verbose=verbose)
    save_lm(model, tokenizer, path, metrics)
    return model, tokenizer, metrics
