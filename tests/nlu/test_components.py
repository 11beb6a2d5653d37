"""The custom NLU components inside Rasa: the normalising tokenizer, the sentence featurizer, both in a model."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest
from rasa.core.agent import Agent
from rasa.model_training import train_nlu
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nlu.normalising_tokenizer import NormalisingTokenizer  # noqa: E402
from nlu.sentence_featurizer import SentenceEncoderFeaturizer  # noqa: E402


def tokens_of(text: str) -> list[tuple[str, str, int, int]]:
    tokenizer = NormalisingTokenizer(NormalisingTokenizer.get_default_config())
    message = Message(data={TEXT: text})
    tokenizer.process([message])
    return [(t.text, t.lemma, t.start, t.end) for t in message.get(TOKENS_NAMES[TEXT])]


def test_lemmas_are_normal_forms_and_offsets_stay_as_written() -> None:
    found = tokens_of("Jsuis perduuuu, jsp quoi faire à Molenbeek")
    assert [lemma for _, lemma, _, _ in found] == ["je suis", "perdu", "je sais pas", "quoi", "faire", "a", "molenbeek"]
    text = "Jsuis perduuuu, jsp quoi faire à Molenbeek"
    assert [text[start:end] for word, _, start, end in found] == [word for word, _, _, _ in found]
    assert found[-1][0] == "Molenbeek"  # an entity is read from what was typed


def test_arabizi_digits_and_arabic_letter_forms_are_unified() -> None:
    assert [lemma for _, lemma, _, _ in tokens_of("3endi mochkil f l5edma")] == ["aendi", "mochkil", "f", "lkhedma"]
    assert [lemma for _, lemma, _, _ in tokens_of("مدرسة إعدادية")] == ["مدرسه", "اعداديه"]
    assert [lemma for _, lemma, _, _ in tokens_of("rdv a 14h30")] == ["rendez vous", "a", "14h30"]


@pytest.fixture(scope="module")
def featurizer() -> SentenceEncoderFeaturizer:
    return SentenceEncoderFeaturizer(SentenceEncoderFeaturizer.get_default_config(), "sentence")


def test_one_sentence_vector_per_message_and_no_token_vectors(featurizer: SentenceEncoderFeaturizer) -> None:
    messages = [Message(data={TEXT: "je cherche un travail"}), Message(data={"intent": "greet"})]
    featurizer.process(messages)
    sequence, sentence = messages[0].get_dense_features(TEXT)
    assert sequence is None
    assert sentence is not None and sentence.features.shape == (1, 512)
    assert np.isclose(np.linalg.norm(sentence.features), 1.0, atol=1e-3)
    assert messages[1].get_dense_features(TEXT) == (None, None)  # no text, no feature


def test_translations_are_closer_than_other_requests(featurizer: SentenceEncoderFeaturizer) -> None:
    job_fr, job_nl, stop_fr = featurizer.vectors(["je cherche un travail", "ik zoek werk", "arrete de m'ecrire"])
    assert float(job_fr @ job_nl) > float(job_fr @ stop_fr) + 0.2


def test_a_batch_gives_the_same_vectors_as_one_by_one(featurizer: SentenceEncoderFeaturizer) -> None:
    texts = [f"message {i} stp" for i in range(70)]  # more than one batch of 64
    together = featurizer.vectors(texts)
    assert together.shape == (70, 512)
    assert np.allclose(together[65], featurizer.vectors([texts[65]])[0], atol=1e-4)


def test_bad_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        SentenceEncoderFeaturizer.validate_config({"batch_size": 0})


CONFIG = """
recipe: default.v1
language: xx
assistant_id: test
pipeline:
  - name: nlu.normalising_tokenizer.NormalisingTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 2
    max_ngram: 4
  - name: nlu.sentence_featurizer.SentenceEncoderFeaturizer
  - name: LogisticRegressionClassifier
"""

DATA = """
version: "3.1"
nlu:
- intent: share_goal
  examples: |
    - je sais pas quoi faire de ma vie
    - aucune idee de ce que je veux faire
    - ik weet niet wat ik wil doen
    - no idea what to do with my life
    - no se que hacer con mi vida
    - je suis perdu pour mon avenir
- intent: opt_out
  examples: |
    - arrete de m'envoyer des messages
    - stop les rappels
    - stuur me geen berichten meer
    - stop messaging me
    - deja de enviarme mensajes
    - plus de notifications
- intent: greet
  examples: |
    - bonjour
    - salut
    - hallo
    - hello
    - hola
    - salam
"""


def test_a_model_trains_saves_loads_and_reads_slang_with_both_components(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "nlu.yml").write_text(DATA, encoding="utf-8")
    model = train_nlu(str(tmp_path / "config.yml"), str(tmp_path / "nlu.yml"), str(tmp_path / "models"))
    agent = Agent.load(str(model))  # a new graph: the components are loaded back from the saved model
    parsed = asyncio.run(agent.parse_message("jsuis perduuu jsp quoi faire"))
    assert parsed["intent"]["name"] == "share_goal"
    parsed = asyncio.run(agent.parse_message("STOOOP les messages stp"))
    assert parsed["intent"]["name"] == "opt_out"
