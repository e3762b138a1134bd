"""BANKING77 loader, few-shot subsets and the intent-detection baseline (issue 20 item 2)."""
from __future__ import annotations

from collections import Counter

import pytest

from lepton_lib.cases import intent_bag_of_words_experiment, most_confused_intents
from lepton_lib.data import load_banking77


@pytest.fixture(scope="module")
def train():
    return load_banking77("train")


def test_splits_have_the_published_sizes_and_77_intents(train) -> None:
    test = load_banking77("test")
    assert (len(train), len(test)) == (10_003, 3_080)  # Casanueva et al. 2020, Table 1
    assert len(train.intents) == 77 and train.intents == test.intents
    assert set(Counter(test.labels).values()) == {40}  # 40 test queries per intent
    assert set(train.labels) == set(range(77))
    assert train.intents[train.labels[0]] == "card_arrival"  # the first row of train.csv


def test_per_intent_draws_a_balanced_seeded_subset(train) -> None:
    ten = train.per_intent(10, seed=3)
    assert len(ten) == 770 and set(Counter(ten.labels).values()) == {10}
    assert ten.texts == train.per_intent(10, seed=3).texts
    assert ten.texts != train.per_intent(10, seed=4).texts
    assert set(ten.texts) <= set(train.texts)
    rarest = min(Counter(train.labels).values())
    with pytest.raises(ValueError, match=rf"n must be at most {rarest} \(intent '.*' has only {rarest} queries\)"):
        train.per_intent(rarest + 1)
    with pytest.raises(ValueError, match="n must be a positive int"):
        train.per_intent(0)


def test_bad_split_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'dev'"):
        load_banking77("dev")


def test_most_confused_intents_counts_error_pairs_and_breaks_ties_by_name() -> None:
    intents = ("a", "b", "c")
    labels = [0, 0, 0, 1, 1, 2, 2]
    prediction = [1, 1, 0, 0, 2, 1, 2]
    assert most_confused_intents(labels, prediction, intents) == [("a", "b", 2), ("b", "a", 1), ("b", "c", 1),
                                                                 ("c", "b", 1)]
    assert most_confused_intents(labels, prediction, intents, top=1) == [("a", "b", 2)]
    with pytest.raises(ValueError, match=r"prediction must hold intent ids in \[0, 2\], got 3..3"):
        most_confused_intents([0], [3], intents)
    with pytest.raises(ValueError, match="must be 1-D and of one length"):
        most_confused_intents([0, 1], [0], intents)


def test_few_shot_bag_of_words_beats_chance_by_far_and_is_deterministic() -> None:
    result = intent_bag_of_words_experiment(seed=0, shots=10)
    assert result["train_size"] == 770 and len(result["prediction"]) == 3_080
    assert result["accuracy"] > 0.5  # chance is 1/77 = 0.013; measured 0.67 on the day this was written
    assert result["accuracy"] == intent_bag_of_words_experiment(seed=0, shots=10)["accuracy"]
