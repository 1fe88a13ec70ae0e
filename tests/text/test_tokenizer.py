import numpy as np
import pytest
import tensorflow as tf

from tfrl.errors import ConfigError
from tfrl.text import CharTokenizer, TextInputError, load_corpus, speeches


def test_encode_decode_round_trip_in_graph_and_python(tokenizer):
    texts = [load_corpus()[:300], "ROMEO:\nO, she doth teach the torches!", ""]
    ids = tokenizer.encode(tf.constant(texts))
    assert ids.row_lengths().numpy().tolist() == [len(t) for t in texts]
    assert [t.decode() for t in tokenizer.decode(ids).numpy()] == texts
    for text in texts:
        assert tokenizer.text(tokenizer.ids(text)) == text
    np.testing.assert_array_equal(ids[1].numpy(), tokenizer.ids(texts[1]))


def test_vocabulary_is_the_corpus_characters(tokenizer):
    assert tokenizer.vocab_size == 65
    assert "\n" in tokenizer.vocabulary and "é" not in tokenizer.vocabulary


def test_unknown_characters_are_named_in_python_and_minus_one_in_graph(tokenizer):
    with pytest.raises(TextInputError, match=r"outside the tokenizer's vocabulary: \['é', '1'\]"):
        tokenizer.ids("café 1 é")
    assert isinstance(TextInputError("x"), ValueError)
    assert tokenizer.encode(tf.constant(["aé"])).flat_values.numpy().tolist()[1] == -1
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Prompt 1 \(.*\) has characters"):
        tokenizer.encode_checked(tf.constant(["a", "aé"]))


def test_bad_vocabularies_are_refused():
    with pytest.raises(ConfigError, match="single characters"):
        CharTokenizer(["ab", "c"])
    with pytest.raises(ConfigError, match="twice"):
        CharTokenizer("abca")


def test_speeches_split_a_play():
    text = "ROMEO:\nBut soft!\nWhat light?\n\nJULIET:\nAy me!"
    assert speeches(text) == [("ROMEO", "But soft!\nWhat light?"), ("JULIET", "Ay me!")]


def test_tfds_loader_reads_tiny_shakespeare_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfrl.text.corpus import load_tfds

    with tfds.testing.mock_data(num_examples=2):
        text = load_tfds("tiny_shakespeare")
    assert isinstance(text, str) and len(text) > 0


def test_diversity_measures_distinct_ngrams_and_repeated_words():
    from tfrl.text import diversity

    d = diversity(["love love love", "O gentle night, love"])
    assert d["distinct_1"] == pytest.approx(4 / 7)  # love, o, gentle, night of 7 words
    assert d["distinct_2"] == pytest.approx(4 / 5)  # "love love" twice among 5 bigrams
    assert d["max_repeat_run"] == 3 and d["repeat_run"] == 2
