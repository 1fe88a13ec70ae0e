"""Configuration of tfrl/TextGeneration-v0."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from tfrl.errors import ConfigError, check_whole_number


@dataclasses.dataclass
class TextGenerationConfig:
    """What the episodes look like.

    Attributes:
        reward: a batched callable on generated texts (see `tfrl.text.rewards`);
            default None uses `KeywordReward(["love"])`.
        prompts: prompts an episode starts from (one drawn per reset); default
            None uses the corpus' "NAME:" speaker prompts.
        max_new_tokens: tokens an episode generates. Default 48.
        context_length: the observation holds the last this-many token ids. Default 64.
        stop: an episode also ends as soon as the generated text ends with this
            string (e.g. "\n\n", the end of a speech); the reward scores the
            text before it, as `FineTuneConfig.stop` does. Only generated
            characters are searched, not the prompt. Default None (always
            `max_new_tokens` steps).
    """

    reward: Callable[[Sequence[str]], Any] | None = None
    prompts: Sequence[str] | None = None
    max_new_tokens: int = 48
    context_length: int = 64
    stop: str | None = None

    def __post_init__(self) -> None:
        check_whole_number("max_new_tokens", self.max_new_tokens)
        check_whole_number("context_length", self.context_length)
        if self.stop is not None and (not isinstance(self.stop, str) or not self.stop):
            raise ConfigError(f"stop={self.stop!r} must be a non-empty string, or None.")
