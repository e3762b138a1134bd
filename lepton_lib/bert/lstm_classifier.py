"""An LSTM sentence classifier: the baseline that BERT's fine-tuning is compared against.

Two pieces:

* ``lstm_cell`` / ``lstm_scan``: the LSTM of Hochreiter & Schmidhuber (1997), with the forget gate of
  Gers et al. (2000), written out gate by gate in PyTorch's weight layout, so that the same weights
  give the same numbers as ``torch.nn.LSTM`` (``tests/test_lstm_classifier.py`` checks outputs and
  gradients in float64). One step, for an input ``x_t`` and the previous state ``(h, c)``::

      i = sigmoid(W_ii x_t + b_ii + W_hi h + b_hi)     input gate: how much new content to write
      f = sigmoid(W_if x_t + b_if + W_hf h + b_hf)     forget gate: how much of the old cell to keep
      g = tanh   (W_ig x_t + b_ig + W_hg h + b_hg)     candidate content
      o = sigmoid(W_io x_t + b_io + W_ho h + b_ho)     output gate: how much of the cell to show
      c' = f * c + i * g                               the cell: a gated running sum
      h' = o * tanh(c')                                the output (and next hidden state)

* ``LSTMClassifier``: token embedding -> bidirectional ``nn.LSTM`` -> the two final states,
  concatenated -> dropout -> linear head. It takes the same batches as the book's BERT classifier
  (``input_ids``, ``attention_mask`` and, ignored, ``token_type_ids`` from
  ``WordPieceTokenizer.encode_batch``), so ``finetune_classifier`` trains it unchanged.

Padding never enters the recurrence: the batch is packed (``pack_padded_sequence``) with each
sentence's true length, so the forward direction stops at the sentence's last real token and the
backward direction starts there. Without packing, the padding embeddings are read as if they were
words and a sentence's prediction depends on how long the other sentences of its batch are.

Pooling: the concatenated final states ``[h_forward(last token); h_backward(first token)]``. It is
what the documents' Keras ``LSTM`` layer returns (its last output) made bidirectional, and with
packing it needs no mask at all. Masked max- or mean-pooling over time are the alternatives (an
exercise in the book's page).

``LSTM_BASELINE`` holds the baseline's settings (model size and learning rate), the one copy that
book/bert/lstm-baseline and ``build_classifier("lstm")`` of the fine-tuning grid both read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from lepton_lib.core.checks import (check_non_negative_int, check_positive_int, check_positive_number, check_tensor,
                                    should_check_values)

__all__ = ["LSTMWeights", "lstm_cell", "lstm_scan", "LSTMClassifierConfig", "LSTMClassifier",
           "LSTMBaselineSettings", "LSTM_BASELINE"]


# --- the cell, from scratch ------------------------------------------------------------------------


class LSTMWeights(NamedTuple):
    """One direction of one LSTM layer, in ``torch.nn.LSTM``'s layout: gates stacked as (i, f, g, o)."""

    weight_ih: Tensor  # (4H, D)
    weight_hh: Tensor  # (4H, H)
    bias_ih: Tensor  # (4H,)
    bias_hh: Tensor  # (4H,)

    @classmethod
    def from_torch(cls, lstm: nn.LSTM, layer: int = 0, reverse: bool = False) -> LSTMWeights:
        """The weights of ``lstm``'s ``layer`` (the backward direction with ``reverse``), shared, not copied."""
        if not isinstance(lstm, nn.LSTM) or not lstm.bias or lstm.proj_size:
            raise ValueError(f"lstm must be a torch.nn.LSTM with biases and no projection, got {lstm!r}")
        check_non_negative_int("layer", layer)
        if layer >= lstm.num_layers or (reverse and not lstm.bidirectional):
            raise ValueError(f"lstm has {lstm.num_layers} layer(s), bidirectional={lstm.bidirectional}; "
                             f"got layer={layer}, reverse={reverse}")
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        return cls(*(getattr(lstm, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, weights: LSTMWeights) -> tuple[Tensor, Tensor]:
    """One LSTM step: ``x`` (B, D), state ``h``, ``c`` (B, H) -> the new ``(h, c)``, each (B, H)."""
    gates = x @ weights.weight_ih.T + weights.bias_ih + h @ weights.weight_hh.T + weights.bias_hh  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H), in PyTorch's order
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g  # keep part of the old memory, write part of the candidate
    h = o * torch.tanh(c)  # show part of the memory
    return h, c


def lstm_scan(x: Tensor, weights: LSTMWeights, h: Tensor | None = None, c: Tensor | None = None,
              reverse: bool = False) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Run ``lstm_cell`` over ``x`` (B, T, D), left to right (right to left with ``reverse``).

    Returns the outputs (B, T, H), in the input's order, and the final state ``(h, c)``, each (B, H).
    The state starts at zero unless given, as in ``torch.nn.LSTM``.
    """
    check_tensor("x", x, shape=("B", "T", weights.weight_ih.shape[1]))
    B, T, _ = x.shape
    H = weights.weight_hh.shape[1]
    h = x.new_zeros(B, H) if h is None else h
    c = x.new_zeros(B, H) if c is None else c
    outputs = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        h, c = lstm_cell(x[:, t], h, c, weights)
        outputs[t] = h
    return torch.stack(outputs, dim=1), (h, c)


# --- the classifier --------------------------------------------------------------------------------


@dataclass
class LSTMClassifierConfig:
    vocab_size: int = 30522  # bert-base-uncased's WordPiece vocabulary, as the BERT it is compared with
    embedding_size: int = 64
    hidden_size: int = 64  # per direction
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3  # on the embeddings and on the pooled vector (and between layers, if several)
    num_labels: int = 2
    pad_token_id: int = 0  # [PAD] in BERT's vocabularies; its embedding stays zero and gets no gradient

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers", "num_labels"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")
        if not isinstance(self.pad_token_id, int) or not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id must be an id in [0, {self.vocab_size}) (vocab_size), "
                             f"got {self.pad_token_id!r}")


class LSTMClassifier(nn.Module):
    """``forward(input_ids (B, S), attention_mask (B, S)) -> logits (B, num_labels)``."""

    def __init__(self, config: LSTMClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, num_layers=config.num_layers,
                            bidirectional=config.bidirectional, batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        directions = 2 if config.bidirectional else 1
        self.classifier = nn.Linear(directions * config.hidden_size, config.num_labels)

    def lengths(self, input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
        """Validate a batch; return each sentence's number of real tokens (B,), on the CPU (packing wants it there)."""
        if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
            got = f"{input_ids.dtype} of shape {tuple(input_ids.shape)}" if isinstance(input_ids, Tensor) else type(input_ids).__name__
            raise ValueError(f"input_ids must be an int64 tensor of shape (B, S), got {got}")
        B, S = input_ids.shape
        if B == 0 or S == 0:
            raise ValueError(f"input_ids is empty (shape {(B, S)}); expected at least one token per sentence")
        check_values = should_check_values(input_ids)
        if check_values:
            low, high = int(input_ids.min()), int(input_ids.max())
            if low < 0 or high >= self.config.vocab_size:
                raise ValueError(f"input_ids must lie in [0, {self.config.vocab_size}) (vocab_size), "
                                 f"got values in [{low}, {high}]")
        if attention_mask is None:
            return torch.full((B,), S, dtype=torch.long)
        if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
            got = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
            raise ValueError(f"attention_mask must have input_ids' shape {(B, S)} (1 = token, 0 = padding), got {got}")
        lengths = attention_mask.ne(0).sum(-1).cpu()  # (B,)
        if check_values:
            if bool(((attention_mask != 0) & (attention_mask != 1)).any()):
                raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
            if int(lengths.min()) == 0:
                raise ValueError(f"attention_mask has a row of zeros (sentence {int(lengths.argmin())}); "
                                 "every sentence needs at least one token")
            prefix = torch.arange(S) < lengths[:, None]  # (B, S): tokens first, then padding
            if not torch.equal(prefix, attention_mask.ne(0).cpu()):
                raise ValueError("attention_mask must pad on the right (1s, then 0s in each row), "
                                 "as WordPieceTokenizer.encode_batch does")
        return lengths

    def features(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """The pooled sentence vectors (B, directions * H): the final state of each direction, concatenated."""
        lengths = self.lengths(input_ids, attention_mask)  # (B,)
        x = self.dropout(self.embedding(input_ids))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)  # h: (layers * directions, B, H), in the batch's order
        directions = 2 if self.config.bidirectional else 1
        last_layer = h[-directions:]  # (directions, B, H): forward at the last token, backward at the first
        return last_layer.transpose(0, 1).reshape(len(lengths), -1)  # (B, directions * H)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        """``token_type_ids`` is accepted (``encode_batch`` returns it) and ignored: one sentence, no segments."""
        if token_type_ids is not None and (not isinstance(token_type_ids, Tensor)
                                           or token_type_ids.shape != getattr(input_ids, "shape", None)):
            got = tuple(token_type_ids.shape) if isinstance(token_type_ids, Tensor) else type(token_type_ids).__name__
            raise ValueError(f"token_type_ids must have input_ids' shape, got {got}")
        return self.classifier(self.dropout(self.features(input_ids, attention_mask)))  # (B, num_labels)


# --- the book's baseline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LSTMBaselineSettings:
    """The settings of the book's LSTM baseline: its size and ``finetune_classifier``'s peak learning rate.

    The vocabulary (and so ``vocab_size`` and ``pad_token_id``) is the tokenizer's, given to ``config``.
    """

    embedding_size: int = 32
    hidden_size: int = 64  # per direction
    dropout: float = 0.3
    lr: float = 5e-3  # AdamW's peak rate in finetune_classifier, reached after the warm-up

    def __post_init__(self) -> None:
        self.config(vocab_size=1)  # LSTMClassifierConfig checks the sizes and the dropout
        check_positive_number("lr", self.lr)

    def config(self, vocab_size: int, pad_token_id: int = 0) -> LSTMClassifierConfig:
        """The classifier's configuration (bidirectional, one layer, 2 labels) on a vocabulary of ``vocab_size``."""
        return LSTMClassifierConfig(vocab_size=vocab_size, embedding_size=self.embedding_size,
                                    hidden_size=self.hidden_size, dropout=self.dropout, pad_token_id=pad_token_id)


LSTM_BASELINE = LSTMBaselineSettings()
