"""Contextual word vectors: one word in several sentences, compared by cosine similarity (book/bert/idea).

A static embedding gives "bank" one vector. BERT gives it one per sentence, built from the words on
both sides, so the vectors of "bank" in two sentences about rivers lie closer to each other than to
those of "bank" in sentences about money.

* ``word_vector``: the last layer's vector of one token of a sentence; with ``causal=True`` every
  layer of the same weights sees only the tokens to its left (a causal mask), as a left-to-right
  model would.
* ``sense_similarity``: the cosine similarities of a word's vectors in several sentences.
* ``senses_figure``: those similarities for four sentences, two per sense (1 and 3, 2 and 4), as a
  heat map titled with the mean similarity within a sense and across the two senses.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lepton_lib.bert.model import BertModel
from lepton_lib.bert.tokenization import WordPieceTokenizer

__all__ = ["word_vector", "sense_similarity", "senses_figure"]


def word_vector(model: BertModel, tokenizer: WordPieceTokenizer, text: str,
                word: str = "bank", causal: bool = False) -> Tensor:
    """The last layer's vector (H,) of the token ``word`` in ``text``.

    With ``causal``, every layer sees only the tokens to the left (a causal mask on the same
    weights). ``word`` must be one WordPiece token of ``text``; its first occurrence is read.
    The model runs as it is (call ``model.eval()`` first: dropout) and without gradients.
    """
    if not isinstance(model, BertModel):
        raise ValueError(f"model must be a lepton_lib.bert.BertModel, got {type(model).__name__}")
    encoding = tokenizer.encode(text)
    if word not in encoding.tokens:
        raise ValueError(f"word must be a single token of text, got word={word!r}; "
                         f"{text!r} has the tokens {encoding.tokens}")
    ids = torch.tensor([encoding.ids], device=next(model.parameters()).device)  # (1, S)
    position = encoding.tokens.index(word)  # [CLS] is position 0
    with torch.no_grad():
        if not causal:
            return model(ids).last_hidden_state[0, position]
        x = model.embeddings(ids, torch.zeros_like(ids))  # (1, S, H)
        for layer in model.encoder.layers:
            x = layer(x, is_causal=True)  # position t attends to 0..t only
        return x[0, position]


def sense_similarity(model: BertModel, tokenizer: WordPieceTokenizer, word: str, texts: Sequence[str]) -> Tensor:
    """Cosine similarities (N, N) of ``word``'s last-layer vectors in the N ``texts``."""
    if isinstance(texts, str) or len(texts) < 2:
        raise ValueError(f"texts must be a list of at least 2 sentences, got {texts!r}")
    vectors = torch.stack([word_vector(model, tokenizer, text, word=word) for text in texts])  # (N, H)
    return F.cosine_similarity(vectors[:, None], vectors[None, :], dim=-1)  # (N, N)


def senses_figure(model: BertModel, tokenizer: WordPieceTokenizer, word: str, texts: Sequence[str]):
    """A heat map of ``sense_similarity`` for 4 sentences: senses 1 and 3, 2 and 4 (a matplotlib figure).

    If ``word`` is not a single token of every sentence, returns a message with their tokens instead
    (for a live demo, where a reader types the sentences).
    """
    import matplotlib.pyplot as plt

    if isinstance(texts, str) or len(texts) != 4:
        raise ValueError(f"texts must be 4 sentences (senses: 1 and 3, 2 and 4), got {texts!r}")
    tokens = [tokenizer.encode(text).tokens for text in texts]
    if any(word not in sentence for sentence in tokens):
        return f"{word!r} is not a single token in every sentence: {tokens}"
    sim = sense_similarity(model, tokenizer, word, texts)  # (4, 4)
    same, other = (sim[0, 2] + sim[1, 3]) / 2, sim[[0, 0, 2, 2], [1, 3, 1, 3]].mean()
    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=80)
    ax.imshow(sim.numpy(), cmap="Blues", vmin=0.5, vmax=1)
    for (r, c), v in zip(torch.cartesian_prod(torch.arange(4), torch.arange(4)).tolist(), sim.flatten().tolist()):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v > 0.85 else "black")
    ax.set_xticks(range(4), [f"{k + 1}" for k in range(4)])
    ax.set_yticks(range(4), [f"{k + 1}: {t}" for k, t in enumerate(texts)], fontsize=7)
    ax.set_title(f"'{word}': same sense {same:.2f}, different senses {other:.2f}", fontsize=9)
    ax.grid(False)
    return fig
