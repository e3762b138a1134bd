"""lepton_lib.bert.pretraining_recipe's options for issue 17: the pair objective (nsp / sop / none), the
task-adaptive corpus "tapt", the bert-base-uncased vocabulary, the pair-label mask and the corpus sample.

The book's recipes must keep their cache folders (``Recipe.key()``) and printed form: the notebooks and
CI's cache depend on them. The end-to-end runs are a few steps of the tiny preset on a few documents.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest
import torch

from lepton_lib.bert import BertForPreTraining, create_nsp_examples, create_sop_examples, load_pretrained
from lepton_lib.bert import pack_sequences, tokenize_documents
from lepton_lib.bert import pretraining_recipe as pr
from lepton_lib.bert.pretraining_recipe import BOOK_RECIPE, BOOK_RECIPE_NO_NSP, Recipe, prepare_data, run_recipe
from lepton_lib.data.text import unlabelled_pretraining_text

# Computed from the code before these options existed (commit 19038db):
#   git show HEAD:lepton_lib/bert/pretraining_recipe.py > a temporary checkout of lepton_lib, then
#   python -c "from lepton_lib.bert.pretraining_recipe import *; print(BOOK_RECIPE.key(), BOOK_RECIPE_NO_NSP.key(),
#              Recipe().key()); print(BOOK_RECIPE)"
OLD_KEYS = {"BOOK_RECIPE": "5da984474654", "BOOK_RECIPE_NO_NSP": "a50e9fa656ad", "Recipe()": "0eb26e0c84e4"}
OLD_REPR = ("Recipe(preset='tiny', corpora=('wikitext2',), vocab_size=3000, seq_len=64, batch_size=32, "
            "grad_accum_steps=1, steps=300, lr=0.002, warmup_steps=30, weight_decay=0.01, nsp=True, dropout=0.0, "
            "seed=0, precision='auto')")
NEW_FIELDS = ("pair_task", "vocabulary", "mask_pair_labels", "max_documents")

# A few steps of the tiny preset on 40 of Tiny Shakespeare's 395 documents (two of them held out).
QUICK = dict(preset="tiny", corpora=("tiny_shakespeare",), vocab_size=400, seq_len=32, batch_size=4, steps=2, lr=1e-3,
             warmup_steps=1, dropout=0.0, max_documents=40)


def test_the_book_recipes_keep_their_cache_keys_and_printed_form():
    assert BOOK_RECIPE.key() == OLD_KEYS["BOOK_RECIPE"]
    assert BOOK_RECIPE_NO_NSP.key() == OLD_KEYS["BOOK_RECIPE_NO_NSP"]
    assert Recipe().key() == OLD_KEYS["Recipe()"]
    assert repr(BOOK_RECIPE) == str(BOOK_RECIPE) == OLD_REPR  # pretraining.ipynb prints it
    assert set(asdict(BOOK_RECIPE)) - set(BOOK_RECIPE.record()) == set(NEW_FIELDS)  # the record as it was
    assert BOOK_RECIPE.pair_objective == "nsp" and BOOK_RECIPE_NO_NSP.pair_objective == "none"


@pytest.mark.parametrize("change", [dict(pair_task="sop"), dict(vocabulary="bert-base-uncased"),
                                    dict(mask_pair_labels=True), dict(max_documents=10), dict(corpora=("tapt",))])
def test_a_new_option_set_away_from_its_default_names_a_new_cache_folder_and_shows_in_the_repr(change):
    recipe = Recipe(**(asdict(BOOK_RECIPE) | change))
    assert recipe.key() != BOOK_RECIPE.key()
    name, value = next(iter(change.items()))
    assert f"{name}={value!r}" in repr(recipe) and recipe.record()[name] == value
    assert Recipe(**asdict(recipe)) == recipe and Recipe(**asdict(recipe)).key() == recipe.key()


@pytest.mark.parametrize(("change", "message"), [
    (dict(pair_task="mlm"), r"pair_task \(--pairs\) must be one of \('nsp', 'sop'\), got 'mlm'"),
    (dict(vocabulary="bert"), r"vocabulary \(--vocabulary\) must be one of .*got 'bert'"),
    (dict(corpora=("tapt", "wikitext2")), r"corpora \(--corpus\) must be .*'tapt' alone"),
    (dict(corpora=("imdb",)), r"corpora \(--corpus\) must be names from .*got \('imdb',\)"),
    (dict(max_documents=-1), r"max_documents \(--max-documents\) must be an int >= 0"),
    (dict(mask_pair_labels=1), r"mask_pair_labels must be a bool, got 1"),
    (dict(nsp=False, pair_task="sop"), r"need a pair head, but nsp=False \(--pairs none\)"),
    (dict(nsp=False, mask_pair_labels=True), r"need a pair head, but nsp=False \(--pairs none\)"),
])
def test_a_bad_recipe_is_refused_by_field_name(change, message):
    with pytest.raises(ValueError, match=message):
        Recipe(**(asdict(BOOK_RECIPE) | change))


@pytest.mark.parametrize(("argv", "message"), [
    (["--pairs", "mlm"], "argument --pairs: invalid choice: 'mlm'"),
    (["--vocabulary", "bert"], "argument --vocabulary: invalid choice: 'bert'"),
    (["--corpus", "imdb"], "argument --corpus: invalid choice: 'imdb'"),
    (["--max-documents", "-3"], "argument --max-documents: expected an int >= 0, got '-3'"),
    (["--pairs", "sop", "--no-nsp"], "argument --no-nsp: not allowed with argument --pairs"),
    (["--pairs", "none", "--mask-pair-labels"], "mask_pair_labels=True need a pair head, but nsp=False (--pairs none)"),
    (["--corpus", "tapt", "wikitext2"], "corpora (--corpus) must be names from"),
])
def test_the_command_line_refuses_bad_flags_by_name(argv, message, capsys):
    with pytest.raises(SystemExit):
        pr.main([*argv, "--out", "x"])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "expected"), [
    ([], Recipe()),
    (["--no-nsp"], Recipe(nsp=False)),
    (["--pairs", "none"], Recipe(nsp=False)),
    (["--pairs", "sop", "--mask-pair-labels"], Recipe(pair_task="sop", mask_pair_labels=True)),
    (["--corpus", "tapt", "--vocabulary", "bert-base-uncased", "--max-documents", "50"],
     Recipe(corpora=("tapt",), vocabulary="bert-base-uncased", max_documents=50)),
])
def test_the_command_line_builds_the_recipe_its_flags_say(argv, expected, monkeypatch):
    seen = {}

    def fake_run(recipe, *args, **kwargs):
        seen["recipe"] = recipe
        return {"heldout_after": {"mlm_loss": 1.0, "perplexity": math.e, "nsp_accuracy": 0.5}}

    monkeypatch.setattr(pr, "run_recipe", fake_run)
    pr.main([*argv, "--out", "x"])
    assert seen["recipe"] == expected and seen["recipe"].key() == expected.key()


def _check_run(result: dict, folder, recipe: Recipe, vocab_size: int) -> BertForPreTraining:
    assert len(result["log"]["step"]) == recipe.steps
    assert all(math.isfinite(x) for x in result["log"]["loss"])
    assert json.loads((folder / "metrics.json").read_text())["recipe"] == json.loads(json.dumps(recipe.record()))
    model = load_pretrained(folder / "final", BertForPreTraining)
    assert model.bert.embeddings.word_embeddings.weight.shape[0] == model.config.vocab_size == vocab_size
    assert len((folder / "final" / "vocab.txt").read_text(encoding="utf-8").splitlines()) == vocab_size
    return model


@pytest.mark.parametrize("objective", ["nsp", "sop", "none"])
def test_each_pair_objective_builds_its_examples_and_trains_end_to_end(objective, tmp_path):
    recipe = Recipe(**QUICK, nsp=objective != "none", pair_task="sop" if objective == "sop" else "nsp")
    assert recipe.pair_objective == objective
    data = prepare_data(recipe)
    train_docs, _ = pr.split_documents(pr.recipe_documents(recipe))
    assert len(pr.recipe_documents(recipe)) == 40 and data.stats["train_documents"] == 38
    ids = tokenize_documents(train_docs, data.tokenizer)
    expected = {"nsp": lambda: create_nsp_examples(ids, 32, seed=0),
                "sop": lambda: create_sop_examples(ids, 32, seed=0),
                "none": lambda: pack_sequences(ids, 32, data.tokenizer.sep_id)}[objective]()
    assert list(data.train.examples) == expected
    result = run_recipe(recipe, tmp_path, progress=False, device="cpu")
    _check_run(result, tmp_path, recipe, data.tokenizer.vocab_size)
    assert data.tokenizer.vocab_size <= 400  # the trained vocabulary
    after = result["heldout_after"]["nsp_accuracy"]
    if objective == "none":
        assert math.isnan(after) and all(x == 0.0 for x in result["log"]["nsp_loss"])
    else:
        assert 0.0 <= after <= 1.0 and all(x > 0.0 for x in result["log"]["nsp_loss"])


def test_the_tapt_corpus_with_the_bert_base_vocabulary_and_masked_pair_labels_trains_end_to_end(tmp_path):
    recipe = Recipe(**(QUICK | dict(corpora=("tapt",), vocabulary="bert-base-uncased", max_documents=600)),
                    pair_task="sop", mask_pair_labels=True)
    documents = pr.recipe_documents(recipe)
    full = unlabelled_pretraining_text().documents  # evaluation sentences held out
    assert len(documents) == 600
    assert len(full) > 60_000 and all(d in full for d in documents[:50])  # a sample of the TAPT documents
    data = prepare_data(recipe)
    assert data.tokenizer.vocab_size == 30_522
    assert (data.tokenizer.cls_id, data.tokenizer.sep_id, data.tokenizer.mask_id) == (101, 102, 103)
    paired = [bool(e.tokens_b) for e in data.train.examples]
    assert 0 < sum(paired) < len(paired)  # pairs from multi-sentence documents, packed snippets
    assert data.stats["train_pairs"] == sum(paired)
    labels = data.train([(0, i) for i in range(len(paired))])["nsp_labels"]
    assert ((labels == -100) == ~torch.tensor(paired)).all()
    result = run_recipe(recipe, tmp_path, progress=False, device="cpu")
    model = _check_run(result, tmp_path, recipe, 30_522)
    assert model.bert.embeddings.word_embeddings.weight.shape == (30_522, model.config.hidden_size)
    assert model.config.vocab_size == 30_522
