"""tfrl's gymnasium environments, registered under the `tfrl/` namespace on import.

import environments, gymnasium
env = gymnasium.make("tfrl/MultiArmedBandit-v0")
"""

from gymnasium.envs.registration import register, registry

__all__ = ["IDS"]

IDS = {
    "tfrl/MultiArmedBandit-v0": "environments.bandit.env:MultiArmedBanditEnv",
    "tfrl/TextGeneration-v0": "environments.text_generation.env:TextGenerationEnv",
}

for _id, _entry_point in IDS.items():
    if _id not in registry:
        register(id=_id, entry_point=_entry_point)
