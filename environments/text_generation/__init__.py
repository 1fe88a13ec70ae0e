"""Text generation as a token-level MDP: tfrl/TextGeneration-v0."""

from environments.text_generation.config import TextGenerationConfig
from environments.text_generation.env import TextGenerationEnv

__all__ = ["TextGenerationConfig", "TextGenerationEnv"]
