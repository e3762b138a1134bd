"""The case-study experiments, one function per case and seed, shared by the notebooks and the benchmark script.

Each function trains its models on one seeded split and returns plain numbers (and the test-set
predictions the notebooks plot). The notebooks run seed 0 step by step and call these for the
spread over seeds; ``benchmarks/case_studies.py`` runs every seed and writes the JSON the closing
table reads.

* :func:`credit_experiment`: German credit, logistic regression and an MLP; the decision threshold
  minimises the documented cost (bad accepted = 5, good rejected = 1) on out-of-fold training
  predictions, then is applied to the test split.
* :func:`diagnosis_experiment`: Wisconsin breast cancer, the same two models; the threshold is the
  highest one whose out-of-fold sensitivity reaches a target (missing a cancer is the error to avoid).
* :func:`recommendation_experiment`: MovieLens 100K, popularity vs BPR matrix factorisation vs LightGCN.
* :func:`sentiment_experiment`: SST-2, bag-of-words logistic regression vs fine-tuned MiniLM.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from lepton_lib.cases.calibration import brier_score
from lepton_lib.core.runtime import seeded_torch_rng
from lepton_lib.foundations.curves import cost_optimal_threshold, expected_cost, roc_auc_score, sensitivity_specificity
from lepton_lib.foundations.metrics import accuracy

__all__ = ["tabular_models", "tabular_runs", "credit_experiment", "sensitivity_threshold", "diagnosis_experiment",
           "recommendation_experiment", "sentiment_experiment"]


def tabular_models(seed: int) -> dict[str, Pipeline]:
    """Standardised logistic regression and a one-hidden-layer MLP (32 ReLU units, L2 penalty, Adam, stopped
    when the accuracy on a held-out 10% of its training rows has not improved for 20 epochs)."""
    return {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
        "MLP": make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(32,), alpha=0.1, batch_size=32, early_stopping=True, n_iter_no_change=20,
            max_iter=1000, random_state=seed)),
    }


def _out_of_fold(model: Pipeline, X: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """P(class 1) for each training row from a model that did not see it (5 stratified folds)."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    return cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]


def tabular_runs(data, seed: int, test_size: float,
                 choose_threshold: Callable[[np.ndarray, np.ndarray], float]) -> tuple[np.ndarray, dict]:
    """The shared part of the tabular cases: a stratified split of ``data`` (``.X``, ``.y``), then per
    model of :func:`tabular_models` a threshold ``choose_threshold(y, p)`` chosen on out-of-fold
    training predictions, the test probabilities ``prob`` and the test AUC, accuracy and Brier score.

    Returns ``(test_index, {model name: (scores, threshold, prob)})``.
    """
    indices = np.arange(len(data.y))
    train, test = train_test_split(indices, test_size=test_size, stratify=data.y, random_state=seed)
    y = data.y[test]
    runs = {}
    for name, model in tabular_models(seed).items():
        oof = _out_of_fold(model, data.X[train], data.y[train], seed)
        threshold = choose_threshold(data.y[train], oof)
        prob = model.fit(data.X[train], data.y[train]).predict_proba(data.X[test])[:, 1]
        scores = {"auc": roc_auc_score(y, prob), "accuracy": accuracy(y, prob >= 0.5), "brier": brier_score(y, prob)}
        runs[name] = (scores, threshold, prob)
    return test, runs


def credit_experiment(seed: int, test_size: float = 0.3) -> dict:
    """German credit: per model, test AUC, accuracy, Brier score and mean cost at three thresholds."""
    from lepton_lib.data.tabular import load_german_credit

    data = load_german_credit()
    costs = data.cost_matrix
    test, runs = tabular_runs(data, seed, test_size, lambda y, p: cost_optimal_threshold(y, p, costs)[0])
    y = data.y[test]
    results: dict = {"seed": seed, "test_index": test, "models": {}}
    for name, (scores, threshold, prob) in runs.items():
        results["models"][name] = {
            **scores, "threshold": threshold,
            "cost_at_half": expected_cost(y, (prob >= 0.5).astype(int), costs),
            "cost_at_threshold": expected_cost(y, (prob >= threshold).astype(int), costs),
            # With calibrated P(bad) = p, rejecting costs (1 - p) * 1 and accepting p * 5: reject when p > 1/6.
            "cost_at_bayes": expected_cost(y, (prob > 1 / 6).astype(int), costs),
            "accuracy_at_threshold": accuracy(y, prob >= threshold),
            "prob": prob,
        }
    results["cost_accept_all"] = expected_cost(y, np.zeros_like(y), costs)
    results["cost_reject_all"] = expected_cost(y, np.ones_like(y), costs)
    return results


def sensitivity_threshold(y: np.ndarray, prob: np.ndarray, target: float) -> float:
    """The highest threshold ``t`` with sensitivity(score >= t) >= ``target`` on (y, prob)."""
    positives = np.sort(prob[y == 1])[::-1]  # the k-th highest positive score catches k positives
    needed = int(np.ceil(target * len(positives)))
    return float(positives[max(needed, 1) - 1])


