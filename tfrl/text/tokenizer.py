"""`CharTokenizer`: characters ⇄ token ids with core `tf.strings` ops only.

Everything runs inside the TensorFlow graph (`tf.strings.unicode_split`, a
static hash table, `tf.strings.reduce_join`), so an exported generator takes
raw UTF-8 strings and stock TensorFlow Serving needs no custom ops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from tfrl.errors import ConfigError

__all__ = ["CharTokenizer", "TextInputError", "assert_explained"]


class TextInputError(ConfigError):
    """A prompt the tokenizer or generator cannot take (unknown characters, too long)."""


def assert_explained(ok: tf.Tensor, message: Callable[[], tf.Tensor]) -> tf.Operation:
    """In graph: an Assert that `ok` holds, whose text `message()` is built only if it fails.

    Such a message reads the failing input (an index, its text, its length),
    work a valid batch, or an empty one, must not pay for or trip over.
    """
    return tf.debugging.Assert(ok, [tf.cond(ok, lambda: tf.constant(""), message)])


class CharTokenizer(tf.Module):
    """A character-level tokenizer: one token per Unicode character.

    Args:
        vocabulary: the characters, in id order (id i is `vocabulary[i]`);
            each must be one character and appear once. Build one from a
            corpus with `CharTokenizer.from_text(text)`.

    Example:
        >>> tok = CharTokenizer.from_text("hello world")
        >>> tok.decode(tok.encode(["hello"]))   # [b'hello']
    """

    def __init__(self, vocabulary: Iterable[str]):
        super().__init__(name="char_tokenizer")
        chars = list(vocabulary)
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad or not chars:
            raise ConfigError(
                f"vocabulary must be a non-empty sequence of single characters; got {bad[:5]!r}."
            )
        if len(set(chars)) != len(chars):
            raise ConfigError("vocabulary lists a character twice; give each character once.")
        self.vocabulary = tuple(chars)
        self._index = {c: i for i, c in enumerate(chars)}
        self._chars = tf.constant(chars)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self._chars, tf.range(len(chars), dtype=tf.int32)),
            default_value=-1,
        )

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """A tokenizer whose vocabulary is the sorted set of characters in `text`."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of `text` outside the vocabulary, each once, in order."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def check(self, text: str) -> None:
        """Raises `TextInputError` naming characters of `text` outside the vocabulary."""
        unknown = self.unknown_characters(text)
        if unknown:
            raise TextInputError(
                f"Text {text[:40]!r} has characters outside the tokenizer's vocabulary: "
                f"{unknown[:10]!r}. Remove or replace them (the vocabulary is "
                f"{''.join(self.vocabulary)!r})."
            )

    def ids(self, text: str) -> np.ndarray:
        """Token ids of one Python string (checked, see `check`)."""
        self.check(text)
        return np.array([self._index[c] for c in text], dtype=np.int32)

    def text(self, ids: Iterable[int]) -> str:
        """The string for a sequence of token ids."""
        return "".join(self.vocabulary[int(i)] for i in ids)

    def encode(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """In graph: a [batch] string tensor → [batch, (chars)] int32 ids.

        Characters outside the vocabulary get id -1; `encode_checked` raises instead.
        """
        chars = tf.strings.unicode_split(tf.convert_to_tensor(strings), "UTF-8")
        return tf.ragged.map_flat_values(self._table.lookup, chars)

    def encode_checked(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """`encode`, with an `InvalidArgumentError` if a character is not in the vocabulary.

        The error names the first such string's index, its text and its
        unknown characters (as `check` does for a Python string).
        """
        strings = tf.convert_to_tensor(strings)
        ids = self.encode(strings)
        bad_rows = tf.reduce_any(ids < 0, axis=1)
        ok = tf.logical_not(tf.reduce_any(bad_rows))

        def message() -> tf.Tensor:
            row = tf.argmax(tf.cast(bad_rows, tf.int32), output_type=tf.int32)
            # Bytes that are not UTF-8 would make the message itself undecodable.
            text = tf.strings.unicode_transcode(
                strings[row], "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
            )
            chars = tf.strings.unicode_split(text, "UTF-8")
            unknown, _ = tf.unique(tf.boolean_mask(chars, ids[row] < 0))
            return tf.strings.join(
                [
                    "Prompt ",
                    tf.strings.as_string(row),
                    " ('",
                    tf.strings.substr(text, 0, 40, unit="UTF8_CHAR"),
                    "') has characters outside the tokenizer's vocabulary: ['",
                    tf.strings.reduce_join(unknown[:10], separator="', '"),
                    f"']. Remove or replace them (the vocabulary is {''.join(self.vocabulary)!r}).",
                ]
            )

        with tf.control_dependencies([assert_explained(ok, message)]):
            return tf.identity(ids)

    def decode(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """In graph: [batch, length] ids (dense or ragged) → [batch] strings."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        chars = tf.ragged.map_flat_values(lambda i: tf.gather(self._chars, i), ids)
        return tf.strings.reduce_join(chars, axis=-1)
