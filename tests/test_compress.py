"""Compression: int8 accuracy close to fp32, pruning hits its sparsity, distillation loss by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lepton_lib.scale import (
    distillation_loss,
    magnitude_prune,
    quantize_linear_int8,
    sparse_state_dict_bytes,
    sparsity,
    state_dict_bytes,
)
from lepton_lib.data.digits import load_digits_split

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def digits_mlp():
    """A 64-128-128-10 MLP trained for 60 full-batch Adam steps on the digits (about 95% test accuracy)."""
    torch.manual_seed(0)
    data = load_digits_split(seed=0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(data.x_train), data.y_train).backward()
        optimizer.step()
    return model.eval(), data


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()


def test_int8_accuracy_within_one_point_of_fp32(digits_mlp):
    model, data = digits_mlp
    fp32 = _accuracy(model, data.x_test, data.y_test)
    quantized = quantize_linear_int8(model)
    int8 = _accuracy(quantized, data.x_test, data.y_test)
    assert fp32 > 0.9  # the task is learned, so the comparison means something
    assert abs(int8 - fp32) <= 0.01
    # the layers really were replaced, and the original model was not touched
    assert not any(type(m) is nn.Linear for m in quantized.modules())
    assert all(type(m[i]) is nn.Linear for m in [model] for i in (0, 2, 4))
    with torch.no_grad():
        logits, q_logits = model(data.x_test), quantized(data.x_test)
    error = (q_logits - logits).abs().max().item()
    assert 0 < error < 0.1 * logits.abs().max().item()  # int8 rounding: small, but not zero


def test_int8_checkpoint_is_about_four_times_smaller():
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256))
    ratio = state_dict_bytes(model) / state_dict_bytes(quantize_linear_int8(model))
    assert 3.0 < ratio < 4.1  # 4 bytes -> 1 byte per weight, plus scales, biases and headers


def test_quantize_rejects_models_without_linear_layers():
    with pytest.raises(ValueError, match="no nn.Linear"):
        quantize_linear_int8(nn.Sequential(nn.ReLU()))


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_pruning_reaches_the_requested_sparsity(scope, amount):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))
    magnitude_prune(model, amount, scope=scope)
    sizes = [600, 300]
    zeros = [int((model[i].weight == 0).sum()) for i in (0, 2)]
    assert sparsity(model) == pytest.approx(sum(zeros) / sum(sizes))
    if scope == "layer":  # torch rounds amount * n to the nearest int in each layer
        assert zeros == [round(amount * n) for n in sizes]
    else:
        assert sum(zeros) == round(amount * sum(sizes))
    assert all(isinstance(model[i].weight, nn.Parameter) for i in (0, 2))  # masks made permanent
    assert not any(name.endswith("_orig") for name, _ in model.named_parameters())


def test_global_pruning_removes_the_smallest_weights_of_all_layers():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(1.0, 17.0).reshape(4, 4))  # magnitudes 1..16
        model[1].weight.copy_(torch.arange(17.0, 33.0).reshape(4, 4))  # 17..32
    magnitude_prune(model, 0.25, scope="global")  # 8 smallest of 32: all in layer 0
    assert int((model[0].weight == 0).sum()) == 8 and int((model[1].weight == 0).sum()) == 0
    assert torch.equal(model[0].weight.flatten()[8:], torch.arange(9.0, 17.0))


def test_pruning_skips_named_layers_and_checks_arguments():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2))
    magnitude_prune(model, 0.5, scope="layer", skip=["1"])
    assert sparsity(model, skip=["1"]) == 0.5 and int((model[1].weight == 0).sum()) == 0
    with pytest.raises(ValueError, match="amount"):
        magnitude_prune(model, 1.0)
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(model, 0.5, scope="row")


def test_sparse_storage_counts_csr_bytes():
    model = nn.Linear(10, 10, bias=False)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[2, 3] = 1.0
        model.weight[7, 0] = -2.0
    # 2 values * 4 bytes + 2 column indices * 8 + 11 row pointers * 8
    assert sparse_state_dict_bytes(model) == 2 * 4 + 2 * 8 + 11 * 8
    assert state_dict_bytes(model) > 100 * 4  # the dense checkpoint keeps every zero


def test_distillation_loss_matches_a_hand_computation():
    student = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    teacher = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 2])
    T, alpha = 2.0, 0.3

    def softmax(row):
        e = [math.exp(v) for v in row]
        return [v / sum(e) for v in e]

    kl, ce = 0.0, 0.0
    for s, t, y in zip(student.tolist(), teacher.tolist(), labels.tolist()):
        p_s, p_t = softmax([v / T for v in s]), softmax([v / T for v in t])
        kl += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s))
        ce += -math.log(softmax(s)[y])
    expected = alpha * T * T * kl / 2 + (1 - alpha) * ce / 2
    got = distillation_loss(student, teacher, labels, temperature=T, alpha=alpha)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_distillation_gradient_reaches_only_the_student_and_vanishes_at_the_teacher():
    teacher = torch.tensor([[2.0, -1.0, 0.5]], requires_grad=True)
    student = teacher.detach().clone().requires_grad_(True)
    distillation_loss(student, teacher, torch.tensor([0]), temperature=3.0, alpha=1.0).backward()
    assert teacher.grad is None
    torch.testing.assert_close(student.grad, torch.zeros_like(student), atol=1e-7, rtol=0)


def test_distillation_loss_checks_shapes():
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), temperature=0)


def test_train_student_learns_from_labels_or_from_a_teacher_and_is_seeded():
    from lepton_lib.bert import BertConfig, BertForSequenceClassification, WordPieceTokenizer
    from lepton_lib.scale import train_student

    tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"])
    texts, labels = ["good film", "bad film", "good", "bad"] * 4, [1, 0, 1, 0] * 4
    teacher = torch.tensor([[-2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, -2.0]] * 4)
    config = BertConfig.preset("tiny", vocab_size=8, hidden_size=32, intermediate_size=64)

    def run(logits, alpha):
        torch.manual_seed(0)
        student = BertForSequenceClassification(config)
        return train_student(student, tokenizer, texts, labels, logits, epochs=3, batch_size=8, max_length=8,
                             alpha=alpha, seed=1)

    plain, distilled = run(None, 0.0), run(teacher, 1.0)
    assert len(plain) == len(distilled) == 3 * 2  # one loss per step: 16 examples in batches of 8, 3 epochs
    assert plain == run(None, 0.0)  # seeded: the same losses again
    assert plain != distilled
    with pytest.raises(ValueError, match="teacher_logits must have shape"):
        run(teacher[:3], 0.5)
