"""The LSTM baseline: the from-scratch cell against torch.nn.LSTM, padding, learning, validation, seeds."""
import pytest
import torch
from torch import nn

from lepton_lib.bert.fine_tuning import evaluate_classifier, train_on_batches
from lepton_lib.bert.lstm_classifier import (LSTMClassifier, LSTMClassifierConfig, LSTMWeights, lstm_cell,
                                             lstm_scan)


def small_config(**overrides) -> LSTMClassifierConfig:
    return LSTMClassifierConfig(**({"vocab_size": 20, "embedding_size": 8, "hidden_size": 6} | overrides))


def batch(rows: list[list[int]], width: int | None = None) -> dict[str, torch.Tensor]:
    """Right-padded ids and mask, as WordPieceTokenizer.encode_batch makes them."""
    width = width or max(map(len, rows))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


# --- the cell --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_matches_torch_lstm_outputs_and_gradients(reverse):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, batch_first=True, bidirectional=True).double()
    x = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    direction = 1 if reverse else 0
    ours, (h, c) = lstm_scan(x, LSTMWeights.from_torch(lstm, reverse=reverse), reverse=reverse)
    theirs, (h_ref, c_ref) = lstm(x)
    theirs = theirs[..., direction * 7 : (direction + 1) * 7]
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref[direction], atol=1e-6, rtol=0)
    torch.testing.assert_close(c, c_ref[direction], atol=1e-6, rtol=0)
    # the same loss through both: same gradients for the input and for every weight of that direction
    upstream = torch.randn_like(ours)
    weights = LSTMWeights.from_torch(lstm, reverse=reverse)
    ours_grads = torch.autograd.grad((ours * upstream).sum() + c.sum(), [x, *weights])
    theirs_grads = torch.autograd.grad((theirs * upstream).sum() + c_ref[direction].sum(), [x, *weights])
    for g, g_ref in zip(ours_grads, theirs_grads):
        torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=0)


def test_cell_gates_by_hand():
    """Zero weights and a forget-gate bias: c' = sigmoid(b_f) c + sigmoid(0) tanh(0) = sigmoid(b_f) c."""
    H, D = 2, 3
    w = LSTMWeights(torch.zeros(4 * H, D), torch.zeros(4 * H, H), torch.zeros(4 * H), torch.zeros(4 * H))
    w.bias_ih[H : 2 * H] = 2.0  # forget gate: rows H..2H
    c = torch.tensor([[1.0, -3.0]])
    h_new, c_new = lstm_cell(torch.ones(1, D), torch.zeros(1, H), c, w)
    torch.testing.assert_close(c_new, torch.sigmoid(torch.tensor(2.0)) * c)
    torch.testing.assert_close(h_new, 0.5 * torch.tanh(c_new))


def test_from_torch_refuses_missing_direction():
    with pytest.raises(ValueError, match="reverse=True"):
        LSTMWeights.from_torch(nn.LSTM(3, 4), reverse=True)
    with pytest.raises(ValueError, match="layer=1"):
        LSTMWeights.from_torch(nn.LSTM(3, 4), layer=1)


# --- the classifier --------------------------------------------------------------------------------


def test_features_are_the_scratch_lstm_on_each_unpadded_sentence():
    """Packing: each sentence's pooled vector is the LSTM run on that sentence alone, padding unseen."""
    torch.manual_seed(0)
    model = LSTMClassifier(small_config(dropout=0.0)).double().eval()
    rows = [[2, 5, 7, 3], [2, 9, 3], [2, 4, 6, 8, 11, 3]]
    with torch.no_grad():
        pooled = model.features(**{k: v for k, v in batch(rows).items() if k != "token_type_ids"})
        for r, row in enumerate(rows):
            x = model.embedding(torch.tensor([row]))  # (1, T, E)
            _, (h_forward, _) = lstm_scan(x, LSTMWeights.from_torch(model.lstm))
            _, (h_backward, _) = lstm_scan(x, LSTMWeights.from_torch(model.lstm, reverse=True), reverse=True)
            torch.testing.assert_close(pooled[r], torch.cat([h_forward[0], h_backward[0]]), atol=1e-12, rtol=0)


def test_padding_does_not_change_logits():
    torch.manual_seed(0)
    model = LSTMClassifier(small_config(num_layers=2)).eval()
    rows = [[2, 5, 7, 3], [2, 9, 3]]
    with torch.no_grad():
        tight = model(**batch(rows))
        padded = model(**batch(rows, width=15))  # 11 and 12 extra padding positions
        with_long = model(**batch(rows + [[2] + [4] * 30 + [3]]))[:2]  # a long sentence joins the batch
        alone = torch.cat([model(**batch([row])) for row in rows])
    torch.testing.assert_close(padded, tight, atol=1e-6, rtol=0)
    torch.testing.assert_close(with_long, tight, atol=1e-6, rtol=0)
    torch.testing.assert_close(alone, tight, atol=1e-6, rtol=0)


