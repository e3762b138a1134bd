"""lepton_lib.foundations.training (fit / evaluate / predict) and lepton_lib.data.digits (the split)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lepton_lib.data.digits import load_digits_split
from lepton_lib.foundations import evaluate, fit, predict, predicted_labels
from lepton_lib.core import set_seed


def blobs(n: int, flip_fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian blobs in 2-D, centred at (-1.5, -1.5) and (1.5, 1.5); some labels flipped."""
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=generator) * 0.5 + (2 * y[:, None] - 1) * 1.5
    flip = torch.rand(n, generator=generator) < flip_fraction
    return x, torch.where(flip, 1 - y, y)


def make_run(seed: int, val_flip: float = 0.0, lr: float = 0.02, hidden: int = 0):
    """Seed, then build data, loaders (the training one shuffles), a model and Adam."""
    set_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = blobs(64, 0.0, generator)
    x_val, y_val = blobs(64, val_flip, generator)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=True)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=16)
    if hidden:  # with dropout, so that determinism also covers the dropout masks
        model = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, 2))
    else:
        model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return model, train_loader, val_loader, optimizer


def test_fit_reduces_the_loss_on_a_separable_problem():
    model, train_loader, val_loader, optimizer = make_run(seed=0, lr=0.05)
    history = fit(model, train_loader, val_loader, optimizer, nn.CrossEntropyLoss(), epochs=15, progress=False)
    assert len(history.train_loss) == len(history.val_loss) == len(history.val_accuracy) == 15
    assert history.train_loss[-1] < 0.25 * history.train_loss[0]
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.val_accuracy[-1] == 1.0  # the blobs are 6 standard deviations apart
    assert history.best_epoch == int(np.argmin(history.val_loss))
    assert not history.stopped_early


def test_evaluate_and_predict_match_a_full_batch_computation():
    model, _, val_loader, _ = make_run(seed=1)  # 64 examples in batches of 16, then of 10 below
    loader = DataLoader(val_loader.dataset, batch_size=10)  # uneven: 6 batches of 10 and one of 4
    x, y = val_loader.dataset.tensors
    with torch.no_grad():
        logits = model(x)
    result = evaluate(model, loader, nn.CrossEntropyLoss())
    assert result.loss == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-6)
    assert result.accuracy == pytest.approx((logits.argmax(1) == y).float().mean().item(), abs=1e-12)
    predicted_logits, labels = predict(model, loader)
    torch.testing.assert_close(predicted_logits, logits)
    assert torch.equal(labels, y)


def test_predicted_labels_for_multiclass_and_binary_logits():
    assert predicted_labels(torch.tensor([[0.1, 2.0], [3.0, -1.0]])).tolist() == [1, 0]
    assert predicted_labels(torch.tensor([-0.5, 0.5])).tolist() == [0, 1]
    assert predicted_labels(torch.tensor([[-0.5], [0.5]])).tolist() == [0, 1]
    with pytest.raises(ValueError, match="logits must have shape"):
        predicted_labels(torch.zeros(2, 3, 4))


def test_fit_trains_a_binary_classifier_with_bce():
    set_seed(0)
    x, y = blobs(64, 0.0, torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, y.float()), batch_size=16)
    model = nn.Linear(2, 1)
    history = fit(model, loader, loader, torch.optim.Adam(model.parameters(), lr=0.05), nn.BCEWithLogitsLoss(),
                  epochs=10, progress=False)
    assert history.train_loss[-1] < history.train_loss[0] and history.val_accuracy[-1] == 1.0


def test_early_stopping_stops_and_restores_the_best_weights():
    # The validation labels are 25% flipped: the val loss falls while the model learns the
    # boundary, then rises as it grows over-confident on the flipped points.
    model, train_loader, val_loader, optimizer = make_run(seed=0, val_flip=0.25)
    loss_fn, patience = nn.CrossEntropyLoss(), 5
    history = fit(model, train_loader, val_loader, optimizer, loss_fn, epochs=100,
                  early_stopping_patience=patience, progress=False)
    best = history.best_epoch
    assert history.stopped_early
    assert 0 < best < len(history.val_loss) - 1  # the set-up puts the best epoch mid-run
    assert len(history.val_loss) == best + patience + 1  # stopped after `patience` epochs without a gain
    assert all(loss >= history.val_loss[best] for loss in history.val_loss[best + 1:])
    # The returned model is the best epoch's: same val loss, not the last epoch's.
    restored = evaluate(model, val_loader, loss_fn).loss
    assert restored == pytest.approx(history.val_loss[best], rel=0, abs=1e-7)
    assert abs(restored - history.val_loss[-1]) > 1e-3


def test_same_seed_gives_identical_histories_and_weights():
    runs = []
    for _ in range(2):
        model, train_loader, val_loader, optimizer = make_run(seed=3, val_flip=0.1, hidden=16)
        history = fit(model, train_loader, val_loader, optimizer, nn.CrossEntropyLoss(), epochs=5, progress=False)
        runs.append((history, model.state_dict()))
    (first, weights_a), (second, weights_b) = runs
    assert first == second  # dataclass equality: every list compared exactly
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name


def test_different_seeds_give_different_histories():
    histories = []
    for seed in (3, 4):
        model, train_loader, val_loader, optimizer = make_run(seed=seed, val_flip=0.1, hidden=16)
        histories.append(fit(model, train_loader, val_loader, optimizer, nn.CrossEntropyLoss(), epochs=3,
                             progress=False))
    assert histories[0].train_loss != histories[1].train_loss


