"""The typed config contract: TrainConfig and the model catalog. No torch here."""
