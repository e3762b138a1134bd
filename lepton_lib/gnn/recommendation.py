"""Top-k recommendation from implicit feedback: popularity, matrix factorisation and LightGCN.

The data are (user, item) interactions ("user u rated movie i", whatever the rating). Each
model gives every (user, item) pair a score; a user's recommendations are the ``k`` highest-
scoring items they have NOT interacted with in training (recommending what they already saw
is no recommendation), and they are judged against the user's held-out items.

* :class:`Popularity`: every user gets the most-interacted items. A strong baseline on
  MovieLens, where a few blockbusters account for much of the activity.
* :class:`MatrixFactorization`: ``score(u, i) = <p_u, q_i>`` with learned vectors.
* :class:`LightGCN` (He et al. 2020, arXiv:2002.02126): the same vectors, smoothed over the
  user-item graph. With ``A`` the bipartite adjacency and ``Â = D^-1/2 A D^-1/2`` (no self-loops;
  :func:`lepton_lib.gnn.graph_ops.gcn_norm`), ``E_{k+1} = Â E_k`` and the final embedding is the
  mean of ``E_0 .. E_K``. No weight matrices, no non-linearity: the paper's ablation found both
  hurt collaborative filtering.

Both learned models are trained with BPR (Rendle et al. 2009, arXiv:1205.2618): for a user, an
item they interacted with should score higher than a random item they did not,
``loss = -log sigmoid(s(u, i) - s(u, j))``. We choose BPR over a squared error on the ratings
because the task is ranking unseen items: a model fitted only to observed ratings learns
nothing about the items a user never chose, which are exactly what it must rank.

Metrics (:func:`recall_at_k`, :func:`ndcg_at_k`) follow LightGCN's evaluation code: recall
divides by the number of held-out items; NDCG uses binary relevance and the ideal ranking of
``min(k, #held-out)`` hits. Users without held-out items are skipped.

Shapes: U users, I items, N interactions, D embedding size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lepton_lib.core.checks import check_int_in_range, check_non_negative_int, check_tensor
from lepton_lib.gnn.graph_ops import gcn_norm

__all__ = ["Interactions", "split_interactions", "Popularity", "MatrixFactorization", "LightGCN", "train_bpr",
           "top_k_items", "recall_at_k", "ndcg_at_k"]


@dataclass(frozen=True)
class Interactions:
    """Implicit feedback: ``users`` and ``items`` (N,) int64, ids in [0, num_users) and [0, num_items)."""

    users: Tensor
    items: Tensor
    num_users: int
    num_items: int

    def __post_init__(self) -> None:
        check_tensor("users", self.users, shape=("N",), dtype=torch.int64)
        check_tensor("items", self.items, shape=(len(self.users),), dtype=torch.int64)
        for name, ids, size in (("users", self.users, self.num_users), ("items", self.items, self.num_items)):
            if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise ValueError(f"{name} must lie in [0, {size}), got values in [{int(ids.min())}, {int(ids.max())}]")

    def __len__(self) -> int:
        return len(self.users)

    def to_mask(self) -> Tensor:
        """(U, I) bool matrix, True where the user interacted with the item."""
        mask = torch.zeros(self.num_users, self.num_items, dtype=torch.bool, device=self.users.device)
        mask[self.users, self.items] = True
        return mask


def split_interactions(data: Interactions, test_fraction: float = 0.2, seed: int = 0) -> tuple[Interactions,
                                                                                                Interactions]:
    """Hold out ``test_fraction`` of each user's items (rounded, at least one kept for training), seeded."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same split on every device
    order = torch.randperm(len(data), generator=generator, device=generator.device).to(data.users.device)
    users, items = data.users[order], data.items[order]
    # Stable sort by user keeps the random order within each user: the first items of each run go to test.
    by_user = torch.sort(users, stable=True).indices
    users, items = users[by_user], items[by_user]
    counts = torch.bincount(users, minlength=data.num_users)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(users), device=users.device) - starts[users]
    n_test = torch.clamp(torch.round(counts.double() * test_fraction).long(), max=counts - 1)
    is_test = rank < n_test[users]
    return (Interactions(users[~is_test], items[~is_test], data.num_users, data.num_items),
            Interactions(users[is_test], items[is_test], data.num_users, data.num_items))


class Popularity(nn.Module):
    """Score of item i = how many training users interacted with it, for every user alike."""

    def __init__(self, train: Interactions) -> None:
        super().__init__()
        self.num_users = train.num_users
        self.register_buffer("counts", torch.bincount(train.items, minlength=train.num_items).float())

    def scores(self, users: Tensor | None = None) -> Tensor:
        """(len(users), I) scores; all users when ``users`` is None."""
        n = self.num_users if users is None else len(users)
        return self.counts.expand(n, -1)


