"""Learning-rate schedules as multipliers of the base rate, for ``torch.optim.lr_scheduler.LambdaLR``.

BERT warms the rate up linearly from 0 over the first steps (Adam's moment estimates are noisy at
the start and a full-size step from random weights can wreck the post-LN network), then decays it
linearly to 0 at the last step (Devlin et al. 2019, Section A.2).
"""
from __future__ import annotations

import torch

from lepton_lib.core.checks import check_non_negative_int

__all__ = ["LinearWarmupDecay", "linear_warmup_decay_scheduler"]


class LinearWarmupDecay:
    """``factor(step) = step / warmup`` while warming up, then ``(total - step) / (total - warmup)``, floored at 0.

    ``step`` counts completed optimizer steps, so the first update uses ``factor(0) = 0`` only
    when ``warmup_steps > 0``; like Hugging Face's ``get_linear_schedule_with_warmup``. A class,
    not a lambda, so that ``LambdaLR.state_dict()`` records its settings.
    """

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        check_non_negative_int("warmup_steps", warmup_steps)
        check_non_negative_int("total_steps", total_steps)
        if total_steps < 1 or warmup_steps > total_steps:
            raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
                             f"got warmup_steps={warmup_steps}, total_steps={total_steps}")
        self.warmup_steps, self.total_steps = warmup_steps, total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))


def linear_warmup_decay_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int,
                                  total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearWarmupDecay(warmup_steps, total_steps))
