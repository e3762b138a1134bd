"""Recommendation: metrics on hand-made rankings and against scikit-learn, the split, and LightGCN's algebra."""
from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import ndcg_score

from lepton_lib.gnn import (Interactions, LightGCN, MatrixFactorization, Popularity, ndcg_at_k, recall_at_k,
                                  split_interactions, top_k_items, train_bpr)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_metrics_on_a_hand_made_ranking() -> None:
    # user 0 holds out items {1, 3}; ranked [1, 2, 3]: hits at ranks 1 and 3.
    # user 1 holds out {4}; ranked [0, 2, 3]: no hit. user 2 holds out nothing: skipped.
    top = torch.tensor([[1, 2, 3], [0, 2, 3], [0, 1, 2]])
    relevant = torch.zeros(3, 5, dtype=torch.bool)
    relevant[0, [1, 3]] = True
    relevant[1, 4] = True
    assert recall_at_k(top, relevant) == pytest.approx((2 / 2 + 0) / 2)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(top, relevant) == pytest.approx((dcg / idcg + 0) / 2)


def test_recall_divides_by_all_held_out_items() -> None:
    # 5 held-out items, k = 2, both top items hit: recall 2/5, while NDCG is perfect (ideal has 2 hits).
    relevant = torch.zeros(1, 10, dtype=torch.bool)
    relevant[0, :5] = True
    top = torch.tensor([[0, 1]])
    assert recall_at_k(top, relevant) == pytest.approx(0.4)
    assert ndcg_at_k(top, relevant) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_matches_sklearn(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(30, 40, generator=generator, dtype=torch.float64)  # distinct scores: no ties
    relevant = torch.rand(30, 40, generator=generator) < 0.15
    relevant[:, 0] = True  # every user has something held out
    for k in (1, 5, 20):
        ours = ndcg_at_k(top_k_items(scores, k), relevant)
        theirs = ndcg_score(relevant.numpy().astype(float), scores.numpy(), k=k)
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_top_k_skips_training_items() -> None:
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    exclude = torch.tensor([[True, False, True, False], [False, False, False, True]])
    assert top_k_items(scores, 2, exclude).tolist() == [[1, 3], [2, 1]]
    with pytest.raises(ValueError, match="k must be"):
        top_k_items(scores, 5)


def _random_interactions(seed: int = 0, users: int = 20, items: int = 15, n: int = 120) -> Interactions:
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.unique(torch.stack([torch.randint(users, (n,), generator=generator),
                                      torch.randint(items, (n,), generator=generator)]), dim=1)
    return Interactions(pairs[0], pairs[1], users, items)


def test_split_is_per_user_disjoint_and_complete() -> None:
    data = _random_interactions()
    train, test = split_interactions(data, test_fraction=0.25, seed=3)
    assert len(train) + len(test) == len(data)
    assert not (train.to_mask() & test.to_mask()).any()
    assert torch.equal(train.to_mask() | test.to_mask(), data.to_mask())
    counts = torch.bincount(data.users, minlength=data.num_users)
    n_test = torch.bincount(test.users, minlength=data.num_users)
    expected = torch.clamp(torch.round(counts.double() * 0.25).long(), max=counts - 1).clamp(min=0)
    assert torch.equal(n_test, expected)
    again, _ = split_interactions(data, test_fraction=0.25, seed=3)
    assert torch.equal(again.to_mask(), train.to_mask())  # seeded


def test_lightgcn_equals_dense_formula() -> None:
    # E_final = mean_k (D^-1/2 A D^-1/2)^k E_0, with A built by hand from the interaction matrix.
    data = _random_interactions(1)
    model = LightGCN(data, dim=8, num_layers=3)  # float32, against a float64 reference
    R = data.to_mask().double()
    A = torch.zeros(35, 35, dtype=torch.float64)
    A[:20, 20:], A[20:, :20] = R, R.T
    deg = A.sum(1)
    inv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    norm = inv[:, None] * A * inv[None, :]
    layer = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach().double()
    total = layer.clone()
    for _ in range(3):
        layer = norm @ layer
        total += layer
    users, items = model.embeddings()
    torch.testing.assert_close(torch.cat([users, items]).detach().double(), total / 4, rtol=1e-5, atol=1e-6)


def test_lightgcn_without_layers_is_matrix_factorisation() -> None:
    data = _random_interactions(2)
    torch.manual_seed(0)
    lightgcn = LightGCN(data, dim=4, num_layers=0)
    torch.manual_seed(0)
    mf = MatrixFactorization(data.num_users, data.num_items, dim=4)
    torch.testing.assert_close(lightgcn.scores(), mf.scores())


def test_popularity_counts_training_interactions() -> None:
    data = Interactions(torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 2, 1]), 3, 4)
    scores = Popularity(data).scores()
    assert scores.shape == (3, 4)
    assert scores[0].tolist() == [0.0, 1.0, 3.0, 0.0]


def test_bpr_training_learns_block_structure() -> None:
    # Two communities: users 0-9 use items 0-9, users 10-19 items 10-19. After training, a user's
    # held-out items (same community) must rank far above chance.
    users = torch.arange(20).repeat_interleave(6)
    generator = torch.Generator().manual_seed(0)
    items = torch.stack([torch.randperm(10, generator=generator)[:6] + (10 if u >= 10 else 0)
                         for u in range(20)]).flatten()
    train, test = split_interactions(Interactions(users, items, 20, 20), test_fraction=0.34, seed=0)
    torch.manual_seed(0)
    for model in (MatrixFactorization(20, 20, dim=8), LightGCN(train, dim=8, num_layers=2)):
        losses = train_bpr(model, train, epochs=60, batch_size=32, lr=0.05, weight_decay=1e-4, seed=0)
        assert losses[-1] < losses[0]
        with torch.no_grad():
            top = top_k_items(model.scores(), 5, exclude=train.to_mask())
        # Chance: 2 held-out items among 16 candidates, top 5 -> recall 5/16 = 0.31.
        assert recall_at_k(top, test.to_mask()) > 0.6


def test_interactions_reject_bad_ids() -> None:
    with pytest.raises(ValueError, match=r"items must lie in \[0, 3\)"):
        Interactions(torch.tensor([0]), torch.tensor([3]), 2, 3)
    with pytest.raises(ValueError, match="items"):
        Interactions(torch.tensor([0, 1]), torch.tensor([0]), 2, 3)
