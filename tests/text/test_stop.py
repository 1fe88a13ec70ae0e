"""Stop strings and the KL target where users set them: TextGeneration-v0 and the application."""

import numpy as np
import pytest

from environments.text_generation import TextGenerationConfig, TextGenerationEnv
from tfrl.errors import ConfigError


def test_an_episode_ends_at_the_stop_string_and_scores_the_text_before_it():
    seen = []

    def reward(texts):
        seen.extend(texts)
        return np.array([len(t) for t in texts], float)

    config = TextGenerationConfig(reward, prompts=["ROMEO:"], max_new_tokens=10, stop="\n\n")
    env = TextGenerationEnv(config)
    env.reset(seed=0)
    ids = env.tokenizer.ids("ay\n\n")
    steps = [env.step(i) for i in ids]
    terminated = [s[2] for s in steps]
    assert terminated == [False, False, False, True]  # 4 steps, not max_new_tokens
    assert steps[-1][1] == 2.0 and steps[-1][4]["text"] == "ay" and seen == ["ay"]
    with pytest.raises(ConfigError, match="stop=''"):
        TextGenerationConfig(stop="")


def test_the_application_scales_the_kl_target_with_the_sample_length_and_reads_escapes():
    from applications import text_generation as app

    config = app.make_config(app.Args(max_new_tokens=96, target_kl=10.0, stop=r"\n\n"))
    assert config.target_kl == pytest.approx(20.0) and config.stop == "\n\n"
    assert config.max_kl == pytest.approx(30.0)  # the budget scales with it
    fixed = app.make_config(app.Args(target_kl=0.0))
    assert fixed.target_kl is None and fixed.stop is None