def diagnosis_experiment(seed: int, test_size: float = 0.3, target_sensitivity: float = 0.98) -> dict:
    """Breast cancer: per model, test AUC, accuracy, Brier and (sensitivity, specificity) at 0.5 and at a
    threshold chosen on out-of-fold training predictions to reach ``target_sensitivity``."""
    from lepton_lib.data.tabular import load_breast_cancer

    data = load_breast_cancer()
    test, runs = tabular_runs(data, seed, test_size, lambda y, p: sensitivity_threshold(y, p, target_sensitivity))
    y = data.y[test]
    results: dict = {"seed": seed, "test_index": test, "models": {}}
    for name, (scores, threshold, prob) in runs.items():
        results["models"][name] = {
            **scores, "sens_spec_at_half": sensitivity_specificity(y, prob, 0.5), "threshold": threshold,
            "sens_spec_at_threshold": sensitivity_specificity(y, prob, threshold), "prob": prob,
        }
    results["majority_accuracy"] = accuracy(y, np.zeros_like(y))
    return results


def recommendation_experiment(seed: int, k: int = 20, epochs: int = 20, dim: int = 64, num_layers: int = 3,
                              batch_size: int = 4096, lr: float = 1e-2,
                              return_models: bool = False) -> dict:
    """MovieLens 100K, every rating as an interaction, 20% of each user's held out: Recall@k and NDCG@k."""
    from lepton_lib.data.movielens import load_movielens_100k
    from lepton_lib.gnn.recommendation import (Interactions, LightGCN, MatrixFactorization, Popularity, ndcg_at_k, recall_at_k,
                            split_interactions, top_k_items, train_bpr)

    data = load_movielens_100k()
    everything = Interactions(torch.from_numpy(data.users), torch.from_numpy(data.items), data.num_users,
                              data.num_items)
    train, test = split_interactions(everything, test_fraction=0.2, seed=seed)
    seen, held_out = train.to_mask(), test.to_mask()
    results: dict = {"seed": seed, "k": k, "models": {}, "losses": {}}
    with seeded_torch_rng(seed):  # the initial embeddings; the caller's random stream is left alone
        models = {"popularity": Popularity(train), "matrix factorisation (BPR)": MatrixFactorization(
            data.num_users, data.num_items, dim), "LightGCN": LightGCN(train, dim, num_layers)}
        for name, model in models.items():
            if name != "popularity":
                results["losses"][name] = train_bpr(model, train, epochs=epochs, batch_size=batch_size, lr=lr,
                                                    weight_decay=1e-4, seed=seed)
            with torch.no_grad():
                top = top_k_items(model.scores(), k, exclude=seen)
            results["models"][name] = {"recall": recall_at_k(top, held_out), "ndcg": ndcg_at_k(top, held_out)}
    if return_models:
        results.update(train=train, test=test, model_objects=models, data=data)
    return results


def sentiment_experiment(seed: int, train_size: int = 1500, epochs: int = 1, lr: float = 1e-4, max_length: int = 48,
                         full_bag_of_words: bool = False, return_model: bool = False) -> dict:
    """SST-2 dev accuracy of bag-of-words logistic regression and of all-MiniLM-L6-v2 fine-tuned on the same
    ``train_size`` training sentences; with ``full_bag_of_words`` also the bag of words on all 67,349."""
    from sklearn.feature_extraction.text import CountVectorizer

    from lepton_lib.data.text import load_sst2
    from lepton_lib.bert.fine_tuning import build_classifier, finetune_classifier, sentence_batches

    full, dev = load_sst2("train"), load_sst2("dev")
    train = full.subset(train_size, seed=seed)
    results: dict = {"seed": seed, "train_size": train_size, "models": {}}
    bow_sets = [(f"bag of words, {train_size} sentences", train)]
    if full_bag_of_words:
        bow_sets.append((f"bag of words, all {len(full)}", full))
    for name, data in bow_sets:
        # Unigrams and bigrams (so "not good" is a feature of its own); liblinear is fast on sparse counts.
        bow = make_pipeline(CountVectorizer(ngram_range=(1, 2)), LogisticRegression(C=1.0, solver="liblinear"))
        bow.fit(data.texts, data.labels)
        prediction = bow.predict(dev.texts)
        results["models"][name] = {"accuracy": accuracy(dev.labels, prediction), "prediction": prediction}
    model, tokenizer = build_classifier("minilm", seed)
    finetune_classifier(model, tokenizer, train, dev, epochs=epochs, lr=lr, max_length=max_length, seed=seed,
                        progress=False, evaluate_every_epoch=False)
    model.eval()
    logits = []
    with torch.no_grad():
        for inputs, _ in sentence_batches(tokenizer, dev, 128, max_length):
            logits.append(model(**inputs))
    prediction = torch.cat(logits).argmax(-1).numpy()
    results["models"][f"MiniLM fine-tuned, {train_size} sentences"] = {
        "accuracy": accuracy(dev.labels, prediction), "prediction": prediction}
    if return_model:
        results.update(model=model, tokenizer=tokenizer, dev=dev)
    return results
