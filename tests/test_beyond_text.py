"""BLEU, CLIP's contrastive loss and REINFORCE on a bandit (lepton_lib.background), checked by hand."""
import math

import numpy as np
import pytest
import torch

from lepton_lib.background.bleu import corpus_bleu, modified_precision_counts, ngram_counts
from lepton_lib.background.contrastive import (
    clip_contrastive_loss,
    contrastive_logits,
    train_image_text_encoders,
    zero_shot_predict,
)
from lepton_lib.background.policy_gradient import (
    expected_reward_gradient,
    reinforce_bandit,
    softmax_policy,
)


def toks(text):
    return text.split()


# ----------------------------------------------------------------------------------- BLEU
def test_clipping_example_of_the_bleu_paper():
    # Papineni et al. (2002), section 2.1.1: seven "the" against two references -> 2/7.
    refs = [toks("the cat is on the mat"), toks("there is a cat on the mat")]
    assert modified_precision_counts(toks("the the the the the the the"), refs, 1) == (2, 7)


def test_hand_worked_sentence():
    cand, ref = toks("the cat sat on the mat"), toks("the cat is on the mat")
    # unigrams 5/6, bigrams 3/5, trigrams 1/4, 4-grams 0/3 (worked out by hand)
    assert [modified_precision_counts(cand, [ref], n) for n in (1, 2, 3, 4)] == [(5, 6), (3, 5), (1, 4), (0, 3)]
    four = corpus_bleu([cand], [[ref]])
    assert four.bleu == 0.0 and four.brevity_penalty == 1.0          # no smoothing: one empty order zeroes BLEU
    three = corpus_bleu([cand], [[ref]], max_n=3)
    assert three.bleu == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))   # = 0.5
    assert three.bleu == pytest.approx(0.5)


def test_identical_translation_scores_one_and_short_output_is_penalised():
    ref = toks("a quick brown fox jumps over the lazy dog")
    assert corpus_bleu([ref], [[ref]]).bleu == pytest.approx(1.0)
    short = corpus_bleu([toks("the cat")], [[toks("the cat is on the mat")]], max_n=2)
    assert short.precisions == (1.0, 1.0)
    assert short.brevity_penalty == pytest.approx(math.exp(1 - 6 / 2))
    assert short.bleu == pytest.approx(math.exp(-2))


def test_counts_are_summed_over_the_corpus_not_averaged_per_sentence():
    cands = [toks("the cat"), toks("x y z w")]
    refs = [[toks("the cat")], [toks("x q r s")]]
    parts = corpus_bleu(cands, refs, max_n=1)
    assert parts.precisions == (pytest.approx(3 / 6),)              # (2 + 1) / (2 + 4), not (1 + 1/4) / 2
    assert parts.candidate_length == 6 and parts.reference_length == 6


def test_closest_reference_length_prefers_the_shorter_on_a_tie():
    parts = corpus_bleu([toks("a b c d e")], [[toks("a b c d"), toks("a b c d e f")]], max_n=1)
    assert parts.reference_length == 4


def test_ngram_counts_and_bad_input():
    assert ngram_counts(toks("a b a b"), 2)[("a", "b")] == 2
    with pytest.raises(ValueError, match="references"):
        modified_precision_counts(toks("a"), [], 1)
    with pytest.raises(ValueError, match="candidates, references"):
        corpus_bleu([toks("a")], [])
    with pytest.raises(ValueError, match="max_n"):
        corpus_bleu([toks("a")], [[toks("a")]], max_n=0)


# ------------------------------------------------------------------------- contrastive loss
def test_contrastive_loss_matches_the_formula_written_out():
    gen = torch.Generator().manual_seed(0)
    u, v, tau = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen), 0.5
    s = torch.empty(5, 5)
    for i in range(5):
        for j in range(5):
            s[i, j] = torch.dot(u[i], v[j]) / (tau * u[i].norm() * v[j].norm())
    rows = -torch.stack([s[i, i] - torch.logsumexp(s[i], 0) for i in range(5)]).mean()
    cols = -torch.stack([s[i, i] - torch.logsumexp(s[:, i], 0) for i in range(5)]).mean()
    assert clip_contrastive_loss(u, v, tau).item() == pytest.approx(((rows + cols) / 2).item(), abs=1e-6)
    assert clip_contrastive_loss(v, u, tau).item() == pytest.approx(clip_contrastive_loss(u, v, tau).item(), abs=1e-6)


