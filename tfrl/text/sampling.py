"""Batched sampling in one `tf.function`, and `TextGenerator`: strings in, strings out.

    generator = tfrl.text.TextGenerator(model, tokenizer)
    generator.generate(["ROMEO:"], max_length=64, seed=1)   # ['\\nWhat say...']
    tfrl.export(generator, "saved_models/text_generator")   # serving_default: prompts → text

The prompt is read by the GRU in one masked pass; then a `tf.while_loop`
samples one token per step for the whole batch from the cached GRU state
(no Python loop per token). Every prompt is read after a newline token, so
"ROMEO:" reads as the start of a speech; an empty prompt is allowed and means
"start of a line" (unconditional generation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf

from tfrl.errors import ConfigError, check_whole_number
from tfrl.text.model import CharLM
from tfrl.text.tokenizer import CharTokenizer, TextInputError, assert_explained

__all__ = [
    "GenerationConfig",
    "TextGenerator",
    "filter_logits",
    "left_pad",
    "read_prompts",
    "sample_rollout",
    "sample_tokens",
]

START = "\n"


@dataclasses.dataclass
class GenerationConfig:
    """How a `TextGenerator` samples.

    Attributes:
        max_length: generated characters per prompt. Default 64.
        temperature: divides the logits; 0 picks the most likely token. Default 1.0.
        top_k: sample among the k most likely tokens; 0 = all. Default 0.
        top_p: sample among the most likely tokens whose probabilities add up
            to top_p (nucleus sampling); 1.0 = all. Default 1.0.
        max_prompt_length: longer prompts are refused (a clear error, and a
            400 from the server). Default 256.
        max_length_limit: the largest `max_length` a request may ask for. Default 1024.
        stop: each text is cut at the first occurrence of this string (which
            is dropped), inside the graph, so the export's clients get the cut
            text, e.g. "\\n\\n" (the end of a speech). Default None: all
            `max_length` characters.
    """

    max_length: int = 64
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_prompt_length: int = 256
    max_length_limit: int = 1024
    stop: str | None = None

    def __post_init__(self) -> None:
        check_whole_number("max_prompt_length", self.max_prompt_length)
        check_whole_number("max_length_limit", self.max_length_limit)
        check_length(self.max_length, self.max_length_limit)
        check_temperature(self.temperature)
        check_whole_number("top_k", self.top_k, minimum=0)
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p} must be in (0, 1]; 1.0 turns it off.")
        if self.stop is not None and (not isinstance(self.stop, str) or not self.stop):
            raise ConfigError(f"stop={self.stop!r} must be a non-empty string, or None.")


def check_length(max_length: object, limit: int) -> None:
    check_whole_number("max_length", max_length)
    if max_length > limit:
        raise ConfigError(f"max_length={max_length} exceeds the limit of {limit} characters.")


def check_temperature(temperature: object) -> None:
    if not isinstance(temperature, (int, float)) or not 0 <= temperature < float("inf"):
        raise ConfigError(
            f"temperature={temperature!r} must be a number ≥ 0 (0 picks the most likely token)."
        )


def filter_logits(logits: tf.Tensor, top_k: int = 0, top_p: float = 1.0) -> tf.Tensor:
    """Sets logits outside the top-k / nucleus top-p to -inf (both are Python constants)."""
    if top_k:
        kth = tf.math.top_k(logits, k=min(top_k, logits.shape[-1])).values[:, -1:]
        logits = tf.where(logits < kth, tf.constant(-float("inf"), logits.dtype), logits)
    if top_p < 1.0:
        order = tf.argsort(logits, axis=-1, direction="DESCENDING")
        sorted_logits = tf.gather(logits, order, batch_dims=1)
        probs = tf.nn.softmax(sorted_logits)
        before = tf.math.cumsum(probs, axis=-1, exclusive=True)
        cut = tf.where(before >= top_p, -float("inf"), sorted_logits)  # keeps ≥ 1 token
        inverse = tf.argsort(order, axis=-1)
        logits = tf.gather(cut, inverse, batch_dims=1)
    return logits


def sample_tokens(
    model: CharLM,
    prompt_ids: tf.Tensor,
    prompt_mask: tf.Tensor,
    max_new_tokens: tf.Tensor | int,
    seed: tf.Tensor,
    temperature: tf.Tensor | float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> tf.Tensor:
    """Samples `max_new_tokens` after each prompt: [batch, max_new_tokens] int32 ids.

    Call inside a `tf.function`. The prompt is read in one masked GRU pass;
    the tokens come from a `tf.while_loop` over the cached GRU state.

    Args:
        model: the language model.
        prompt_ids: [batch, time] int32, left-padded (see `left_pad`).
        prompt_mask: [batch, time] bool, True on real tokens (≥ 1 per row).
        max_new_tokens: tokens to generate.
        seed: [2] int64 seed of the stateless sampler: same seed, same tokens.
        temperature: 0 picks the argmax. Default 1.0.
        top_k, top_p: see `filter_logits` (Python constants). Default off.
    """
    _, state = model.hidden(prompt_ids, mask=prompt_mask)
    logits = model.head(state)
    batch = tf.shape(prompt_ids)[0]
    temperature = tf.cast(temperature, tf.float32)
    seed = tf.cast(seed, tf.int64)
    tokens = tf.TensorArray(tf.int32, size=max_new_tokens, element_shape=[None])

    def body(i, logits, state, tokens):
        scaled = filter_logits(logits / tf.maximum(temperature, 1e-6), top_k, top_p)
        step_seed = tf.stack([seed[0], seed[1] + tf.cast(i, tf.int64)])
        drawn = tf.random.stateless_categorical(scaled, 1, step_seed, dtype=tf.int32)[:, 0]
        token = tf.where(temperature > 0, drawn, tf.argmax(logits, -1, output_type=tf.int32))
        logits, state = model.step(token, state)
        return i + 1, logits, state, tokens.write(i, token)

    _, _, _, tokens = tf.while_loop(
        lambda i, *_: i < max_new_tokens,
        body,
        (tf.constant(0), logits, state, tokens),
        maximum_iterations=max_new_tokens,
    )
    return tf.reshape(tf.transpose(tokens.stack()), [batch, -1])


def sample_rollout(
    policy: CharLM,
    reference: CharLM,
    prompt_ids: tf.Tensor,
    prompt_mask: tf.Tensor,
    max_new_tokens: tf.Tensor | int,
    seed: tf.Tensor,
) -> dict[str, tf.Tensor]:
    """Samples from `policy`'s full distribution and records what fine-tuning needs.

    Call inside a `tf.function`. One `tf.while_loop` steps the policy and the
    frozen reference side by side over the sampled tokens, so the rollout
    needs no second GRU pass to score them. Every output is [batch, tokens]
    (`states`: [batch, tokens, units]):

    - `tokens`: the sampled ids (temperature 1, no top-k/top-p: the
      distribution the log-probabilities below are computed under);
    - `logp`, `ref_logp`: log π(token) and log π_ref(token);
    - `entropy`: the policy's entropy at each step;
    - `states`: the policy's GRU state that produced each token's
      distribution (a value head reads it).

    Both models run the same ops, so a policy equal to the reference gives
    `logp == ref_logp` exactly (a KL of exactly 0).
    """
    _, state = policy.hidden(prompt_ids, mask=prompt_mask)
    _, ref_state = reference.hidden(prompt_ids, mask=prompt_mask)
    logits, ref_logits = policy.head(state), reference.head(ref_state)
    seed = tf.cast(seed, tf.int64)
    arrays = [
        tf.TensorArray(dtype, size=max_new_tokens, element_shape=shape)
        for dtype, shape in (
            (tf.int32, [None]),
            (tf.float32, [None]),
            (tf.float32, [None]),
            (tf.float32, [None]),
            (tf.float32, [None, policy.units]),
        )
    ]

    def body(i, logits, state, ref_logits, ref_state, arrays):
        step_seed = tf.stack([seed[0], seed[1] + tf.cast(i, tf.int64)])
        token = tf.random.stateless_categorical(logits, 1, step_seed, dtype=tf.int32)[:, 0]
        log_probs = tf.nn.log_softmax(logits)
        ref_log_probs = tf.nn.log_softmax(ref_logits)
        pick = lambda lp: tf.gather(lp, token, axis=1, batch_dims=1)
        entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
        values = (token, pick(log_probs), pick(ref_log_probs), entropy, state)
        arrays = [a.write(i, v) for a, v in zip(arrays, values)]
        new_logits, new_state = policy.step(token, state)
        new_ref_logits, new_ref_state = reference.step(token, ref_state)
        return i + 1, new_logits, new_state, new_ref_logits, new_ref_state, arrays

    out = tf.while_loop(
        lambda i, *_: i < max_new_tokens,
        body,
        (tf.constant(0), logits, state, ref_logits, ref_state, arrays),
        maximum_iterations=max_new_tokens,
    )[-1]
    names = ("tokens", "logp", "ref_logp", "entropy", "states")
    result = {name: tf.transpose(a.stack(), [1, 0]) for name, a in zip(names[:4], out[:4])}
    result["states"] = tf.transpose(out[4].stack(), [1, 0, 2])
    return result


def read_prompts(
    tokenizer: CharTokenizer, prompts: tf.Tensor, max_prompt_length: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """In graph: [batch] strings → left-padded (ids [batch, time], mask), a start token first.

    Fails with `InvalidArgumentError` on unknown characters or a prompt longer
    than `max_prompt_length` characters.
    """
    ids = tokenizer.encode_checked(prompts)
    lengths = ids.row_lengths()
    ok = tf.reduce_all(lengths <= max_prompt_length)

    def message() -> tf.Tensor:
        row = tf.argmax(lengths, output_type=tf.int32)  # the longest prompt
        parts = ["Prompt ", tf.strings.as_string(row), " has ", tf.strings.as_string(lengths[row])]
        return tf.strings.join([*parts, " characters, ", too_long_message(max_prompt_length)])

    with tf.control_dependencies([assert_explained(ok, message)]):
        start = tf.fill([tf.shape(prompts)[0], 1], tokenizer._table.lookup(tf.constant(START)))
        return left_pad(tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1))


def too_long_message(max_prompt_length: int) -> str:
    """The end of the too-long prompt error (after "Prompt i has n characters, ")."""
    return (
        f"more than max_prompt_length={max_prompt_length}; shorten it or raise "
        "GenerationConfig.max_prompt_length."
    )


def cut_at(texts: tf.Tensor, stop: str | None) -> tf.Tensor:
    """In graph: each of [batch] strings up to the first `stop` (all of it without one)."""
    if stop is None:
        return texts
    parts = tf.strings.split(texts, sep=stop, maxsplit=1)  # ≥ 1 part per text
    return tf.gather(parts.values, parts.row_starts())


def left_pad(ids: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Ragged ids → (ids [batch, time] padded with 0 on the left, mask True on real tokens).

    Left padding puts every prompt's last token in the last column, so the
    generated tokens of all rows line up behind it.
    """
    lengths = ids.row_lengths()
    width = tf.reduce_max(lengths)
    pads = tf.zeros_like(tf.ragged.range(width - lengths), dtype=ids.dtype)
    mask = tf.reverse(tf.sequence_mask(lengths, width), axis=[1])
    return tf.concat([pads, ids], axis=1).to_tensor(0), mask


