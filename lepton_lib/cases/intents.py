"""Intent detection for the customer-service case: which of BANKING77's 77 intents a query expresses.

A support assistant routes "my card still hasn't arrived" to *card_arrival* and "I was charged twice"
to *transaction_charged_twice*. :func:`intent_bag_of_words_experiment` is the baseline every neural
model must beat: TF-IDF unigrams and bigrams into a multinomial logistic regression, trained on all
10,003 training queries or on ``shots`` per intent (the paper's few-shot settings use 10 and 30).
:func:`most_confused_intents` lists the pairs of intents a model mixes up most, the errors a support
team would see.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from lepton_lib.data.banking77 import load_banking77
from lepton_lib.foundations.metrics import accuracy

__all__ = ["intent_bag_of_words_experiment", "most_confused_intents"]


def intent_bag_of_words_experiment(seed: int = 0, shots: int | None = None, C: float = 10.0) -> dict:
    """Test accuracy on BANKING77 of TF-IDF (1-2 grams) + logistic regression.

    ``shots``: train on that many queries per intent (drawn with ``seed``), or on all when None.
    Returns ``{"seed", "shots", "train_size", "accuracy", "prediction" (3,080,), "labels" (3,080,)}``.
    """
    train, test = load_banking77("train"), load_banking77("test")
    if shots is not None:
        train = train.per_intent(shots, seed=seed)
    # The classifier is deterministic given the data (lbfgs); the seed only picks the few-shot subset.
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(C=C, max_iter=2000))
    model.fit(train.texts, train.labels)
    prediction = model.predict(test.texts)
    return {"seed": seed, "shots": shots, "train_size": len(train), "accuracy": accuracy(test.labels, prediction),
            "prediction": prediction, "labels": np.asarray(test.labels)}


def most_confused_intents(labels: Sequence[int], prediction: Sequence[int], intents: Sequence[str],
                          top: int = 10) -> list[tuple[str, str, int]]:
    """The ``top`` (true intent, predicted intent, count) pairs among the errors, most frequent first."""
    labels, prediction = np.asarray(labels), np.asarray(prediction)
    if labels.shape != prediction.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and prediction {prediction.shape} must be 1-D and of one length")
    for name, ids in (("labels", labels), ("prediction", prediction)):
        if ids.size and (ids.min() < 0 or ids.max() >= len(intents)):
            raise ValueError(f"{name} must hold intent ids in [0, {len(intents) - 1}], got {ids.min()}..{ids.max()}")
    errors = Counter(zip(labels[labels != prediction].tolist(), prediction[labels != prediction].tolist()))
    # Ties are broken by the intents' names so the list is the same on every machine.
    ranked = sorted(errors.items(), key=lambda item: (-item[1], intents[item[0][0]], intents[item[0][1]]))
    return [(intents[t], intents[p], n) for (t, p), n in ranked[:top]]
