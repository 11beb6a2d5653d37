"""Answers about Actiris: which of its services or practical subjects a question is about."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from bot.knowledge import Knowledge, Topic
from bot.understanding.phrases import Vocabulary, tokens


class Topics:
    """Finds the Actiris topic of a free-text question from the keywords in knowledge/actiris.yml."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.keywords = Vocabulary({t.id: t.keywords for t in knowledge.topics.values()}, prefix=True)

    def about(self, text: str) -> Topic | None:
        """The topic the question is most about: most keywords found, then the longest one, then the first."""
        hits = self.keywords.find(tokens(text))
        if not hits:
            return None
        count = Counter(hit.value for hit in hits)
        longest: dict[str, int] = {}
        for hit in hits:
            longest[hit.value] = max(longest.get(hit.value, 0), hit.end - hit.start)
        first = {hit.value: index for index, hit in reversed(list(enumerate(hits)))}
        best = max(count, key=lambda topic: (count[topic], longest[topic], -first[topic]))
        return self.knowledge.topics[best]

    def services(self) -> list[Topic]:
        return [t for t in self.knowledge.topics.values() if t.kind == "service"]


@lru_cache
def topics() -> Topics:
    from bot.knowledge import knowledge

    return Topics(knowledge())
