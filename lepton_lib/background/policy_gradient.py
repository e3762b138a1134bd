"""REINFORCE (Williams 1992) on the smallest reinforcement-learning problem: a multi-armed bandit.

Each of K arms pays 1 with its own probability ``arm_means[k]`` and 0 otherwise. The policy is a
softmax over K preferences ``theta``; one step samples an arm, observes the reward ``r`` and moves
``theta`` along ``(r - b) * grad log pi(a)``, where ``grad log pi(a) = onehot(a) - pi`` and ``b`` is
a baseline (the running mean reward, or 0). The expected update is the exact gradient of the
expected reward, ``pi_k (mu_k - pi . mu)`` for arm k, whatever the baseline; the baseline only
reduces the variance (Sutton and Barto 2018, section 13.4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lepton_lib.core.checks import check_positive_int, check_positive_number

__all__ = ["BanditRun", "expected_reward_gradient", "reinforce_bandit", "softmax_policy"]


def softmax_policy(theta: np.ndarray) -> np.ndarray:
    """Action probabilities ``(K,)`` from preferences ``theta`` ``(K,)``."""
    z = np.exp(theta - theta.max())
    return z / z.sum()


def _check_means(arm_means: object) -> np.ndarray:
    mu = np.asarray(arm_means, dtype=np.float64)
    if mu.ndim != 1 or mu.size < 2 or np.any(mu < 0) or np.any(mu > 1):
        raise ValueError(f"arm_means: expected K >= 2 probabilities in [0, 1], got {mu.tolist()}")
    return mu


def expected_reward_gradient(theta: object, arm_means: object) -> np.ndarray:
    """Exact gradient ``(K,)`` of the expected reward ``pi(theta) . mu`` with respect to ``theta``."""
    mu = _check_means(arm_means)
    pi = softmax_policy(np.asarray(theta, dtype=np.float64))
    return pi * (mu - pi @ mu)


@dataclass(frozen=True)
class BanditRun:
    rewards: np.ndarray  # (steps,) reward of each step, 0 or 1
    best_arm_probability: np.ndarray  # (steps,) probability the policy gives the best arm, after each step
    theta: np.ndarray  # (K,) final preferences


def reinforce_bandit(
    arm_means: object, steps: int, lr: float = 0.1, baseline: bool = True, seed: int = 0
) -> BanditRun:
    """Train a softmax policy with REINFORCE for ``steps`` pulls; draws from its own generator."""
    mu = _check_means(arm_means)
    check_positive_int("steps", steps)
    step_size = check_positive_number("lr", lr)
    rng = np.random.default_rng(seed)
    theta, mean_reward = np.zeros(mu.size), 0.0
    rewards, best_p = np.zeros(steps), np.zeros(steps)
    best = int(mu.argmax())
    for t in range(steps):
        pi = softmax_policy(theta)
        arm = rng.choice(mu.size, p=pi)
        reward = float(rng.random() < mu[arm])
        b = mean_reward if baseline else 0.0
        grad_log_pi = -pi
        grad_log_pi[arm] += 1.0
        theta = theta + step_size * (reward - b) * grad_log_pi
        mean_reward += (reward - mean_reward) / (t + 1)
        rewards[t], best_p[t] = reward, softmax_policy(theta)[best]
    return BanditRun(rewards, best_p, theta)