def test_early_stopping_can_monitor_the_validation_accuracy():
    model, train_loader, val_loader, optimizer = make_run(seed=0, val_flip=0.25)
    loss_fn, patience = nn.CrossEntropyLoss(), 3
    history = fit(model, train_loader, val_loader, optimizer, loss_fn, epochs=100,
                  early_stopping_patience=patience, progress=False, monitor="val_accuracy")
    best = history.best_epoch
    # best_epoch is the first epoch reaching the highest accuracy; the run stopped `patience` epochs later.
    assert history.val_accuracy[best] == max(history.val_accuracy)
    assert history.val_accuracy.index(max(history.val_accuracy)) == best
    assert history.stopped_early and len(history.val_accuracy) == best + patience + 1
    assert evaluate(model, val_loader, loss_fn).accuracy == history.val_accuracy[best]


def test_penalty_is_added_to_the_training_loss_only():
    """fit(penalty=...) equals a hand-written loop that adds the penalty to each batch's loss."""
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    y = (x.sum(1) > 0).long()
    l1 = 1e-2

    def penalty(net: nn.Module) -> torch.Tensor:
        return l1 * net.weight.abs().sum()

    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    reference = nn.Linear(2, 2)
    reference.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    history = fit(model, [(x, y)], [(x, y)], optimizer, nn.functional.cross_entropy, epochs=3, progress=False,
                  penalty=penalty, train_eval_loader=[(x, y)])
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    losses = []
    for _ in range(3):
        reference_optimizer.zero_grad()
        loss = nn.functional.cross_entropy(reference(x), y) + penalty(reference)
        loss.backward()
        reference_optimizer.step()
        losses.append(loss.item())
    assert history.train_loss == pytest.approx(losses, rel=0, abs=1e-12)
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)
    # The evaluations measure the data loss alone, after the step: the same data here, so the same numbers.
    with torch.no_grad():
        final = nn.functional.cross_entropy(reference(x), y).item()
    assert history.train_eval_loss == history.val_loss
    assert history.val_loss[-1] == pytest.approx(final, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=2, monitor="train_loss"), "monitor must be one of"),
        (dict(epochs=0), "epochs must be a positive int"),
        (dict(epochs=2, early_stopping_patience=0), "early_stopping_patience must be a positive int"),
        (dict(epochs=2, early_stopping_patience=2, val_loader=None), "needs a val_loader"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, match):
    model, train_loader, val_loader, optimizer = make_run(seed=0)
    arguments = dict(model=model, train_loader=train_loader, val_loader=val_loader, optimizer=optimizer,
                     loss_fn=nn.CrossEntropyLoss(), progress=False) | kwargs
    with pytest.raises(ValueError, match=match):
        fit(**arguments)


# --------------------------------------------------------------------------------- digits split
def test_digits_split_is_disjoint_complete_and_matches_the_source():
    split = load_digits_split(test_fraction=0.2, val_fraction=0.1, seed=0)
    parts = [split.index_train, split.index_val, split.index_test]
    everything = torch.cat(parts)
    assert len(everything) == len(torch.unique(everything)) == 1797  # disjoint, and nothing dropped
    assert [len(p) for p in parts] == [1257, 180, 360]
    digits = load_digits()
    for part in ("train", "val", "test"):
        x, y, index = (getattr(split, f"{prefix}_{part}") for prefix in ("x", "y", "index"))
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == (64,)
        np.testing.assert_array_equal(x.numpy(), (digits.data[index.numpy()] / 16).astype(np.float32))
        np.testing.assert_array_equal(y.numpy(), digits.target[index.numpy()])
    assert split.x_train.min() >= 0 and split.x_train.max() == 1


def test_digits_split_is_stratified():
    split = load_digits_split(test_fraction=0.2, val_fraction=0.1, seed=1)
    totals = np.bincount(load_digits().target, minlength=10)
    for labels, fraction, tolerance in ((split.y_test, 0.2, 1), (split.y_val, 0.1, 2), (split.y_train, 0.7, 2)):
        counts = np.bincount(labels.numpy(), minlength=10)
        # a plain random split misses these per-class targets by about sqrt(n p (1-p)) ≈ 5 examples
        assert np.all(np.abs(counts - fraction * totals) <= tolerance), (fraction, counts, fraction * totals)


def test_digits_split_is_deterministic_and_seeded():
    a, b = load_digits_split(seed=7), load_digits_split(seed=7)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.index_test, load_digits_split(seed=8).index_test)


def test_digits_split_options():
    images = load_digits_split(as_images=True)
    flat = load_digits_split()
    assert images.x_train.shape[1:] == (1, 8, 8)
    torch.testing.assert_close(images.x_train.reshape(-1, 64), flat.x_train)
    raw = load_digits_split(normalize=False)
    torch.testing.assert_close(raw.x_train, flat.x_train * 16)
    no_val = load_digits_split(val_fraction=0.0)
    assert len(no_val.y_val) == 0 and len(no_val.y_train) + len(no_val.y_test) == 1797
    x, y = flat.train.tensors
    assert x is flat.x_train and y is flat.y_train


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(test_fraction=0.0), "test_fraction must be a number in"),
        (dict(test_fraction=1.2), "test_fraction must be a number in"),
        (dict(val_fraction=-0.1), "val_fraction must be a number in"),
        (dict(test_fraction=0.6, val_fraction=0.4), "test_fraction \\+ val_fraction must be < 1"),
        (dict(seed=-1), "seed must be (a non-negative int|an int >= 0)"),
    ],
)
def test_digits_split_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits_split(**kwargs)