def test_without_packing_padding_would_leak():
    """The control: the same LSTM run over the padded tensor (the documents' way) does depend on padding."""
    torch.manual_seed(0)
    model = LSTMClassifier(small_config()).eval()
    rows = [[2, 5, 7, 3]]
    with torch.no_grad():
        outputs = [model.lstm(model.embedding(batch(rows, width=w)["input_ids"]))[1][0][0] for w in (4, 12)]
    assert (outputs[0] - outputs[1]).abs().max() > 1e-3


def toy_batches(n: int, seed: int) -> list:
    """Sentences of random filler words (5..9) with one cue word: 10 -> class 1, 11 -> class 0."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        rows, labels = [], []
        for _ in range(16):
            label = int(torch.randint(2, (1,), generator=g))
            words = torch.randint(5, 10, (int(torch.randint(2, 8, (1,), generator=g)),), generator=g).tolist()
            words.insert(int(torch.randint(len(words) + 1, (1,), generator=g)), 10 if label else 11)
            rows.append([2, *words, 3])
            labels.append(label)
        batches.append((batch(rows), torch.tensor(labels)))
    return batches


def train_toy(seed: int) -> tuple[LSTMClassifier, list[float]]:
    torch.manual_seed(seed)
    model = LSTMClassifier(small_config(dropout=0.1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = train_on_batches(model, optimizer, toy_batches(60, seed=seed), max_grad_norm=1.0)
    return model, losses


def test_learns_a_separable_toy_task_through_the_book_loop():
    model, losses = train_toy(seed=0)
    _, accuracy = evaluate_classifier(model, toy_batches(8, seed=123))
    assert accuracy >= 0.95, accuracy
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10


def test_deterministic_by_seed():
    (a, losses_a), (b, losses_b), (_, losses_c) = train_toy(1), train_toy(1), train_toy(2)
    assert losses_a == losses_b
    assert losses_a != losses_c
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_padding_embedding_stays_zero():
    model, _ = train_toy(seed=0)
    assert torch.count_nonzero(model.embedding.weight[0]) == 0


@pytest.mark.parametrize("inputs, message", [
    ({"input_ids": torch.zeros(2, 3)}, "input_ids must be an int64 tensor of shape \\(B, S\\), got torch.float32"),
    ({"input_ids": torch.zeros(3, dtype=torch.long)}, "input_ids must be an int64 tensor of shape \\(B, S\\)"),
    ({"input_ids": torch.zeros(2, 0, dtype=torch.long)}, "input_ids is empty"),
    ({"input_ids": torch.tensor([[1, 20]])}, "input_ids must lie in \\[0, 20\\) \\(vocab_size\\), got values in \\[1, 20\\]"),
    ({"input_ids": torch.ones(2, 3, dtype=torch.long), "attention_mask": torch.ones(2, 4)},
     "attention_mask must have input_ids' shape \\(2, 3\\)"),
    ({"input_ids": torch.ones(1, 3, dtype=torch.long), "attention_mask": torch.tensor([[1, 2, 0]])},
     "attention_mask must hold only 0"),
    ({"input_ids": torch.ones(1, 3, dtype=torch.long), "attention_mask": torch.tensor([[0, 1, 1]])},
     "attention_mask must pad on the right"),
    ({"input_ids": torch.ones(2, 3, dtype=torch.long), "attention_mask": torch.tensor([[1, 1, 0], [0, 0, 0]])},
     "attention_mask has a row of zeros \\(sentence 1\\)"),
    ({"input_ids": torch.ones(2, 3, dtype=torch.long), "token_type_ids": torch.zeros(2, 4, dtype=torch.long)},
     "token_type_ids must have input_ids' shape"),
])
def test_validation_names_the_argument(inputs, message):
    with pytest.raises(ValueError, match=message):
        LSTMClassifier(small_config())(**inputs)


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_size": 0}, "hidden_size"),
    ({"dropout": 1.0}, "dropout must be a probability in \\[0, 1\\), got 1.0"),
    ({"pad_token_id": 20}, "pad_token_id must be an id in \\[0, 20\\)"),
])
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        small_config(**overrides)


def test_scan_checks_input_width():
    with pytest.raises(ValueError, match="x has shape"):
        lstm_scan(torch.zeros(2, 3, 4), LSTMWeights.from_torch(nn.LSTM(5, 2)))


def test_lstm_baseline_settings_are_the_ones_build_classifier_uses():
    from lepton_lib.bert.fine_tuning import DEFAULT_LR
    from lepton_lib.bert.lstm_classifier import LSTM_BASELINE, LSTMBaselineSettings

    assert DEFAULT_LR["lstm"] == LSTM_BASELINE.lr == 5e-3
    assert LSTM_BASELINE.config(100, 0) == LSTMClassifierConfig(vocab_size=100, embedding_size=32, hidden_size=64,
                                                                dropout=0.3)
    for bad in (dict(lr=0), dict(dropout=1.0), dict(embedding_size=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LSTMBaselineSettings(**bad)