class TextGenerator(tf.Module):
    """A language model and its tokenizer as one exportable generator.

    `generate()` takes Python strings; the export's `serving_default` takes a
    [batch] string tensor `prompts` and returns `text` (the generated
    continuation, without the prompt), tokenizer and sampling inside the graph.
    Its `generate` signature also takes `max_length`, `temperature` and `seed`.

    Args:
        model: a `CharLM` (e.g. from `tfrl.text.pretrained_lm()` or fine-tuning).
        tokenizer: its `CharTokenizer`; its vocabulary must contain "\\n".
        config: sampling defaults. Default `GenerationConfig()`.
    """

    def __init__(
        self, model: CharLM, tokenizer: CharTokenizer, config: GenerationConfig | None = None
    ):
        super().__init__(name="text_generator")
        if START not in tokenizer.vocabulary:
            raise ConfigError("The tokenizer's vocabulary has no '\\n', which starts every prompt.")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or GenerationConfig()
        c = self.config

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="prompts"),
                tf.TensorSpec([], tf.int32, name="max_length"),
                tf.TensorSpec([], tf.float32, name="temperature"),
                tf.TensorSpec([], tf.int64, name="seed"),
            ]
        )
        def generate_signature(prompts, max_length, temperature, seed):
            checks = [
                tf.debugging.Assert(
                    (max_length >= 1) & (max_length <= c.max_length_limit),
                    [f"max_length must be in [1, {c.max_length_limit}]; got", max_length],
                ),
                tf.debugging.Assert(
                    temperature >= 0, ["temperature must be ≥ 0; got", temperature]
                ),
            ]
            with tf.control_dependencies(checks):
                # Every op reading max_length (the sampler's buffer first) waits for the checks.
                max_length = tf.identity(max_length)
                temperature = tf.identity(temperature)
                ids, mask = read_prompts(self.tokenizer, prompts, c.max_prompt_length)
            tokens = sample_tokens(
                self.model,
                ids,
                mask,
                max_length,
                tf.stack([seed, 0]),
                temperature,
                c.top_k,
                c.top_p,
            )
            return {"text": cut_at(self.tokenizer.decode(tokens), c.stop)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompts")])
        def serving_default(prompts):
            seed = tf.random.uniform([], 0, 2**62, dtype=tf.int64)
            return generate_signature(
                prompts, tf.constant(c.max_length), tf.constant(c.temperature, tf.float32), seed
            )

        self.generate_signature = generate_signature
        self.serving_default = serving_default

    def serving_signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """What `tfrl.export` writes: `serving_default` and `generate`."""
        return {
            "serving_default": self.serving_default.get_concrete_function(),
            "generate": self.generate_signature.get_concrete_function(),
        }

    def check_prompts(self, prompts: Sequence[str]) -> list[str]:
        """Raises `TextInputError` for a prompt the generator cannot take."""
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise TextInputError(
                f"prompts must be a list of strings, got {prompts!r:.60}; wrap one "
                "prompt in a list: generate(['ROMEO:'])."
            )
        if not prompts:
            raise TextInputError("prompts is empty; pass at least one (an empty string is fine).")
        for i, p in enumerate(prompts):
            self.tokenizer.check(p)
            if len(p) > self.config.max_prompt_length:
                raise TextInputError(
                    f"Prompt {i} has {len(p)} characters, "
                    + too_long_message(self.config.max_prompt_length)
                )
        return list(prompts)

    def generate(
        self,
        prompts: Sequence[str],
        max_length: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """The generated continuation of each prompt (without the prompt).

        Args:
            prompts: a list of strings; "" starts a new line unconditionally.
            max_length: characters to generate. Default `config.max_length`.
            temperature: default `config.temperature`; 0 is greedy.
            seed: the same seed gives the same texts; default None draws one.
        """
        prompts = self.check_prompts(prompts)
        max_length = self.config.max_length if max_length is None else max_length
        check_length(max_length, self.config.max_length_limit)
        temperature = self.config.temperature if temperature is None else temperature
        check_temperature(temperature)
        if seed is None:
            seed = int(tf.random.uniform([], 0, 2**62, dtype=tf.int64))
        check_whole_number("seed", seed, minimum=0)
        out = self.generate_signature(
            tf.constant(prompts),
            tf.constant(max_length, tf.int32),
            tf.constant(temperature, tf.float32),
            tf.constant(seed, tf.int64),
        )
        return [t.decode("utf-8") for t in out["text"].numpy()]
