"""Whitespace tokens whose lemma is the word's normal form, so the featurizers see "jsp" as "je sais pas"."""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.understanding.normalise import normal_word


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class NormalisingTokenizer(WhitespaceTokenizer):
    """Rasa's whitespace tokenizer; each token of the user's text gets its normal form as lemma.

    The token's text and offsets stay as written, so entities are read from what the young person typed;
    `CountVectorsFeaturizer` (with its default `use_lemma: true`) counts the normal forms.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> NormalisingTokenizer:
        """Creates the tokenizer (no state to load)."""
        return cls(config)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        """Whitespace tokens, with the normal form of each word of the user's text as its lemma."""
        tokens = super().tokenize(message, attribute)
        if attribute == TEXT:
            for token in tokens:
                token.lemma = normal_word(token.text) or token.text
        return tokens