class MatrixFactorization(nn.Module):
    """``score(u, i) = <p_u, q_i>``; the vectors start at N(0, 0.1^2), as in LightGCN's code."""

    def __init__(self, num_users: int, num_items: int, dim: int = 64) -> None:
        super().__init__()
        self.user_embedding = nn.Embedding(num_users, dim)
        self.item_embedding = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Final user (U, D) and item (I, D) vectors, and what scores are computed from."""
        return self.user_embedding.weight, self.item_embedding.weight

    def scores(self, users: Tensor | None = None) -> Tensor:
        user_vectors, item_vectors = self.embeddings()
        if users is not None:
            user_vectors = user_vectors[users]
        return user_vectors @ item_vectors.T


def bipartite_propagation_matrix(train: Interactions) -> Tensor:
    """``D^-1/2 A D^-1/2`` of the user-item graph as a sparse (U + I, U + I) matrix; items are nodes U..U+I-1."""
    users, items = train.users, train.items + train.num_users
    edge_index = torch.stack([torch.cat([users, items]), torch.cat([items, users])])  # both directions
    num_nodes = train.num_users + train.num_items
    edge_index, weight = gcn_norm(edge_index, num_nodes, add_loops=False)
    # Row = target, column = source, so (matrix @ E)[t] sums the messages arriving at t.
    return torch.sparse_coo_tensor(edge_index.flip(0), weight, (num_nodes, num_nodes), check_invariants=True).coalesce()


class LightGCN(MatrixFactorization):
    """Matrix factorisation whose vectors are averaged over ``num_layers`` propagations on the graph."""

    def __init__(self, train: Interactions, dim: int = 64, num_layers: int = 3) -> None:
        super().__init__(train.num_users, train.num_items, dim)
        check_non_negative_int("num_layers", num_layers)
        self.num_layers = num_layers
        self.num_users = train.num_users
        self.register_buffer("propagation", bipartite_propagation_matrix(train))

    def embeddings(self) -> tuple[Tensor, Tensor]:
        layer = torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # E_0: (U + I, D)
        total = layer
        for _ in range(self.num_layers):
            layer = torch.sparse.mm(self.propagation, layer)
            total = total + layer
        final = total / (self.num_layers + 1)  # alpha_k = 1 / (K + 1), the paper's choice
        return final[: self.num_users], final[self.num_users :]


def train_bpr(model: MatrixFactorization, train: Interactions, epochs: int = 50, batch_size: int = 2048,
              lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0) -> list[float]:
    """Train with the BPR loss, one sampled negative per interaction; returns the mean loss per epoch.

    The L2 penalty ``weight_decay * (|p_u|^2 + |q_i|^2 + |q_j|^2) / 2`` acts on the layer-0 vectors
    of the batch, as in LightGCN. A sampled "negative" may occasionally be an item the user did
    interact with; at MovieLens's density (6%) this adds a little noise and is cheap to allow.
    """
    generator = torch.Generator().manual_seed(seed)  # draws on the CPU, moved to the data: same run on every device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=generator, device=generator.device).to(train.users.device)
        negatives = torch.randint(train.num_items, (len(train),), generator=generator, device=generator.device)
        negatives = negatives.to(train.users.device)
        total = 0.0
        for start in range(0, len(train), batch_size):
            batch = order[start : start + batch_size]
            users, positives, negs = train.users[batch], train.items[batch], negatives[start : start + batch_size]
            user_vectors, item_vectors = model.embeddings()
            u, i, j = user_vectors[users], item_vectors[positives], item_vectors[negs]
            ranking = -F.logsigmoid((u * i).sum(-1) - (u * j).sum(-1)).mean()
            ego = (model.user_embedding(users).pow(2).sum() + model.item_embedding(positives).pow(2).sum()
                   + model.item_embedding(negs).pow(2).sum()) / (2 * len(batch))
            loss = ranking + weight_decay * ego
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(train))
    return losses


def top_k_items(scores: Tensor, k: int, exclude: Tensor | None = None) -> Tensor:
    """Indices (U, k) of each row's ``k`` highest scores, skipping items where ``exclude`` (U, I) is True."""
    check_tensor("scores", scores, shape=("U", "I"))
    check_int_in_range("k", k, 1, scores.shape[1], high_means="the number of items")
    if exclude is not None:
        check_tensor("exclude", exclude, shape=tuple(scores.shape), dtype=torch.bool)
        scores = scores.masked_fill(exclude, -math.inf)
    return torch.topk(scores, k, dim=1).indices


def _hits(top_items: Tensor, relevant: Tensor) -> tuple[Tensor, Tensor]:
    check_tensor("top_items", top_items, shape=("U", "k"), dtype=torch.int64)
    check_tensor("relevant", relevant, shape=(top_items.shape[0], None), dtype=torch.bool)
    hits = relevant.gather(1, top_items).double()  # (U, k): 1 where the item at that rank is held out
    return hits, relevant.sum(1)


def recall_at_k(top_items: Tensor, relevant: Tensor) -> float:
    """Mean over users with held-out items of (#held-out items in the top k) / (#held-out items).

    ``top_items`` (U, k) comes from :func:`top_k_items`; ``relevant`` (U, I) marks held-out items.
    """
    hits, n_relevant = _hits(top_items, relevant)
    users = n_relevant > 0
    if not users.any():
        raise ValueError("relevant marks no item for any user; recall is undefined")
    return float((hits.sum(1)[users] / n_relevant[users]).mean())


def ndcg_at_k(top_items: Tensor, relevant: Tensor) -> float:
    """Mean NDCG@k with binary relevance: DCG = sum of 1 / log2(rank + 1) over hits (rank from 1)."""
    hits, n_relevant = _hits(top_items, relevant)
    users = n_relevant > 0
    if not users.any():
        raise ValueError("relevant marks no item for any user; NDCG is undefined")
    k = top_items.shape[1]
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=hits.device))  # (k,)
    dcg = (hits * discount).sum(1)
    ideal_hits = (torch.arange(k, device=hits.device).unsqueeze(0) < n_relevant.unsqueeze(1)).double()  # min(k, n) leading ones
    idcg = (ideal_hits * discount).sum(1)
    return float((dcg[users] / idcg[users]).mean())
