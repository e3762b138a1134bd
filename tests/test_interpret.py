"""Integrated gradients: the closed form for a linear model, completeness, and the BERT helper."""
from __future__ import annotations

import pytest
import torch

from lepton_lib.scale import bert_token_attributions, integrated_gradients

pytestmark = pytest.mark.usefixtures("single_thread")


def test_linear_model_matches_closed_form() -> None:
    # For f(x) = w . x + b the gradient is w everywhere, so IG_i = (x_i - x'_i) w_i for any step count.
    torch.manual_seed(0)
    w, b = torch.randn(7, dtype=torch.float64), 0.3
    x, x0 = torch.randn(4, 7, dtype=torch.float64), torch.randn(4, 7, dtype=torch.float64)
    attributions = integrated_gradients(lambda z: z @ w + b, x, x0, steps=3)
    torch.testing.assert_close(attributions, (x - x0) * w, rtol=1e-12, atol=1e-12)


def test_multiclass_target_picks_the_column() -> None:
    torch.manual_seed(1)
    weight = torch.randn(3, 5, dtype=torch.float64)
    x, x0 = torch.randn(2, 5, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64)
    target = torch.tensor([2, 0])
    attributions = integrated_gradients(lambda z: z @ weight.T, x, x0, target=target, steps=2)
    torch.testing.assert_close(attributions, x * weight[target], rtol=1e-12, atol=1e-12)


def _smooth_net() -> torch.nn.Module:
    torch.manual_seed(2)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()


@pytest.mark.parametrize("steps", [8, 32, 128])
def test_completeness_within_riemann_error(steps: int) -> None:
    # The midpoint rule's error is O(1/steps^2): C / steps^2 with a generous C bounds it at every step count.
    net = _smooth_net()
    torch.manual_seed(3)
    x, x0 = 2 * torch.randn(5, 6, dtype=torch.float64), torch.zeros(5, 6, dtype=torch.float64)
    attributions = integrated_gradients(net, x, x0, target=1, steps=steps, internal_batch_size=7)
    with torch.no_grad():
        difference = net(x)[:, 1] - net(x0)[:, 1]
    gap = (attributions.sum(dim=1) - difference).abs().max().item()
    assert gap < 2.0 / steps**2


def test_completeness_gap_shrinks_with_steps() -> None:
    net = _smooth_net()
    torch.manual_seed(4)
    x, x0 = 3 * torch.randn(4, 6, dtype=torch.float64), torch.zeros(4, 6, dtype=torch.float64)
    with torch.no_grad():
        difference = net(x)[:, 0] - net(x0)[:, 0]
    gaps = [(integrated_gradients(net, x, x0, target=0, steps=s).sum(1) - difference).abs().max().item()
            for s in (4, 16, 64)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < gaps[0] / 50  # roughly 1/16^2 of it for an O(1/steps^2) rule


def test_bad_arguments_raise() -> None:
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="baseline must have inputs' shape"):
        integrated_gradients(lambda z: z.sum(1), x, torch.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        integrated_gradients(lambda z: z.sum(1), x, torch.zeros_like(x), steps=0)
    with pytest.raises(ValueError, match="pass target"):
        integrated_gradients(lambda z: z, x, torch.zeros_like(x))
    with pytest.raises(ValueError, match="target must be None"):
        integrated_gradients(lambda z: z.sum(1), x, torch.zeros_like(x), target=0)


def test_bert_token_attributions_are_complete() -> None:
    from lepton_lib.bert import BertConfig, BertForSequenceClassification
    from lepton_lib.bert import WordPieceTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "not", "good", "bad", "."]
    tokenizer = WordPieceTokenizer(vocab)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(5)
    model = BertForSequenceClassification(config).double()
    model.train()
    result = bert_token_attributions(model, tokenizer, "the film was not good .", target=1, steps=128)
    assert result.tokens == ["[CLS]", "the", "film", "was", "not", "good", ".", "[SEP]"]
    assert result.attributions.shape == (8,)
    assert model.training  # restored
    with torch.no_grad():
        model.eval()
        ids = torch.tensor([tokenizer.encode("the film was not good .").ids])
        assert result.score == pytest.approx(float(model(ids)[0, 1]), abs=1e-10)
        pads = torch.tensor([[2, 0, 0, 0, 0, 0, 0, 3]])
        assert result.baseline_score == pytest.approx(float(model(pads)[0, 1]), abs=1e-10)
    scale = abs(result.score - result.baseline_score) + 1e-3
    assert abs(result.completeness_gap) < 1e-2 * scale
