"""Text generation: a Keras language model, fine-tuned by RL with a KL penalty, served.

model, tokenizer, _ = tfrl.text.pretrained_lm()          # bundled / cached GRU LM
tuner = tfrl.text.fine_tune(tfrl.text.KeywordReward(["love"]), method="rloo")
generator = tuner.generator()
generator.generate(["ROMEO:"], max_length=64, seed=1)
tfrl.export(generator, "saved_models/text_generator")   # serving_default: prompts → text
"""

from tfrl.text.corpus import load_corpus, load_tfds, speeches
from tfrl.text.finetune import (
    FineTuneConfig,
    FineTuner,
    NonFiniteError,
    fine_tune,
    speaker_prompts,
)
from tfrl.text.metrics import distinct_n, diversity, repeat_run
from tfrl.text.model import CharLM, LMConfig, build_lm, load_lm, pretrain, pretrained_lm, save_lm
from tfrl.text.rewards import (
    KeywordReward,
    LengthReward,
    ModelReward,
    SpeakerRewardConfig,
    train_speaker_reward,
)
from tfrl.text.sampling import GenerationConfig, TextGenerator, sample_rollout, sample_tokens
from tfrl.text.tokenizer import CharTokenizer, TextInputError

__all__ = [
    "CharLM",
    "CharTokenizer",
    "FineTuneConfig",
    "FineTuner",
    "GenerationConfig",
    "KeywordReward",
    "LMConfig",
    "LengthReward",
    "ModelReward",
    "NonFiniteError",
    "SpeakerRewardConfig",
    "TextGenerator",
    "TextInputError",
    "build_lm",
    "distinct_n",
    "diversity",
    "fine_tune",
    "load_corpus",
    "load_lm",
    "load_tfds",
    "pretrain",
    "pretrained_lm",
    "repeat_run",
    "sample_rollout",
    "sample_tokens",
    "save_lm",
    "speaker_prompts",
    "speeches",
    "train_speaker_reward",
]
