import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import environments  # noqa: F401  (registers tfrl/ ids)
from environments.text_generation import TextGenerationConfig, TextGenerationEnv


def test_registered_and_passes_gymnasium_checks():
    env = gymnasium.make("tfrl/TextGeneration-v0", max_new_tokens=4)
    check_env(env.unwrapped, skip_render_check=True)


def test_episode_writes_text_and_scores_it_at_the_end():
    reward = lambda texts: np.array([t.count("e") for t in texts], float)
    env = TextGenerationEnv(TextGenerationConfig(reward, prompts=["ROMEO:"], max_new_tokens=3))
    obs, info = env.reset(seed=0)
    assert info["prompt"] == "ROMEO:"
    assert env.tokenizer.text(obs[obs >= 0]) == "\nROMEO:"
    e = env.tokenizer.vocabulary.index("e")
    rewards = []
    for _ in range(3):
        obs, r, terminated, truncated, info = env.step(e)
        rewards.append(r)
    assert terminated and not truncated
    assert rewards == [0.0, 0.0, 3.0] and info["text"] == "eee"
    assert env.tokenizer.text(obs[obs >= 0]).endswith("ROMEO:eee")


def test_prompts_outside_the_vocabulary_are_refused():
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        TextGenerationEnv(prompts=["CAFÉ:"])


def test_an_action_outside_the_vocabulary_is_a_clear_tfrl_error():
    from tfrl.errors import InvalidActionError, TfrlError

    env = TextGenerationEnv(TextGenerationConfig(prompts=["ROMEO:"], max_new_tokens=3))
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"action=65 is not a token id in \[0, 65\)") as e:
        env.step(65)
    assert isinstance(e.value, TfrlError) and isinstance(e.value, ValueError)
