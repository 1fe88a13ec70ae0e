"""Configuration of the imbalanced image-classification environment."""

from __future__ import annotations

import dataclasses

from tfrl.errors import ConfigError, check_names

__all__ = ["DATASETS", "ImageClassificationConfig"]

# name → number of classes; "digits" ships with scikit-learn (offline), the rest load via TFDS.
DATASETS = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10}


@dataclasses.dataclass
class ImageClassificationConfig:
    """Which images, which classes, how imbalanced.

    The imbalance ratio follows Lin et al. (2020): ρ = |minority| / |majority|,
    a number in (0, 1]; "1:10" is ρ = 0.1. It is also the paper's reward scale
    λ for majority samples, so a minority sample weighs 1/ρ majority ones.

    Attributes:
        dataset: "digits" (scikit-learn's bundled 8×8 digits, offline; default),
            "mnist", "fashion_mnist" or "cifar10" (TFDS, must be prepared locally).
        split: "train" (default), "test", or "validation" (a stratified
            `validation_fraction` of the imbalanced training data, which "train"
            then leaves out).
        minority_classes: the dataset's classes that are made rare. Default (2,),
            the paper's MNIST setting.
        classes: the dataset's classes to use; None (default) uses all of them.
        binary: True (default, the paper's setting) labels minority classes 1 and
            every other class 0; False keeps one label per class in `classes`.
        imbalance_ratio: ρ = minority / majority sample count, in (0, 1]. Default 0.1.
        reward_lambda: reward scale of majority samples; None (default) uses the
            realised ratio of minority to majority samples (≈ ρ), as the paper does.
        max_samples: keep at most this many samples (after imbalancing); None keeps all.
        data_seed: seeds which samples are kept and which go to validation. Default 0.
        split_seed: seeds which digits images are test images (the 70/30 split of
            scikit-learn's digits). Default 0. TFDS datasets keep their own splits.
        validation_fraction: share of the (imbalanced) training data held out as
            the "validation" split, per class; 0.0 (default) holds out nothing.
        data_dir: TFDS data directory; None uses TFDS' default.
    """

    dataset: str = "digits"
    split: str = "train"
    minority_classes: tuple[int, ...] = (2,)
    classes: tuple[int, ...] | None = None
    binary: bool = True
    imbalance_ratio: float = 0.1
    reward_lambda: float | None = None
    max_samples: int | None = None
    data_seed: int = 0
    split_seed: int = 0
    validation_fraction: float = 0.0
    data_dir: str | None = None

    def __post_init__(self) -> None:
        check_names(
            [self.dataset],
            DATASETS,
            "Unknown dataset",
            f"Available datasets: {', '.join(DATASETS)} ('digits' works offline).",
        )
        if self.split not in ("train", "test", "validation"):
            raise ConfigError(f"split={self.split!r} must be 'train', 'validation' or 'test'.")
        if isinstance(self.validation_fraction, bool) or not 0.0 <= self.validation_fraction < 1:
            raise ConfigError(
                f"validation_fraction={self.validation_fraction!r} must be in [0, 1), "
                "e.g. 0.15 to hold out 15% of the training data."
            )
        if self.split == "validation" and self.validation_fraction == 0:
            raise ConfigError(
                "split='validation' needs validation_fraction > 0 (e.g. 0.15): it is that "
                "share of the training data."
            )
        if isinstance(self.imbalance_ratio, bool) or not 0.0 < self.imbalance_ratio <= 1.0:
            hint = ""
            if isinstance(self.imbalance_ratio, (int, float)) and self.imbalance_ratio > 1:
                inverse = 1 / self.imbalance_ratio
                hint = f" For {self.imbalance_ratio:g}:1 majority to minority pass {inverse:g}."
            raise ConfigError(
                f"imbalance_ratio={self.imbalance_ratio!r} must be in (0, 1]: it is "
                f"minority / majority samples (Lin et al.'s ρ), e.g. 0.1 for 1:10.{hint}"
            )
        n = DATASETS[self.dataset]
        self.minority_classes = tuple(int(c) for c in self.minority_classes)
        if self.classes is not None:
            self.classes = tuple(int(c) for c in self.classes)
        used = self.classes if self.classes is not None else tuple(range(n))
        bad = [c for c in (*self.minority_classes, *used) if not 0 <= c < n]
        if bad:
            raise ConfigError(f"classes {bad} are not classes of {self.dataset!r} (0..{n - 1}).")
        if not self.minority_classes or not set(self.minority_classes) <= set(used):
            raise ConfigError(
                f"minority_classes={self.minority_classes} must be a non-empty subset of the "
                f"classes used ({list(used)})."
            )
        if len(set(used) - set(self.minority_classes)) < 1:
            raise ConfigError(
                "At least one class must be a majority class (not in minority_classes)."
            )
        if self.reward_lambda is not None and not 0.0 < self.reward_lambda <= 1.0:
            raise ConfigError(f"reward_lambda={self.reward_lambda!r} must be in (0, 1], or None.")
        if self.max_samples is not None and self.max_samples < 2:
            raise ConfigError(f"max_samples={self.max_samples!r} must be ≥ 2, or None.")

    @property
    def used_classes(self) -> tuple[int, ...]:
        """The dataset classes in use, in label order when `binary` is False."""
        return self.classes if self.classes is not None else tuple(range(DATASETS[self.dataset]))

    @property
    def num_labels(self) -> int:
        """Actions: 2 when `binary`, else one per used class."""
        return 2 if self.binary else len(self.used_classes)
