"""tfrl/TextGeneration-v0: write a continuation one character at a time."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from environments.text_generation.config import TextGenerationConfig
from tfrl.errors import InvalidActionError
from tfrl.text.corpus import load_corpus
from tfrl.text.finetune import speaker_prompts
from tfrl.text.rewards import KeywordReward
from tfrl.text.sampling import START
from tfrl.text.tokenizer import CharTokenizer


class TextGenerationEnv(gym.Env):
    """Text generation as a token-level MDP with a pluggable reward.

    An episode starts from a prompt (e.g. "ROMEO:") and the agent appends one
    character per step; when `max_new_tokens` characters are written, the
    reward function scores the continuation. Any tfrl agent can act here;
    `tfrl.text.FineTuner` is the fast path for language models (whole batches
    of sequences in one `tf.function`), on the same reward functions.

    - Action space: `Discrete(vocab_size)`, a character of the Tiny
      Shakespeare vocabulary (65 characters).
    - Observation space: `Box(-1, vocab_size - 1, (context_length,), int32)`,
      the last `context_length` token ids of "\\n" + prompt + text so far,
      left-padded with -1.
    - Reward: 0 on every step but the last, which gets `reward([text])[0]`
      for the generated text (without the prompt).
    - Starting state: a prompt drawn uniformly from `config.prompts`.
    - Episode end: terminated after `max_new_tokens` steps, or as soon as the
      text ends with `config.stop` (the reward then scores the text before
      it); never truncated.
    - Arguments: `config` (`TextGenerationConfig`) or its fields as keywords.
    - Version history: v0, the first.

    `info` carries "prompt" and, at the end, "text".
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        config: TextGenerationConfig | None = None,
        render_mode: str | None = None,
        **kwargs: Any,
    ):
        self.config = config or TextGenerationConfig(**kwargs)
        corpus = load_corpus()
        self.tokenizer = CharTokenizer.from_text(corpus)
        self.reward_fn = self.config.reward or KeywordReward(["love"])
        self.prompts = list(self.config.prompts or speaker_prompts(corpus))
        for p in self.prompts:
            self.tokenizer.check(p)
        if self.config.stop is not None:
            self.tokenizer.check(self.config.stop)
        n = self.tokenizer.vocab_size
        self.action_space = gym.spaces.Discrete(n)
        self.observation_space = gym.spaces.Box(
            -1, n - 1, (self.config.context_length,), dtype=np.int32
        )
        self.render_mode = render_mode
        self._prompt = ""
        self._generated: list[int] = []
        self._context: list[int] = []

    def _observation(self) -> np.ndarray:
        obs = np.full(self.config.context_length, -1, np.int32)
        tail = self._context[-self.config.context_length :]
        obs[len(obs) - len(tail) :] = tail
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._prompt = self.prompts[int(self.np_random.integers(len(self.prompts)))]
        self._context = list(self.tokenizer.ids(START + self._prompt))
        self._generated = []
        return self._observation(), {"prompt": self._prompt}

    def step(self, action: Any):
        action = int(action)
        if not self.action_space.contains(action):
            raise InvalidActionError(
                f"action={action} is not a token id in [0, {self.action_space.n}); "
                "the action is the id of the next character (see env.tokenizer.vocabulary)."
            )
        self._generated.append(action)
        self._context.append(action)
        text = self.tokenizer.text(self._generated)
        stop = self.config.stop
        stopped = stop is not None and text.endswith(stop)
        done = stopped or len(self._generated) >= self.config.max_new_tokens
        reward, info = 0.0, {"prompt": self._prompt}
        if done:
            info["text"] = text[: -len(stop)] if stopped else text
            reward = float(np.asarray(self.reward_fn([info["text"]])).reshape(-1)[0])
        return self._observation(), reward, done, False, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._prompt + self.tokenizer.text(self._generated)
        return None
