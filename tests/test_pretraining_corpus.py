"""unlabelled_pretraining_text: the tasks' training text without labels, every evaluation sentence held out."""
from __future__ import annotations

import collections

import pytest

from lepton_lib.data import text
from lepton_lib.data.text import (
    PRETRAINING_SOURCES,
    evaluation_sentences,
    load_mr,
    load_sst2,
    normalize_for_overlap,
    unlabelled_pretraining_text,
)

pytestmark = pytest.mark.usefixtures("_offline_data")


@pytest.fixture(scope="module")
def _offline_data():
    try:
        load_sst2("dev")
        load_mr("test")
    except Exception as error:  # noqa: BLE001 (no data folder: nothing to check)
        pytest.skip(f"SST-2 / MR not available: {error}")


@pytest.fixture(scope="module")
def reviews():
    """SST-2 and MR training text only, so every returned sentence comes from a task's training split."""
    return unlabelled_pretraining_text(("sst2_train", "mr_train"))


def _by_word(sentences) -> dict[str, str]:
    """For each word, the (normalised) sentences holding it, each padded with spaces, joined by "|"."""
    by_word = collections.defaultdict(list)
    for sentence in sentences:
        for word in set(sentence.split()):
            by_word[word].append(f" {sentence} ")
    return {word: "|".join(texts) for word, texts in by_word.items()}


def _occurs_in(needle: str, by_word: dict[str, str]) -> bool:
    """Is ``needle`` a word-aligned substring of a sentence indexed in ``by_word``?"""
    rarest = min(needle.split(), key=lambda word: len(by_word.get(word, "")))
    return f" {needle} " in by_word.get(rarest, "")


def _with_at_least_two_words(sentences):
    return [s for s in sentences if len(s.split()) >= 2]


def _whitespace_normalised(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def test_normalisation_ignores_case_spacing_and_punctuation():
    assert normalize_for_overlap("It 's  a `` Charming '' film .") == normalize_for_overlap('it\'s a "charming" film.')
    assert normalize_for_overlap(" ( ") == ""


def test_no_returned_sentence_equals_lies_inside_or_contains_an_evaluation_sentence(reviews):
    evaluation = evaluation_sentences()
    assert len(evaluation) > 1800  # 872 SST-2 dev + 1,066 MR test, less duplicates
    returned = [normalize_for_overlap(s) for document in reviews.documents for s in document]
    assert all(returned)
    # checked by a different method than the library's: padded substring search among the sentences that share
    # the needle's rarest word
    evaluation_by_word, returned_by_word = _by_word(evaluation), _by_word(returned)
    inside = [s for s in returned if _occurs_in(s, evaluation_by_word)]
    assert not inside, f"{len(inside)} returned sentences lie inside an evaluation sentence: {inside[:3]}"
    contained = [e for e in _with_at_least_two_words(evaluation) if _occurs_in(e, returned_by_word)]
    assert not contained, f"{len(contained)} evaluation sentences occur in returned text: {contained[:3]}"
    # and the comparison the brief measured (lower case, whitespace collapsed) finds nothing either
    raw = {_whitespace_normalised(s) for s in load_sst2("dev").texts + load_mr("test").texts}
    assert not raw & {_whitespace_normalised(s) for document in reviews.documents for s in document}


def test_counts_cover_at_least_the_verbatim_overlaps(reviews):
    sst2_train, mr_train = load_sst2("train").texts, load_mr("train").texts
    sst2_dev = {_whitespace_normalised(s) for s in load_sst2("dev").texts}
    mr_test = {_whitespace_normalised(s) for s in load_mr("test").texts}
    verbatim_in_sst2 = sum(_whitespace_normalised(s) in mr_test for s in sst2_train)
    verbatim_in_mr = sum(_whitespace_normalised(s) in sst2_dev for s in mr_train)
    assert verbatim_in_sst2 >= 299 and verbatim_in_mr >= 351  # the overlaps measured for issue 17
    assert reviews.dropped["sst2_train"] >= verbatim_in_sst2
    assert reviews.dropped["mr_train"] >= verbatim_in_mr
    assert reviews.kept["sst2_train"] + reviews.dropped["sst2_train"] == len(sst2_train)
    assert reviews.kept["mr_train"] + reviews.dropped["mr_train"] == len(mr_train)
    assert len(reviews.documents) == reviews.kept["sst2_train"] + reviews.kept["mr_train"]
    assert all(len(document) == 1 for document in reviews.documents)  # independent snippets: one per document


def test_texts_are_unlabelled_and_in_order(reviews):
    first = reviews.documents[0][0]
    assert first in load_sst2("train").texts and "\t" not in first
    assert reviews.documents[-1][0] in load_mr("train").texts


def test_deterministic():
    assert unlabelled_pretraining_text(("mr_train",)) == unlabelled_pretraining_text(("mr_train",))


def test_min_contained_words_one_is_the_literal_rule():
    default = unlabelled_pretraining_text(("mr_train",))
    literal = unlabelled_pretraining_text(("mr_train",), min_contained_words=1)
    assert literal.dropped["mr_train"] > default.dropped["mr_train"]
    # SST-2 dev holds the one-word sentence "bad .": the literal rule drops every sentence saying "bad"
    assert not [s for d in literal.documents for s in d if "bad" in normalize_for_overlap(s).split()]
    assert [s for d in default.documents for s in d if "bad" in normalize_for_overlap(s).split()]
    with pytest.raises(ValueError, match="min_contained_words"):
        unlabelled_pretraining_text(("mr_train",), min_contained_words=0)


@pytest.mark.parametrize("sources", [("imdb",), "sst2_train", (), ("mr_train", "mr_train"), ("wikitext2", "books")])
def test_bad_sources_are_rejected_naming_the_argument_and_the_allowed_values(sources):
    with pytest.raises(ValueError, match="sources") as error:
        unlabelled_pretraining_text(sources)
    assert all(name in str(error.value) for name in PRETRAINING_SOURCES)


def test_reads_only_through_the_existing_loaders(monkeypatch):
    fetched = []

    def spy(name, *args, **kwargs):
        fetched.append(name)
        return real_fetch(name, *args, **kwargs)

    real_fetch = text.fetch
    monkeypatch.setattr(text, "fetch", spy)
    unlabelled_pretraining_text(("mr_train",))
    assert "sst2/dev.tsv" in fetched  # the evaluation sentences
    assert set(fetched) == {"sst2/dev.tsv", "mr_sentence_polarity/rt-polarity.pos",
                            "mr_sentence_polarity/rt-polarity.neg"}
