"""Group-wise rates of a binary decision: the first look of any fairness check.

For each value of a sensitive attribute (sex, an age band, nationality) we report how often
the model decides "positive" (here: approve) and how often it errs on each side. Equal
approval rates is *demographic parity*; equal true- and false-positive rates is *equalised
odds* (Hardt, Price & Srebro 2016, arXiv:1610.02413). The two cannot in general hold together
when the groups' base rates differ, so a report shows all of them and leaves the choice to
people (and to the law) rather than to a single number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lepton_lib.foundations.arrays import ArrayLike, as_1d_array, as_labels, check_same_length

__all__ = ["GroupRates", "group_rates"]


@dataclass(frozen=True)
class GroupRates:
    group: str
    size: int
    base_rate: float  # fraction with true label 1
    positive_rate: float  # fraction predicted 1 (e.g. approved)
    true_positive_rate: float  # P(pred 1 | true 1); nan if the group has no true 1
    false_positive_rate: float  # P(pred 1 | true 0); nan if the group has no true 0


def group_rates(y_true: ArrayLike, y_pred: ArrayLike, groups: ArrayLike) -> list[GroupRates]:
    """One :class:`GroupRates` per distinct value of ``groups`` (sorted), all arrays of shape (N,)."""
    truth, pred = as_labels("y_true", y_true), as_labels("y_pred", y_pred)
    group = as_1d_array("groups", groups)
    check_same_length(("y_true", truth), ("y_pred", pred))
    check_same_length(("y_true", truth), ("groups", group))
    for name, values in (("y_true", truth), ("y_pred", pred)):
        if not set(np.unique(values).tolist()) <= {0, 1}:
            raise ValueError(f"{name} must hold 0/1 labels, got {np.unique(values).tolist()}")
    rows = []
    for value in np.unique(group):
        member = group == value
        t, p = truth[member], pred[member]
        rows.append(GroupRates(
            group=str(value), size=int(member.sum()), base_rate=float(t.mean()), positive_rate=float(p.mean()),
            true_positive_rate=float(p[t == 1].mean()) if (t == 1).any() else float("nan"),
            false_positive_rate=float(p[t == 0].mean()) if (t == 0).any() else float("nan"),
        ))
    return rows
