"""`model.fit` integration: RL controllers as Keras callbacks.

controller = tfrl.keras.RLController("saved_models/lr_controller")
model.fit(x, y, validation_data=(x_val, y_val), epochs=20, callbacks=[controller])
"""

from tfrl.keras.controller import RLController
from tfrl.keras.features import LR_FACTORS, LR_RANGE, OBSERVATION_SIZE, TrainingStats

__all__ = ["LR_FACTORS", "LR_RANGE", "OBSERVATION_SIZE", "RLController", "TrainingStats"]
