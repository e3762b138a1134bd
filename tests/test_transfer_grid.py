"""Pieces of the transfer grid (issue 17): checkpoints exported for a learning curve, the LSTM baseline as a
starting point of the fine-tuning grid, several label budgets in one grid, and the 95% intervals over seeds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy import stats

from lepton_lib.bert import LSTMClassifier, build_classifier, load_pretrained
from lepton_lib.bert import fine_tuning_recipe
from lepton_lib.bert.pretraining_recipe import Recipe, export_checkpoints, run_recipe
from lepton_lib.foundations import mean_interval

QUICK = dict(preset="tiny", corpora=("tiny_shakespeare",), vocab_size=400, seq_len=32, batch_size=4, steps=2, lr=1e-3,
             warmup_steps=1, dropout=0.0, max_documents=40)


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mlm"
    run_recipe(Recipe(**QUICK, nsp=False), out, checkpoint_every=1, progress=False, device="cpu")
    return out


def test_every_checkpoint_is_exported_as_a_loadable_directory(mlm_run):
    steps = sorted(p.name for p in (mlm_run / "steps").iterdir())
    assert steps == ["step-00000001", "step-00000002"]
    final, last, first = (load_file(str(mlm_run / d / "model.safetensors"))
                          for d in ("final", "steps/step-00000002", "steps/step-00000001"))
    assert set(final) == set(last) == set(first)
    load_pretrained(mlm_run / "steps" / "step-00000001")  # a Hugging Face directory our loader reads
    assert all(torch.equal(final[k], last[k]) for k in final)  # the last checkpoint is the final model
    assert not all(torch.equal(final[k], first[k]) for k in final)  # one step earlier, other weights
    assert (mlm_run / "steps" / "step-00000001" / "vocab.txt").read_text() == (mlm_run / "final" / "vocab.txt").read_text()


def test_export_needs_a_finished_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="final/config.json"):
        export_checkpoints(tmp_path)


def test_the_lstm_baseline_is_a_seeded_starting_point_on_the_given_vocabulary(mlm_run):
    a, tokenizer = build_classifier("lstm", 3, mlm_run / "final")
    b, _ = build_classifier("lstm", 3, mlm_run / "final")
    c, _ = build_classifier("lstm", 4, mlm_run / "final")
    assert isinstance(a, LSTMClassifier) and a.config.vocab_size == tokenizer.vocab_size == 400
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    with pytest.raises(ValueError, match="'lstm'"):
        build_classifier("rnn")


def test_mean_interval_is_students_t():
    values = [0.61, 0.60, 0.63, 0.62, 0.59]
    got = mean_interval(values)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert got.n == 5 and got.mean == pytest.approx(0.61)
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)
    assert mean_interval(values, 0.5).high < got.high  # a lower confidence gives a narrower interval
    for bad in ([0.5], [0.5, float("nan")], [[0.5, 0.6]]):
        with pytest.raises(ValueError, match="values must be"):
            mean_interval(bad)
    with pytest.raises(ValueError, match="confidence"):
        mean_interval(values, 95)


def test_a_grid_over_two_label_budgets_reports_an_interval_per_budget(mlm_run, tmp_path):
    out = tmp_path / "grid.json"
    fine_tuning_recipe.main(["--tasks", "mr", "--pretrained", f"mlm={mlm_run / 'final'}", "--scratch",
                             str(mlm_run / "final"), "--lstm", "--seeds", "0", "1", "--train-size", "8", "16",
                             "--epochs", "1", "--dev-size", "16", "--threads", "1", "--out", str(out)])
    grid = json.loads(out.read_text())
    assert sorted(grid["intervals"]) == [f"mr/{n}/{m}" for n in (16, 8) for m in ("lstm", "mlm", "scratch")]
    assert grid["summary"] == {}  # several budgets: the one-budget summary would mix them
    assert {(r["train_size"], r["model"]) for r in grid["runs"]} == {(n, m) for n in (8, 16)
                                                                     for m in ("mlm", "scratch", "lstm")}
    for key, interval in grid["intervals"].items():
        task, size, model = key.split("/")
        accs = [r["dev_accuracy"][-1] for r in grid["runs"] if (r["train_size"], r["model"]) == (int(size), model)]
        assert interval["n"] == 2 and interval["mean"] == pytest.approx(np.mean(accs))
        assert interval["low"] <= interval["mean"] <= interval["high"]
    assert set(grid["pretraining"]) == {"mlm", "scratch"}
