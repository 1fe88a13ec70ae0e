"""Document corpora: the synthetic default (offline) and MovieLens through TFDS.

A corpus is a table of documents, each with a topic vector (what it is
about), an appeal (how clickable its title and thumbnail are, observable), a
length in minutes (observable) and a quality (hidden from the recommender:
how much watching it leaves the user wanting more).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from tfrl.errors import ConfigError, MissingDependencyError, UnknownNameError

__all__ = ["MOVIELENS", "Corpus", "movielens_corpus", "synthetic_corpus"]

logger = logging.getLogger(__name__)

MOVIELENS = "movielens/100k-ratings"


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Documents as parallel arrays (M documents, T topics).

    Attributes:
        topics: (M, T) float32, each row a topic mixture (non-negative, sums to 1).
        appeal: (M,) float32 in [0, 1], the clickbait-ness users see.
        length: (M,) float32, minutes.
        quality: (M,) float32, hidden from the recommender.
        name: where the documents came from.
    """

    topics: np.ndarray
    appeal: np.ndarray
    length: np.ndarray
    quality: np.ndarray
    name: str = "synthetic"

    @property
    def size(self) -> int:
        return int(self.topics.shape[0])

    @property
    def num_topics(self) -> int:
        return int(self.topics.shape[1])


def synthetic_corpus(
    size: int = 2_000,
    num_topics: int = 10,
    *,
    clickbait: float = 3.0,
    quality_noise: float = 0.5,
    seed: int = 0,
) -> Corpus:
    """A reproducible synthetic corpus; no data files needed.

    Each document mostly covers one topic (Dirichlet(0.2) mixtures); topics
    differ in typical quality (N(0.5, 0.7)); appeal ~ Beta(2, 2); length ~
    lognormal around 4 minutes, clipped to [1, 12]; and
    quality = topic quality + N(0, quality_noise²) − clickbait · appeal, so the
    most clickable documents are the ones that disappoint.
    """
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(num_topics, 0.2), size=size)
    topic_quality = rng.normal(0.5, 0.7, num_topics)
    appeal = rng.beta(2.0, 2.0, size)
    length = np.clip(np.exp(rng.normal(np.log(4.0), 0.4, size)), 1.0, 12.0)
    quality = topics @ topic_quality + rng.normal(0.0, quality_noise, size) - clickbait * appeal
    return Corpus(
        topics.astype(np.float32),
        appeal.astype(np.float32),
        length.astype(np.float32),
        quality.astype(np.float32),
        "synthetic",
    )


def movielens_corpus(
    name: str = MOVIELENS, *, data_dir: str | None = None, clickbait: float = 3.0
) -> Corpus:
    """Documents built from MovieLens ratings through TFDS (`movielens/100k-ratings`).

    One document per movie: topics are its genres (normalized multi-hot), appeal
    its popularity rank (share of movies rated less often), quality its mean
    rating standardized, minus `clickbait` times how much more popular than good
    it is (so appeal and quality part ways as in the synthetic corpus), and
    length a 4-minute trailer-sized session unit.

    Args:
        name: the TFDS dataset name. Default "movielens/100k-ratings".
        data_dir: TFDS data directory. Default TFDS's own.
        clickbait: weight of the popularity-over-rating gap in quality. Default 3.0.

    Raises:
        MissingDependencyError: tensorflow-datasets is not installed.
        UnknownNameError: TFDS has no dataset called `name`.
        ConfigError: the data is not on this machine (it is never downloaded here).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise MissingDependencyError(
            'The MovieLens corpus needs tensorflow-datasets: pip install "tfrl[datasets]".'
        ) from e
    if not name.startswith("movielens/") or name.split("/")[0] not in tfds.list_builders():
        raise UnknownNameError(
            f"tfds_name={name!r} is not a TFDS MovieLens ratings dataset; use "
            f"{MOVIELENS!r} (or another movielens/*-ratings config)."
        )
    try:
        dataset = tfds.load(name, split="train", data_dir=data_dir, download=False)
    except Exception as e:  # TFDS raises several types for absent or unknown data.
        if "config" in str(e).lower() and "not" in str(e).lower() and "found" in str(e).lower():
            raise UnknownNameError(f"TFDS has no dataset {name!r}: {e}") from e
        raise ConfigError(
            f"The TFDS dataset {name!r} is not prepared in {data_dir or 'the TFDS data dir'} "
            "(tfrl never downloads at run time). Prepare it once with "
            f"`tfds build {name.replace('/', ' --config ')}` or "
            f"tfds.load({name!r}, download=True), or use corpus='synthetic'. ({e})"
        ) from e
    info = tfds.builder(name, data_dir=data_dir).info
    num_genres = info.features["movie_genres"].feature.num_classes
    ratings: dict[bytes, list[float]] = {}
    genres: dict[bytes, np.ndarray] = {}
    for row in tfds.as_numpy(dataset):
        movie = row["movie_id"]
        ratings.setdefault(movie, []).append(float(row["user_rating"]))
        if movie not in genres:
            hot = np.zeros(num_genres, np.float32)
            hot[np.asarray(row["movie_genres"], dtype=np.int64)] = 1.0
            genres[movie] = hot
    if not ratings:
        raise ConfigError(f"The TFDS dataset {name!r} has no ratings in its train split.")
    movies = sorted(ratings)
    topics = np.stack([genres[m] for m in movies])
    empty = topics.sum(axis=1) == 0
    topics[empty] = 1.0
    topics /= topics.sum(axis=1, keepdims=True)
    counts = np.array([len(ratings[m]) for m in movies], np.float64)
    mean_rating = np.array([np.mean(ratings[m]) for m in movies], np.float64)
    appeal = (np.argsort(np.argsort(counts, kind="stable"), kind="stable") + 0.5) / len(movies)
    rated = (mean_rating - mean_rating.mean()) / (mean_rating.std() + 1e-6)
    rating_rank = (np.argsort(np.argsort(mean_rating, kind="stable")) + 0.5) / len(movies)
    quality = rated - clickbait * np.maximum(appeal - rating_rank, 0.0)
    logger.info("MovieLens corpus: %d movies, %d genres", len(movies), num_genres)
    return Corpus(
        topics.astype(np.float32),
        appeal.astype(np.float32),
        np.full(len(movies), 4.0, np.float32),
        quality.astype(np.float32),
        name,
    )
