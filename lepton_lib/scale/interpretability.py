"""Integrated gradients (Sundararajan, Taly & Yan 2017, arXiv:1703.01365): which inputs a prediction rests on.

For a model output ``f`` (one class's logit), an input ``x`` and a baseline ``x'`` (an input that
"says nothing", such as padding tokens), the attribution of input coordinate ``i`` is

    IG_i(x) = (x_i - x'_i) * integral_0^1  d f(x' + a (x - x')) / d x_i  da.

By the fundamental theorem of calculus for line integrals, the attributions add up to
``f(x) - f(x')`` exactly ("completeness"). The integral is approximated by the midpoint rule with
``steps`` points, whose error shrinks like ``1 / steps**2`` for a smooth ``f``; the gap between
``sum(IG)`` and ``f(x) - f(x')`` measures that error, and is what the tests check.

Text models take discrete token ids, so for a BERT the path runs through the word-embedding
vectors: :func:`bert_token_attributions` swaps the output of the word-embedding layer for the
interpolated vectors (a forward hook), keeps positions and segments as they are, and sums the
attribution over the hidden dimension to get one number per token.

Shapes: B examples, F... the feature dimensions of one example, S tokens, H hidden units.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lepton_lib.bert.tokenization import WordPieceTokenizer
from lepton_lib.core.checks import check_positive_int, check_tensor

__all__ = ["integrated_gradients", "TokenAttribution", "bert_token_attributions"]


def _select_target(output: Tensor, target: Tensor | None, name: str = "forward") -> Tensor:
    """One scalar per example from a (N,) or (N, C) output; ``target`` (N,) picks the column."""
    if output.dim() == 1:
        if target is not None:
            raise ValueError(f"{name} returned shape {tuple(output.shape)} (one score per example), "
                             "so target must be None")
        return output
    if output.dim() == 2:
        if target is None:
            raise ValueError(f"{name} returned shape {tuple(output.shape)} (several outputs per example); "
                             "pass target to say which one to explain")
        return output.gather(1, target.view(-1, 1)).squeeze(1)
    raise ValueError(f"{name} must return shape (N,) or (N, C), got {tuple(output.shape)}")


def integrated_gradients(
    forward: Callable[[Tensor], Tensor],
    inputs: Tensor,
    baseline: Tensor,
    target: int | Tensor | None = None,
    steps: int = 64,
    internal_batch_size: int | None = None,
) -> Tensor:
    """Integrated-gradients attributions of ``forward``'s output to ``inputs``, same shape as ``inputs``.

    ``forward`` maps a batch (N, F...) to scores (N,) or (N, C); ``inputs`` and ``baseline`` are
    (B, F...) with the same shape (no broadcasting: pass ``torch.zeros_like(inputs)`` for a zero
    baseline). ``target`` picks the output column when there are several: an int for all
    examples or a (B,) tensor of class indices. ``internal_batch_size`` caps how many path
    points go through ``forward`` at once (default: all ``steps * B``).
    """
    check_tensor("inputs", inputs)
    if not inputs.is_floating_point() or inputs.dim() < 1 or inputs.shape[0] == 0:
        raise ValueError(f"inputs must be a non-empty floating tensor of shape (B, F...), got "
                         f"{inputs.dtype} of shape {tuple(inputs.shape)}")
    check_tensor("baseline", baseline, dtype=inputs.dtype)
    if baseline.shape != inputs.shape:
        raise ValueError(f"baseline must have inputs' shape {tuple(inputs.shape)}, got {tuple(baseline.shape)}")
    check_positive_int("steps", steps)
    check_positive_int("internal_batch_size", internal_batch_size, allow_none=True)
    batch = inputs.shape[0]
    if target is not None:
        target = torch.as_tensor(target, device=inputs.device)
        if target.dim() == 0:
            target = target.expand(batch)
        if target.shape != (batch,) or target.is_floating_point():
            raise ValueError(f"target must be an int or an integer tensor of shape ({batch},), got {target}")
    chunk = internal_batch_size or steps * batch

    # Midpoint rule: alpha_k = (k + 1/2) / steps, each carrying weight 1 / steps.
    alphas = (torch.arange(steps, dtype=inputs.dtype, device=inputs.device) + 0.5) / steps
    delta = (inputs - baseline).detach()
    shape = (steps, *inputs.shape)
    path = baseline.detach().unsqueeze(0) + alphas.view(-1, *[1] * inputs.dim()) * delta.unsqueeze(0)
    path = path.reshape(steps * batch, *inputs.shape[1:])  # step-major: row k*B + b is example b at alpha_k
    path_target = None if target is None else target.repeat(steps)
    grads = torch.empty_like(path)
    for start in range(0, path.shape[0], chunk):
        piece = path[start : start + chunk].clone().requires_grad_(True)
        with torch.enable_grad():
            scores = _select_target(forward(piece), None if path_target is None else
                                    path_target[start : start + chunk])
            # Each score depends only on its own row, so the gradient of the sum is every row's gradient.
            (grad,) = torch.autograd.grad(scores.sum(), piece)
        grads[start : start + chunk] = grad
    mean_grad = grads.reshape(shape).mean(dim=0)
    return delta * mean_grad


@dataclass
class TokenAttribution:
    """Integrated gradients for one sentence: one attribution per token, and the completeness check."""

    tokens: list[str]  # the S word pieces, [CLS] and [SEP] included
    attributions: Tensor  # (S,) summed over the hidden dimension
    target: int  # the class whose logit was explained
    score: float  # f(x): that logit for the sentence
    baseline_score: float  # f(x'): that logit with every word replaced by [PAD]

    @property
    def completeness_gap(self) -> float:
        """``sum(attributions) - (f(x) - f(x'))``: zero for the exact integral."""
        return float(self.attributions.sum()) - (self.score - self.baseline_score)


def bert_token_attributions(model: nn.Module, tokenizer: WordPieceTokenizer, text: str, target: int | None = None,
                            steps: int = 64, max_length: int = 128) -> TokenAttribution:
    """Integrated gradients of a ``BertForSequenceClassification`` logit with respect to each input token.

    The baseline keeps ``[CLS]`` and ``[SEP]`` and puts the ``[PAD]`` embedding at every other
    position: a sentence with its words removed. ``target`` defaults to the predicted class.
    The model is put in eval mode (dropout would make ``f`` random) and restored afterwards.
    """
    encoding = tokenizer.encode(text, max_length=max_length, truncation=True)
    input_ids = torch.tensor([encoding.ids])  # (1, S): one sentence, so no padding and no attention mask
    keep = (tokenizer.cls_id, tokenizer.sep_id)
    baseline_ids = torch.tensor([[i if i in keep else tokenizer.pad_id for i in encoding.ids]])
    word_embeddings = model.bert.embeddings.word_embeddings
    replacement: dict[str, Tensor] = {}

    def swap(_module: nn.Module, _args: tuple, output: Tensor) -> Tensor:
        # Returning a tensor from a forward hook replaces the layer's output.
        return replacement["embeds"] if "embeds" in replacement else output

    def forward(embeds: Tensor) -> Tensor:  # (N, S, H) -> logits (N, C)
        replacement["embeds"] = embeds
        try:
            return model(input_ids.expand(embeds.shape[0], -1))
        finally:
            replacement.clear()

    was_training = model.training
    model.eval()
    handle = word_embeddings.register_forward_hook(swap)
    try:
        with torch.no_grad():
            x = word_embeddings.weight[input_ids].clone()  # (1, S, H)
            x_base = word_embeddings.weight[baseline_ids].clone()
            logits = forward(x)
            base_logits = forward(x_base)
        chosen = int(logits.argmax(-1)) if target is None else int(target)
        if not 0 <= chosen < logits.shape[-1]:
            raise ValueError(f"target must be a class index in [0, {logits.shape[-1]}), got {target!r}")
        attributions = integrated_gradients(forward, x, x_base, target=chosen, steps=steps)
    finally:
        handle.remove()
        model.train(was_training)
    return TokenAttribution(
        tokens=list(encoding.tokens),
        attributions=attributions[0].sum(dim=-1).detach(),
        target=chosen,
        score=float(logits[0, chosen]),
        baseline_score=float(base_logits[0, chosen]),
    )
