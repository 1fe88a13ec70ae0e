"""The learned speaker reward and its independent judge."""

import pytest

from tfrl.errors import ConfigError, UnknownNameError
from tfrl.text import SpeakerRewardConfig, speeches, train_speaker_reward
from tfrl.text.rewards import auc, holdout_split, openings


def test_a_judge_holds_out_another_tenth_of_the_speeches():
    items = [str(i) for i in range(20)]
    assert holdout_split(items, 9) == (items[:18], ["18", "19"])
    train, held = holdout_split(items, 0)
    assert held == ["0", "1"] and train == items[2:]
    assert openings(["Faith, I can tell"], 8) == ["\nFaith, "]  # shaped like a generation
    with pytest.raises(ConfigError, match="holdout=10"):
        SpeakerRewardConfig(holdout=10)
    with pytest.raises(UnknownNameError, match=r"Unknown architecture 'gru'"):
        SpeakerRewardConfig(architecture="gru")


def test_auc_is_the_probability_that_a_positive_outranks_a_negative():
    assert auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auc([0.1], [0.9]) == 0.0
    assert auc([0.3, 0.6], [0.5, 0.5]) == 0.5  # 0.6 outranks both negatives, 0.3 neither
    assert auc([0.5], [0.5]) == 0.5


def test_speaker_reward_trains_the_judges_architecture_and_reports_real_text_ceilings(tokenizer):
    play = "".join(
        f"Nurse:\nGood my lord, speech {i} of mine.\n\nROMEO:\nO, fair night {i}.\n\n"
        for i in range(20)
    )
    config = SpeakerRewardConfig(length=16, examples=64, epochs=1, architecture="bag", holdout=0)
    reward, metrics = train_speaker_reward("Nurse", tokenizer, text=play, config=config)
    pooling = [type(layer).__name__ for layer in reward.model.layers]
    assert "GlobalAveragePooling1D" in pooling  # the judge's architecture, not the proxy's
    assert set(metrics) == {
        "val_accuracy",
        "val_auc",
        "opening_auc",
        "speaker_score",
        "others_score",
        "speaker_opening_score",
        "others_opening_score",
    }
    scores = reward(["\nGood my lord", "\nO, she says"])
    assert scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    # The values, not only the names: the real-text ceilings are the reward's own scores of
    # the held-out tenth (here the first), shaped like generations.
    pairs = speeches(play)
    held = [
        reward(openings(holdout_split([t for w, t in pairs if (w == "Nurse") == mine], 0)[1], 16))
        for mine in (True, False)
    ]
    assert metrics["speaker_opening_score"] == pytest.approx(float(held[0].mean()), abs=1e-5)
    assert metrics["others_opening_score"] == pytest.approx(float(held[1].mean()), abs=1e-5)
    assert metrics["opening_auc"] == pytest.approx(auc(held[0], held[1]))
    for key in ("val_accuracy", "val_auc", "speaker_score", "others_score"):
        assert 0 <= metrics[key] <= 1, (key, metrics[key])
