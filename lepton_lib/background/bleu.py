"""BLEU, the corpus-level translation metric of Papineni et al. (2002), written out in full.

For each n from 1 to ``max_n`` BLEU counts the candidate n-grams that also occur in a reference,
crediting each n-gram at most as often as it occurs in the reference that contains it most often
(*clipping*), and sums these counts over the whole corpus before dividing (``p_n``). The geometric
mean of the ``p_n`` is multiplied by a brevity penalty ``min(1, exp(1 - r / c))``, where ``c`` is
the total candidate length and ``r`` the sum, over sentences, of the reference length closest to
the candidate's (the shorter one on a tie). No smoothing: a corpus with no matching n-gram of
some order scores 0. Tokenisation is the caller's choice, which is exactly why published BLEU
scores are comparable only when computed the same way (Post 2018).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from lepton_lib.core.checks import check_positive_int

__all__ = ["BleuParts", "corpus_bleu", "modified_precision_counts", "ngram_counts"]


def ngram_counts(tokens: Sequence[str], n: int) -> Counter:
    """How often each n-gram (a tuple of ``n`` tokens) occurs in ``tokens``."""
    check_positive_int("n", n)
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def modified_precision_counts(candidate: Sequence[str], references: Sequence[Sequence[str]], n: int) -> tuple[int, int]:
    """(clipped matches, candidate n-grams) of one sentence for n-grams of order ``n``."""
    if not references:
        raise ValueError("references: expected at least one reference translation, got none")
    cand = ngram_counts(candidate, n)
    max_ref: Counter = Counter()
    for ref in references:
        for gram, count in ngram_counts(ref, n).items():
            max_ref[gram] = max(max_ref[gram], count)
    clipped = sum(min(count, max_ref[gram]) for gram, count in cand.items())
    return clipped, sum(cand.values())


@dataclass(frozen=True)
class BleuParts:
    """A BLEU score (in [0, 1]) with the parts it is made of."""

    bleu: float
    precisions: tuple[float, ...]  # p_1 .. p_max_n, clipped and summed over the corpus
    brevity_penalty: float
    candidate_length: int  # c
    reference_length: int  # r, the closest reference length per sentence, summed


def corpus_bleu(
    candidates: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]], max_n: int = 4
) -> BleuParts:
    """Corpus BLEU of tokenised ``candidates`` against one or more tokenised references each.

    ``references[i]`` is the list of reference translations of sentence ``i``. Returns the score in
    [0, 1] (papers print it times 100) with the parts it is made of.
    """
    check_positive_int("max_n", max_n)
    if len(candidates) != len(references) or not candidates:
        raise ValueError(
            f"candidates, references: expected the same non-zero number of sentences, "
            f"got {len(candidates)} and {len(references)}"
        )
    matches, totals = [0] * max_n, [0] * max_n
    c = r = 0
    for cand, refs in zip(candidates, references):
        for n in range(1, max_n + 1):
            m, t = modified_precision_counts(cand, refs, n)
            matches[n - 1] += m
            totals[n - 1] += t
        c += len(cand)
        r += min((len(ref) for ref in refs), key=lambda length: (abs(length - len(cand)), length))
    precisions = tuple(m / t if t else 0.0 for m, t in zip(matches, totals))
    bp = 1.0 if c > r else (math.exp(1 - r / c) if c else 0.0)
    if min(precisions) == 0.0:
        return BleuParts(0.0, precisions, bp, c, r)
    return BleuParts(bp * math.exp(sum(math.log(p) for p in precisions) / max_n), precisions, bp, c, r)
