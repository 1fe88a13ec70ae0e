"""Images and labels for the classification environment.

`digits` is scikit-learn's bundled 8×8 handwritten digits (1,797 images, no
download), split 70/30 into train/test with `split_seed` (default 0). `mnist`,
`fashion_mnist` and `cifar10` load through TensorFlow Datasets from a prepared
local copy (`tfds.load(..., download=False)`); nothing is downloaded at run time.
"""

from __future__ import annotations

import functools

import numpy as np

from environments.image_classification.config import ImageClassificationConfig
from tfrl.errors import TfrlError

__all__ = ["DatasetNotFoundError", "LabelledImages", "load", "load_raw", "sklearn_datasets"]

_DIGITS_TEST_FRACTION = 0.3


class DatasetNotFoundError(TfrlError, FileNotFoundError):
    """A TFDS dataset is not prepared on this machine."""


class LabelledImages:
    """Images (float32 in [0, 1], shape [N, H, W, C]) with integer labels.

    Attributes:
        images: the images.
        labels: the environment's labels (0/1 when binary, else 0..K-1).
        minority: boolean mask of the labels that count as minority.
        class_names: a name per label.
    """

    def __init__(self, images, labels, minority_labels, class_names):
        self.images = images
        self.labels = labels
        self.minority_labels = tuple(minority_labels)
        self.class_names = list(class_names)
        self.is_minority_label = np.isin(np.arange(len(class_names)), minority_labels)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def minority_count(self) -> int:
        return int(self.is_minority_label[self.labels].sum())

    @property
    def majority_count(self) -> int:
        return len(self) - self.minority_count


