"""Corpora: the synthetic default and the TFDS MovieLens loader (mocked, offline)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from environments.recommendation import RecommendationEnv
from environments.recommendation.data import movielens_corpus, synthetic_corpus
from tfrl.errors import ConfigError, UnknownNameError


def test_synthetic_corpus_is_seeded_and_clickbait_is_poorer():
    a, b = synthetic_corpus(500, seed=3), synthetic_corpus(500, seed=3)
    np.testing.assert_array_equal(a.quality, b.quality)
    np.testing.assert_allclose(a.topics.sum(axis=1), 1.0, rtol=1e-5)
    assert np.corrcoef(a.appeal, a.quality)[0, 1] < -0.5


def test_movielens_corpus_from_mocked_tfds():
    with tfds.testing.mock_data(num_examples=200):
        corpus = movielens_corpus()
    assert corpus.num_topics == 21 and corpus.size > 1
    np.testing.assert_allclose(corpus.topics.sum(axis=1), 1.0, rtol=1e-5)
    assert ((corpus.appeal > 0) & (corpus.appeal < 1)).all()
    with tfds.testing.mock_data(num_examples=200):
        env = RecommendationEnv(corpus="movielens", num_topics=21)
    observation, _ = env.reset(seed=0)
    assert observation["candidates"].shape == (10, 23)


def test_movielens_corpus_needs_21_topics():
    with (
        tfds.testing.mock_data(num_examples=50),
        pytest.raises(ConfigError, match="pass num_topics=21"),
    ):
        RecommendationEnv(corpus="movielens")


def test_absent_movielens_data_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not prepared"):
        movielens_corpus(data_dir=str(tmp_path))


def test_unknown_tfds_name():
    with pytest.raises(UnknownNameError, match="not a TFDS MovieLens"):
        movielens_corpus("mnist")
