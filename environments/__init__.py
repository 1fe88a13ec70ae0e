"""tfrl's gymnasium environments, registered under the `tfrl/` namespace on import.

import environments, gymnasium
env = gymnasium.make("tfrl/MultiArmedBandit-v0")
"""

from gymnasium.envs.registration import register, registry

__all__ = ["IDS"]

IDS = {
    "tfrl/MultiArmedBandit-v0": "environments.bandit.env:MultiArmedBanditEnv",
    "tfrl/Recommendation-v0": "environments.recommendation.env:RecommendationEnv",
    "tfrl/ImageClassification-v0": "environments.image_classification.env:ImageClassificationEnv",
    "tfrl/TrainingControl-v0": "environments.training_control.env:TrainingControlEnv",
    "tfrl/TrainingControl-v1": "environments.training_control.env:TrainingControlEnv",
    "tfrl/TextGeneration-v0": "environments.text_generation.env:TextGenerationEnv",
}

# Environments that step many copies as one computation: tfrl.envs.make(id, num_envs=N) uses these.
VECTOR_ENTRY_POINTS = {
    "tfrl/Recommendation-v0": "environments.recommendation.env:RecommendationVectorEnv",
    "tfrl/ImageClassification-v0": (
        "environments.image_classification.env:ImageClassificationVectorEnv"
    ),
}

# Earlier versions keep their defaults (see each environment's version history).
KWARGS = {"tfrl/TrainingControl-v0": {"lr_range": 10.0}}

for _id, _entry_point in IDS.items():
    if _id not in registry:
        register(
            id=_id,
            entry_point=_entry_point,
            vector_entry_point=VECTOR_ENTRY_POINTS.get(_id),
            kwargs=KWARGS.get(_id, {}),
        )
