"""Pieces of the transfer grid (issue 17): checkpoints exported for a learning curve, the LSTM baseline as a
starting point of the fine-tuning grid, several label budgets in one grid, and the 95% intervals over seeds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy import stats

from lepton_lib.bert import LSTMClassifier, LSTMClassifierConfig, build_classifier, finetune_classifier, load_pretrained
from lepton_lib.bert.tokenization import WordPieceTokenizer
from lepton_lib.data.text import LabelledSentences
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


def test_min_steps_gives_small_label_budgets_more_epochs(mlm_run, tmp_path):
    out = tmp_path / "grid.json"
    fine_tuning_recipe.main(["--tasks", "mr", "--scratch", str(mlm_run / "final"), "--seeds", "0",
                             "--train-size", "8", "16", "--batch-size", "4", "--epochs", "1", "--min-steps", "6",
                             "--dev-size", "8", "--threads", "1", "--out", str(out)])
    runs = {r["train_size"]: r for r in json.loads(out.read_text())["runs"]}
    # 8 sentences = 2 batches: 3 epochs reach 6 steps; 16 sentences = 4 batches: 2 epochs (8 steps, not fewer)
    assert (runs[8]["epochs"], len(runs[8]["train_loss"])) == (3, 6)
    assert (runs[16]["epochs"], len(runs[16]["train_loss"])) == (2, 8)


def test_the_fused_optimizer_takes_the_same_steps():
    texts = ["a good film", "a bad film", "good good", "bad bad", "fine film", "awful film"] * 2
    data = LabelledSentences(texts, [1, 0, 1, 0, 1, 0] * 2)
    tokenizer = WordPieceTokenizer.train(texts, 60, min_frequency=1)
    losses = []
    for fused in (False, True):
        torch.manual_seed(0)
        model = LSTMClassifier(LSTMClassifierConfig(vocab_size=tokenizer.vocab_size, embedding_size=8,
                                                    pad_token_id=tokenizer.pad_id))
        losses.append(finetune_classifier(model, tokenizer, data, data, 2, 4, 1e-2, progress=False,
                                          fused=fused).train_loss)
    assert len(losses[0]) == 6 and losses[0][0] != losses[0][-1]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)  # the same update, rounded differently


def test_pretraining_flops_match_torchs_count_of_a_training_step():
    from torch.utils.flop_counter import FlopCounterMode

    from lepton_lib.bert import BertConfig, BertForPreTraining, pretraining_flops

    config = BertConfig.preset("tiny", vocab_size=1000)
    model = BertForPreTraining(config, use_nsp=False)
    ids = torch.randint(5, 1000, (2, 64))
    labels = torch.full_like(ids, -100)
    labels[:, ::8] = ids[:, ::8]  # 16 masked positions
    with FlopCounterMode(display=False) as counter:
        model(ids, torch.ones_like(ids), torch.zeros_like(ids), mlm_labels=labels).loss.backward()
    ours = pretraining_flops(config, tokens=ids.numel(), seq_len=64, masked=16)
    # torch counts the matrix products only (no bias, norm or softmax): within 3% of ours
    assert ours == pytest.approx(counter.get_total_flops(), rel=0.03)
    with pytest.raises(ValueError, match="masked"):
        pretraining_flops(config, tokens=10, seq_len=5, masked=11)


def test_mean_pooling_reads_the_real_tokens_only():
    from lepton_lib.bert import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=50, num_labels=2, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config, pooling="mean").eval()
    ids = torch.tensor([[2, 7, 9, 3]])
    padded = torch.tensor([[2, 7, 9, 3, 0, 0]])
    with torch.no_grad():
        alone = model(ids, torch.ones_like(ids))
        with_padding = model(padded, torch.tensor([[1, 1, 1, 1, 0, 0]]))
        hidden = model.bert(ids, torch.ones_like(ids)).last_hidden_state
    assert torch.allclose(alone, with_padding, atol=1e-5)  # padding changes nothing
    assert torch.allclose(alone, model.classifier(hidden.mean(1)), atol=1e-6)
    model.pooling = "cls"
    with torch.no_grad():
        assert not torch.allclose(model(ids, torch.ones_like(ids)), alone)
    with pytest.raises(ValueError, match="pooling must be one of"):
        BertForSequenceClassification(config, pooling="max")
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_classifier("scratch", 0, None, pooling="first")