@functools.lru_cache(maxsize=8)
def load_raw(
    dataset: str, split: str, data_dir: str | None = None, split_seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The whole split: (images float32 [N, H, W, C] in [0, 1], labels int64). Cached.

    `split_seed` chooses digits' test images; TFDS datasets keep their own splits.
    """
    if dataset == "digits":
        digits = sklearn_datasets().load_digits()
        images = (digits.images / 16.0).astype(np.float32)[..., None]
        labels = digits.target.astype(np.int64)
        order = np.random.default_rng(split_seed).permutation(len(labels))
        n_test = round(_DIGITS_TEST_FRACTION * len(labels))
        keep = order[n_test:] if split == "train" else order[:n_test]
        keep = np.sort(keep)
        return images[keep], labels[keep]
    return _load_tfds(dataset, split, data_dir)


def sklearn_datasets():
    """`sklearn.datasets`, or an error naming the install command."""
    try:
        from sklearn import datasets
    except ImportError as e:
        from tfrl.errors import MissingDependencyError

        raise MissingDependencyError(
            "The offline data sets come from scikit-learn, a tfrl dependency: "
            "pip install scikit-learn==1.9.1 (or reinstall tfrl)."
        ) from e
    return datasets


def _load_tfds(dataset: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        from tfrl.errors import MissingDependencyError

        raise MissingDependencyError(
            f'dataset={dataset!r} needs tensorflow-datasets: pip install "tfrl[datasets]".'
        ) from e
    try:
        loaded = tfds.load(
            dataset, split=split, as_supervised=True, data_dir=data_dir, download=False
        )
        # Batched iteration: batch_size=-1 aborts under tfds.testing.mock_data in TFDS 4.9.4.
        batches = list(tfds.as_numpy(loaded.batch(10_000)))
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as e:
        raise DatasetNotFoundError(
            f"TFDS dataset {dataset!r} (split {split!r}) is not prepared in "
            f"{data_dir or 'the default TFDS data directory (~/tensorflow_datasets)'}; tfrl "
            "never downloads at run time. Prepare it once on a machine with network access "
            f"(`tfds build {dataset}`) and copy it there, pass data_dir=, or use "
            "dataset='digits', which ships with scikit-learn."
        ) from e
    images = np.concatenate([b[0] for b in batches]).astype(np.float32) / 255.0
    return images, np.concatenate([b[1] for b in batches]).astype(np.int64)


def load(config: ImageClassificationConfig) -> LabelledImages:
    """The split of `config`, restricted to its classes and made imbalanced.

    Every minority class keeps ρ × (the smallest majority class's count)
    samples when labels are per class; in the binary setting the minority
    classes together keep ρ × (all majority samples). Samples are chosen
    with `config.data_seed`.
    """
    raw_split = "test" if config.split == "test" else "train"
    images, raw_labels = load_raw(config.dataset, raw_split, config.data_dir, config.split_seed)
    used = config.used_classes
    rng = np.random.default_rng(config.data_seed)
    minority = set(config.minority_classes)
    by_class = {c: np.flatnonzero(raw_labels == c) for c in used}
    majority_counts = [len(by_class[c]) for c in used if c not in minority]
    minority_available = sum(len(by_class[c]) for c in minority)
    keep = [by_class[c] for c in used if c not in minority]
    if config.binary:
        want = int(np.floor(config.imbalance_ratio * sum(majority_counts)))
        want = max(1, min(want, minority_available))
        pool = np.concatenate([by_class[c] for c in config.minority_classes])
        keep.append(rng.choice(pool, size=want, replace=False))
    else:
        per_class = max(1, int(np.floor(config.imbalance_ratio * min(majority_counts))))
        for c in config.minority_classes:
            keep.append(
                rng.choice(by_class[c], size=min(per_class, len(by_class[c])), replace=False)
            )
    index = np.sort(np.concatenate(keep))
    if config.max_samples is not None and len(index) > config.max_samples:
        index = _stratified_subset(index, raw_labels, config.max_samples, rng)
    if config.validation_fraction > 0 and config.split != "test":
        held_out = _held_out(index, _labels(raw_labels[index], config), config, rng)
        index = index[held_out] if config.split == "validation" else index[~held_out]
    labels = _labels(raw_labels[index], config)
    if config.binary:
        names = ["other", "+".join(str(c) for c in config.minority_classes)]
        minority_labels = (1,)
    else:
        names = [str(c) for c in used]
        minority_labels = tuple(used.index(c) for c in config.minority_classes)
    data = LabelledImages(images[index], labels, minority_labels, names)
    if data.minority_count == 0 or data.majority_count == 0:
        raise TfrlError(
            f"The {config.dataset!r} {config.split} data has {data.minority_count} minority and "
            f"{data.majority_count} majority samples; raise max_samples or imbalance_ratio."
        )
    return data


def _labels(raw: np.ndarray, config: ImageClassificationConfig) -> np.ndarray:
    if config.binary:
        return np.isin(raw, config.minority_classes).astype(np.int64)
    lookup = np.full(max(config.used_classes) + 1, -1, np.int64)
    lookup[list(config.used_classes)] = np.arange(len(config.used_classes))
    return lookup[raw]


def _held_out(
    index: np.ndarray, labels: np.ndarray, config: ImageClassificationConfig, rng
) -> np.ndarray:
    """Mask of `index`: `validation_fraction` of each label (at least one), the rest trains."""
    mask = np.zeros(len(index), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        size = max(1, round(config.validation_fraction * len(members)))
        if size >= len(members):
            raise TfrlError(
                f"validation_fraction={config.validation_fraction} leaves no training samples of "
                f"label {label} ({len(members)} in all); lower it or raise imbalance_ratio."
            )
        mask[rng.choice(members, size=size, replace=False)] = True
    return mask


def _stratified_subset(index, raw_labels, size, rng) -> np.ndarray:
    """`size` of `index`, keeping each class's share (and at least one of each)."""
    classes, counts = np.unique(raw_labels[index], return_counts=True)
    shares = np.maximum(1, np.floor(counts * size / len(index)).astype(int))
    picked = [
        rng.choice(index[raw_labels[index] == c], size=min(s, n), replace=False)
        for c, s, n in zip(classes, shares, counts)
    ]
    return np.sort(np.concatenate(picked))
