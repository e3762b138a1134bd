"""BANKING77: online-banking customer queries labelled with one of 77 intents.

Casanueva et al. 2020 ("Efficient Intent Detection with Dual Sentence Encoders", arXiv:2003.04807)
built it to test intent detection with many fine-grained, overlapping intents in one domain: 10,003
training and 3,080 test queries (40 per intent). The paper's few-shot settings train on 10 or 30
examples per intent; :meth:`IntentQueries.per_intent` draws such a subset.
"""
from __future__ import annotations

import csv
import json
import random
from collections import Counter
from dataclasses import dataclass

from lepton_lib.core.checks import check_positive_int

from .download import fetch

__all__ = ["IntentQueries", "load_banking77"]

NUM_INTENTS = 77


@dataclass(frozen=True)
class IntentQueries:
    """Queries, their intent ids, and the intent names the ids index (``intents[label]``)."""

    texts: list[str]
    labels: list[int]
    intents: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def per_intent(self, n: int, seed: int = 0) -> IntentQueries:
        """``n`` queries of every intent, drawn without replacement by a seeded shuffle (a few-shot set)."""
        check_positive_int("n", n)
        counts = Counter(self.labels)
        rarest = min(counts.values())
        if n > rarest:
            intent = self.intents[min(counts, key=counts.get)]
            raise ValueError(f"n must be at most {rarest} (intent {intent!r} has only {rarest} queries), got {n}")
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        taken: Counter = Counter()
        chosen = []
        for i in order:
            if taken[self.labels[i]] < n:
                taken[self.labels[i]] += 1
                chosen.append(i)
        return IntentQueries([self.texts[i] for i in chosen], [self.labels[i] for i in chosen], self.intents)


def load_banking77(split: str = "train") -> IntentQueries:
    """BANKING77's "train" (10,003 queries) or "test" (3,080) split; label ids follow ``categories.json``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    intents = tuple(json.loads(fetch("banking77/categories.json").read_text(encoding="utf-8")))
    if len(intents) != NUM_INTENTS or len(set(intents)) != NUM_INTENTS:
        raise ValueError(f"banking77/categories.json must list {NUM_INTENTS} distinct intents, got {len(intents)}")
    index = {name: i for i, name in enumerate(intents)}
    with open(fetch(f"banking77/{split}.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if rows[0] != ["text", "category"]:
        raise ValueError(f"banking77/{split}.csv has header {rows[0]}, expected ['text', 'category']")
    texts, labels = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2 or row[1] not in index:
            raise ValueError(f"banking77/{split}.csv line {line}: expected 'text,category' with one of the "
                             f"{NUM_INTENTS} intents, got {row!r}")
        texts.append(row[0])
        labels.append(index[row[1]])
    return IntentQueries(texts, labels, intents)
