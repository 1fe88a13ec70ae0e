"""Configuration of the recommendation environment: our default and the RecSim preset."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tfrl.errors import ConfigError, UnknownNameError, check_names

__all__ = ["PRESETS", "RecommendationConfig"]

_CHOICE_MODELS = ("logit", "proportional")
_OBSERVATIONS = ("dict", "flat")


@dataclasses.dataclass
class RecommendationConfig:
    """How documents, users, choices and sessions behave.

    Defaults are tfrl's own config (see the env's docstring for why);
    `RecommendationConfig.preset("recsim")` is RecSim's interest-evolution
    environment as its `create_environment` builds it.

    Attributes:
        num_candidates: documents offered per step (N). Default 10.
        slate_size: documents shown per step (k ≤ N). Default 3.
        num_topics: topic dimensions of documents and users. Default 10.
        corpus: "synthetic" (generated offline from `corpus_seed`), "movielens"
            (TFDS `movielens/100k-ratings`, genres as topics) or "recsim" (a
            fresh RecSim document per candidate per step). Default "synthetic".
        corpus_size: documents in the synthetic corpus. Default 2,000.
        corpus_seed: seed of the synthetic corpus. Default 0.
        tfds_name: the TFDS dataset of corpus="movielens". Default
            "movielens/100k-ratings".
        clickbait: how strongly a document's appeal lowers its quality
            (quality = topic quality + noise − clickbait · appeal). Default 3.0.
        quality_noise: std of a document's quality around its topic's. Default 0.5.
        budget: minutes each session starts with. Default 120.
        budget_quality_factor: on a click, the budget moves by
            −w + factor · w · quality for watch time w. Default 0.4.
        no_click_cost: minutes a slate without a click costs. Default 1.0.
        choice_model: "logit" (multinomial logit over affinity and appeal) or
            "proportional" (RecSim's: weights u·x + 1, no-click weight 2). Default "logit".
        affinity_scale: logit weight of the user-document affinity u·x. Default 2.0.
        appeal_scale: logit weight of a document's appeal. Default 3.0.
        no_click_logit: logit of not clicking. Default 2.0.
        no_click_mass: the proportional model's no-click mass (its weight is
            mass + 1). Default 1.0.
        interest_drift: how far a click moves the user's interest in the
            document's topics (toward 1 with probability (u+1)/2, else away). Default 0.3.
        max_steps: truncates a session after this many slates; None never. Default 500.
        observation: "dict" ({user, candidates, response}) or "flat" (one Box,
            for agents that need it). Default "dict".
        session_features: append three running session totals to the user
            features (minutes watched, slates without a click, Σ minutes × quality
            of the clicked documents, each in hundreds). With them the budget
            left is a known function of the observation (budget − total minutes
            − no_click_cost · no-click slates + budget_quality_factor · Σ minutes
            × quality), so the session is fully observed. Default True; the
            "recsim" preset sets False (RecSim's user observation is the
            interests alone).
        preset: the name of the preset these values came from, or None.
    """

    num_candidates: int = 10
    slate_size: int = 3
    num_topics: int = 10
    corpus: str = "synthetic"
    corpus_size: int = 2_000
    corpus_seed: int = 0
    tfds_name: str = "movielens/100k-ratings"
    clickbait: float = 3.0
    quality_noise: float = 0.5
    budget: float = 120.0
    budget_quality_factor: float = 0.4
    no_click_cost: float = 1.0
    choice_model: str = "logit"
    affinity_scale: float = 2.0
    appeal_scale: float = 3.0
    no_click_logit: float = 2.0
    no_click_mass: float = 1.0
    interest_drift: float = 0.3
    max_steps: int | None = 500
    observation: str = "dict"
    session_features: bool = True
    preset: str | None = None

    @classmethod
    def preset_config(cls, name: str, **overrides: Any) -> RecommendationConfig:
        """The config of preset `name` ("default" or "recsim"), with field overrides."""
        check_names(
            [name],
            PRESETS,
            "Unknown recommendation preset",
            f"Presets: {', '.join(sorted(PRESETS))}.",
        )
        return cls(**{**PRESETS[name], **overrides})

    def __post_init__(self) -> None:
        for name in ("num_candidates", "slate_size", "num_topics", "corpus_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a whole number ≥ 1.")
        if self.slate_size > self.num_candidates:
            raise ConfigError(
                f"slate_size={self.slate_size} is larger than num_candidates="
                f"{self.num_candidates}: a slate shows distinct candidates. Lower slate_size "
                "or raise num_candidates."
            )
        if not (
            isinstance(self.budget, (int, float))
            and not isinstance(self.budget, bool)
            and math.isfinite(self.budget)
            and self.budget > 0
        ):
            raise ConfigError(
                f"budget={self.budget!r} must be a positive, finite number of minutes "
                "(e.g. 120); to cap sessions by length instead, use max_steps."
            )
        if not isinstance(self.session_features, bool):
            raise ConfigError(f"session_features={self.session_features!r} must be True or False.")
        for name in ("no_click_cost", "quality_noise", "interest_drift", "no_click_mass"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name}={value!r} must be a number ≥ 0.")
        if self.corpus not in ("synthetic", "movielens", "recsim"):
            raise UnknownNameError(
                f"corpus={self.corpus!r} is not one of 'synthetic', 'movielens', 'recsim'."
            )
        if self.choice_model not in _CHOICE_MODELS:
            raise UnknownNameError(
                f"choice_model={self.choice_model!r} is not one of {_CHOICE_MODELS}."
            )
        if self.observation not in _OBSERVATIONS:
            raise UnknownNameError(
                f"observation={self.observation!r} is not one of {_OBSERVATIONS}; 'flat' "
                "gives one Box for agents such as dqn."
            )
        if self.max_steps is not None and (
            isinstance(self.max_steps, bool)
            or not isinstance(self.max_steps, int)
            or self.max_steps < 1
        ):
            raise ConfigError(f"max_steps={self.max_steps!r} must be ≥ 1, or None.")
        if self.corpus == "recsim" and self.num_topics != 20:
            raise ConfigError(
                f"corpus='recsim' has 20 clusters, so num_topics must be 20 (got "
                f"{self.num_topics})."
            )


# RecSim interest evolution (recsim 0.2.4, create_environment with
# UtilityModelVideoSampler and UtilityModelUserSampler).
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "recsim": {
        "num_candidates": 10,
        "slate_size": 2,
        "num_topics": 20,
        "corpus": "recsim",
        "budget": 200.0,
        "budget_quality_factor": 0.9 / 3.4,
        "no_click_cost": 0.5,
        "choice_model": "proportional",
        "no_click_mass": 1.0,
        "interest_drift": 0.3,
        "max_steps": None,
        "session_features": False,
        "preset": "recsim",
    },
}