def test_contrastive_loss_limits():
    eye = torch.eye(4)
    assert clip_contrastive_loss(eye, eye, 0.01).item() < 1e-6          # perfectly aligned, orthogonal
    same = torch.ones(4, 3)
    # nothing to tell apart: every row of the softmax is uniform over the 4 pairs
    assert clip_contrastive_loss(same, same, 0.07).item() == pytest.approx(math.log(4), abs=1e-6)


def test_zero_shot_predict_picks_the_closest_class_text():
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    images = torch.tensor([[3.0, 0.5], [0.2, 2.0], [-1.0, 0.1]])
    assert zero_shot_predict(images, classes).tolist() == [0, 1, 1]


def test_contrastive_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="text_emb"):
        contrastive_logits(torch.zeros(2, 3), torch.zeros(2, 4), 0.1)
    with pytest.raises(ValueError, match="temperature"):
        contrastive_logits(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)
    with pytest.raises(ValueError, match="matching pairs"):
        clip_contrastive_loss(torch.zeros(2, 3), torch.zeros(3, 3))


def test_trained_encoders_match_images_to_their_class_text_and_keep_the_callers_rng():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 6, generator=gen) * 3
    labels = torch.arange(4).repeat(30)
    images = centres[labels] + 0.3 * torch.randn(120, 6, generator=gen)
    texts = torch.eye(4)                                   # one arbitrary code per class
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    enc = train_image_text_encoders(images, labels, texts, dim=8, steps=150, seed=0)
    assert torch.rand(1).item() == before.item()          # the caller's stream is where it was
    assert enc.losses[-1] < enc.losses[0] / 4
    with torch.no_grad():
        pred = zero_shot_predict(enc.image_encoder(images), enc.text_encoder(texts))
    assert (pred == labels).float().mean().item() > 0.95
    again = train_image_text_encoders(images, labels, texts, dim=8, steps=150, seed=0)
    assert again.losses == enc.losses


def test_training_bad_input_names_the_argument():
    images, texts = torch.zeros(4, 3), torch.eye(2)
    with pytest.raises(ValueError, match="labels"):
        train_image_text_encoders(images, torch.tensor([0, 1, 2, 0]), texts)
    with pytest.raises(ValueError, match="labels"):
        train_image_text_encoders(images, torch.zeros(4, dtype=torch.int64), texts)   # a single class
    with pytest.raises(ValueError, match="class_text_features"):
        train_image_text_encoders(images, torch.tensor([0, 1, 0, 1]), texts.double())


# --------------------------------------------------------------------------- REINFORCE
def test_expected_reward_gradient_matches_finite_differences():
    theta, mu, h = np.array([0.3, -0.2, 0.5]), np.array([0.1, 0.6, 0.4]), 1e-6
    numeric = [
        (softmax_policy(theta + h * e) @ mu - softmax_policy(theta - h * e) @ mu) / (2 * h) for e in np.eye(3)
    ]
    np.testing.assert_allclose(expected_reward_gradient(theta, mu), numeric, atol=1e-8)


def test_reinforce_estimator_is_unbiased_for_any_baseline():
    theta, mu = np.array([0.2, 0.0, -0.4]), np.array([0.3, 0.7, 0.5])
    pi, rng, n = softmax_policy(theta), np.random.default_rng(1), 200_000
    arms = rng.choice(3, size=n, p=pi)
    rewards = (rng.random(n) < mu[arms]).astype(float)
    exact = expected_reward_gradient(theta, mu)
    for b in (0.0, 0.5):
        samples = (rewards - b)[:, None] * (np.eye(3)[arms] - pi)
        se = samples.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(samples.mean(axis=0) - exact) < 4 * se)


def test_reinforce_learns_the_best_arm_and_is_reproducible():
    run = reinforce_bandit([0.2, 0.5, 0.8], steps=2000, lr=0.2, seed=0)
    assert run.best_arm_probability[-1] > 0.9
    assert run.rewards[-500:].mean() > 0.7
    again = reinforce_bandit([0.2, 0.5, 0.8], steps=2000, lr=0.2, seed=0)
    np.testing.assert_array_equal(run.theta, again.theta)


def test_reinforce_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="arm_means"):
        reinforce_bandit([0.5], steps=10)
    with pytest.raises(ValueError, match="arm_means"):
        reinforce_bandit([0.5, 1.5], steps=10)
    with pytest.raises(ValueError, match="steps"):
        reinforce_bandit([0.5, 0.2], steps=0)
    with pytest.raises(ValueError, match="lr"):
        reinforce_bandit([0.5, 0.2], steps=5, lr=-1.0)
