import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfrl.errors import ConfigError
from tfrl.text import GenerationConfig, LMConfig, TextGenerator, TextInputError, build_lm
from tfrl.text.sampling import filter_logits


def test_fixed_seed_gives_the_same_text(generator):
    prompts = ["ROMEO:", "JULIET:", ""]
    first = generator.generate(prompts, seed=7)
    assert generator.generate(prompts, seed=7) == first
    assert generator.generate(prompts, seed=8) != first
    assert [len(t) for t in first] == [16, 16, 16]
    assert len(generator.generate(["A"], max_length=5)[0]) == 5


def test_temperature_zero_is_greedy_and_ignores_the_seed(generator):
    assert generator.generate(["ROMEO:"], temperature=0, seed=1) == generator.generate(
        ["ROMEO:"], temperature=0, seed=2
    )


def test_a_prompt_reads_the_same_alone_or_padded_in_a_batch(generator):
    alone = generator.generate(["ROMEO:"], temperature=0)
    batched = generator.generate(["ROMEO:", "FIRST CITIZEN: speak"], temperature=0)
    assert batched[0] == alone[0]


def test_filter_logits_keeps_top_k_and_the_nucleus():
    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda x: np.isfinite(x.numpy()[0]).tolist()
    assert kept(filter_logits(logits, top_k=2)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.7)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.8)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_p=0.81)) == [True, True, True, False]
    assert kept(filter_logits(logits, top_p=0.1)) == [True, False, False, False]


def test_bad_prompts_get_clear_errors(generator):
    with pytest.raises(TextInputError, match=r"outside the tokenizer's vocabulary: \['é'\]"):
        generator.generate(["café"])
    with pytest.raises(TextInputError, match="more than max_prompt_length=32"):
        generator.generate(["A" * 33])
    with pytest.raises(TextInputError, match="wrap one prompt in a list"):
        generator.generate("ROMEO:")
    with pytest.raises(TextInputError, match="prompts is empty"):
        generator.generate([])
    with pytest.raises(ConfigError, match="max_length=0"):
        generator.generate(["A"], max_length=0)
    with pytest.raises(ConfigError, match="temperature=-1"):
        generator.generate(["A"], temperature=-1)
    with pytest.raises(ConfigError, match="top_p=0"):
        GenerationConfig(top_p=0)


def test_a_stop_string_cuts_each_text_in_the_graph(generator, tiny_lm, tokenizer):
    full = generator.generate(["ROMEO:", "JULIET:", ""], seed=3, temperature=0.5)
    stop = next(c for c in full[0][2:] if c != full[0][0])  # a character in the first text
    stopping = TextGenerator(tiny_lm, tokenizer, dataclasses.replace(generator.config, stop=stop))
    cut = stopping.generate(["ROMEO:", "JULIET:", ""], seed=3, temperature=0.5)
    assert cut == [t.split(stop, 1)[0] for t in full]
    assert len(cut[0]) < len(full[0])
    # The export's signature cuts too: clients of the server get the cut text.
    served = stopping.serving_signatures()["generate"](
        prompts=tf.constant(["ROMEO:"]),
        max_length=tf.constant(16),
        temperature=tf.constant(0.5),
        seed=tf.constant(3, tf.int64),
    )
    assert served["text"].numpy()[0].decode() == cut[0]
    with pytest.raises(ConfigError, match="stop=''"):
        GenerationConfig(stop="")


def test_a_new_lm_is_initialized_from_its_config_seed_alone(tokenizer):
    """Not from the global random state: a test's tiny LM must not depend on earlier tests."""
    config = LMConfig(units=8, embedding_dim=4, seed=3)
    first = build_lm(tokenizer.vocab_size, config).get_weights()
    tf.random.set_seed(123)
    tf.random.uniform([5])
    again = build_lm(tokenizer.vocab_size, config).get_weights()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = build_lm(tokenizer.vocab_size, dataclasses.replace(config, seed=4)).get_weights()
    assert not np.array_equal(first[0], other[0])
