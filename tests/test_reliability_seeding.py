"""Library functions that take a ``seed`` leave the caller's random stream where it was (issue 16, item 8).

They used to call ``torch.manual_seed(seed)``: a notebook cell that drew random numbers after
``run_paper_experiment(..., seed=0)`` got the same numbers whatever it had seeded itself. Each test
below checks both halves of the contract: the result depends on ``seed`` alone (not on the caller's
state), and the caller's next draw is the one it would have been without the call.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from lepton_lib.core import seeded_torch_rng


def _draws_after(caller_seed: int, call: Callable[[], object]) -> tuple[object, torch.Tensor]:
    torch.manual_seed(caller_seed)
    result = call()
    return result, torch.rand(4)


def _check_contract(call: Callable[[], object], same: Callable[[object, object], bool]) -> None:
    torch.manual_seed(11)
    untouched = torch.rand(4)
    first, after = _draws_after(11, call)
    assert torch.equal(after, untouched), "the call moved or reset the caller's random stream"
    second, _ = _draws_after(22, call)
    assert same(first, second), "the result depends on the caller's random state, not on seed alone"


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_seeded_torch_rng_draws_as_manual_seed_and_restores_the_callers_stream() -> None:
    torch.manual_seed(3)
    expected_inside = torch.rand(5)
    torch.manual_seed(99)
    expected_after = torch.rand(5)
    torch.manual_seed(99)
    with seeded_torch_rng(3):
        inside = torch.rand(5)
    assert torch.equal(inside, expected_inside) and torch.equal(torch.rand(5), expected_after)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        with seeded_torch_rng(-1):
            pass


def test_ddp_demo_build_model() -> None:
    from lepton_lib.scale.ddp_demo import build_model

    _check_contract(lambda: build_model(seed=4), _same_weights)


def test_pretraining_recipe_build_model() -> None:
    from lepton_lib.bert.pretraining_recipe import BOOK_RECIPE, build_model

    _check_contract(lambda: build_model(BOOK_RECIPE, 50), _same_weights)


def test_run_paper_experiment() -> None:
    from lepton_lib.data import load_planetoid
    from lepton_lib.gnn import run_paper_experiment

    cora = load_planetoid("cora", normalize_features=True)
    _check_contract(lambda: run_paper_experiment("gcn", cora, seed=1, max_epochs=3)[0], _same_weights)


def _tiny_classifier_setup():
    from lepton_lib.bert import BertConfig, BertForSequenceClassification, WordPieceTokenizer

    tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"])
    config = BertConfig.preset("tiny", vocab_size=8, hidden_size=32, intermediate_size=64,
                               hidden_dropout_prob=0.3)  # dropout draws from the global generator
    return tokenizer, config, BertForSequenceClassification


def test_train_student() -> None:
    from lepton_lib.scale import train_student

    tokenizer, config, classifier = _tiny_classifier_setup()
    texts, labels = ["good film", "bad film", "good", "bad"] * 2, [1, 0, 1, 0] * 2

    def call() -> list[float]:
        with seeded_torch_rng(0):
            student = classifier(config)
        return train_student(student, tokenizer, texts, labels, epochs=2, batch_size=4, max_length=8, seed=5)

    _check_contract(call, lambda a, b: a == b)


def test_finetune_classifier() -> None:
    from lepton_lib.bert import finetune_classifier
    from lepton_lib.data import LabelledSentences

    tokenizer, config, classifier = _tiny_classifier_setup()
    train = LabelledSentences(["good film", "bad film", "good", "bad"] * 2, [1, 0, 1, 0] * 2)

    def call() -> list[float]:
        with seeded_torch_rng(0):
            model = classifier(config)
        result = finetune_classifier(model, tokenizer, train, train, epochs=1, batch_size=4, max_length=8,
                                     seed=5, progress=False)
        return result.train_loss

    _check_contract(call, lambda a, b: a == b)


def test_build_classifier_from_scratch(tmp_path) -> None:
    from lepton_lib.bert import BertModel, build_classifier, save_pretrained

    tokenizer, config, _ = _tiny_classifier_setup()
    with seeded_torch_rng(0):
        save_pretrained(BertModel(config), tmp_path)
    tokenizer.save_vocab(tmp_path / "vocab.txt")
    _check_contract(lambda: build_classifier("scratch", seed=2, pretrained=tmp_path)[0], _same_weights)
    _check_contract(lambda: build_classifier("pretrained", seed=2, pretrained=tmp_path)[0], _same_weights)


def test_recommendation_experiment() -> None:
    from lepton_lib.cases import recommendation_experiment

    def call() -> dict:
        result = recommendation_experiment(seed=1, epochs=1, dim=8, num_layers=1)
        return result["models"]

    _check_contract(call, lambda a, b: a == b)
