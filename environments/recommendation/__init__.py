"""Slate recommendation for long-term engagement: `tfrl/Recommendation-v0`."""

from environments.recommendation.config import PRESETS, RecommendationConfig
from environments.recommendation.env import (
    RecommendationEnv,
    RecommendationVectorEnv,
    SlateError,
    SlateSpace,
    click_weights,
)

__all__ = [
    "PRESETS",
    "RecommendationConfig",
    "RecommendationEnv",
    "RecommendationVectorEnv",
    "SlateError",
    "SlateSpace",
    "click_weights",
]
