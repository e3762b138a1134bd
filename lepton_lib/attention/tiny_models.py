"""Tiny Transformers that train on a CPU in a minute: a sequence model and a Vision Transformer.

Both are stacks of this library's ``TransformerEncoderLayer`` with learned position embeddings:

* ``TinyTransformer`` maps token ids ``(B, T)`` to logits ``(B, T, vocab)``. With ``causal=True``
  each position sees only itself and earlier positions, which makes it a decoder-only language
  model (GPT-style); ``make_sequence_task`` builds the copy / reverse / sort problems it learns.
* ``TinyViT`` cuts an image into patches (``PatchEmbedding``), prepends a learned class token and
  classifies from that token's final state (Dosovitskiy et al. 2021, arXiv:2010.11929).

``attention_maps`` on either model returns every layer's per-head attention weights, which is what
the book plots. Layers are pre-LN by default (``norm_first=True``, followed by a final LayerNorm);
``norm_first=False`` gives the original post-LN arrangement, for the depth experiments.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lepton_lib.attention.kv_cache import KVCache
from lepton_lib.attention.positional import LearnedPositionalEmbedding
from lepton_lib.attention.transformer import TransformerEncoderLayer
from lepton_lib.core.checks import check_int_in_range, check_positive_int, should_check_values

__all__ = ["IGNORE_INDEX", "SEQUENCE_TASKS", "make_sequence_task", "TinyTransformer", "PatchEmbedding", "TinyViT"]

IGNORE_INDEX = -100  # the default ignore_index of F.cross_entropy: positions that carry no loss
SEQUENCE_TASKS = ("copy", "reverse", "sort")


def make_sequence_task(
    task: str, num_examples: int, length: int, num_symbols: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random sequences for a decoder-only model: ``(inputs, targets)``, both int64 ``(N, 2 * length)``.

    Each example is ``a_1 .. a_n SEP b_1 .. b_n`` with ``a`` drawn uniformly from ``0 .. num_symbols-1``,
    ``SEP = num_symbols`` and ``b`` the answer (``a`` itself, ``a`` reversed, or ``a`` sorted). As in
    language modelling, ``inputs`` is the sequence without its last token and ``targets`` the sequence
    shifted left by one; targets inside the prompt are ``IGNORE_INDEX`` (the model cannot know the
    next random symbol), so only the ``n`` answer tokens are scored. The vocabulary has
    ``num_symbols + 1`` tokens.
    """
    if task not in SEQUENCE_TASKS:
        raise ValueError(f"task must be one of {SEQUENCE_TASKS}, got {task!r}")
    for name, value in (("num_examples", num_examples), ("length", length), ("num_symbols", num_symbols)):
        check_positive_int(name, value)
    device = None if generator is None else generator.device  # None: torch's default device
    prompt = torch.randint(0, num_symbols, (num_examples, length), generator=generator, device=device)
    if task == "copy":
        answer = prompt
    elif task == "reverse":
        answer = prompt.flip(-1)
    else:
        answer = prompt.sort(dim=-1).values
    separator = torch.full((num_examples, 1), num_symbols, dtype=torch.long, device=prompt.device)
    sequence = torch.cat([prompt, separator, answer], dim=1)  # (N, 2n + 1)
    inputs, targets = sequence[:, :-1], sequence[:, 1:].clone()
    # Positions 0 .. n-2 would predict the next random prompt symbol and position n-1 the SEP that
    # always follows: neither can be learned, so only positions n .. 2n-1 (the answer) are scored.
    targets[:, :length] = IGNORE_INDEX
    return inputs, targets


def _encoder_layers(
    num_layers: int, d_model: int, num_heads: int, dim_feedforward: int, dropout: float, norm_first: bool
) -> nn.ModuleList:
    """``num_layers`` independently initialised layers (not copies of one, unlike ``nn.TransformerEncoder``)."""
    check_positive_int("num_layers", num_layers)
    return nn.ModuleList(
        TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward, dropout, activation="gelu", norm_first=norm_first, batch_first=True
        )
        for _ in range(num_layers)
    )


def _run_layers(layers: nn.ModuleList, x: Tensor, causal: bool, need_weights: bool) -> tuple[Tensor, list[Tensor]]:
    """Apply the layers to ``x (B, T, d)``; with ``need_weights`` also return each layer's ``(B, H, T, T)``."""
    maps = []
    for layer in layers:
        if need_weights:  # recompute the layer's attention input and ask for its weights
            h = layer.norm1(x) if layer.norm_first else x
            _, weights = layer.self_attn(h, h, h, need_weights=True, is_causal=causal)
            maps.append(weights)
        x = layer(x, is_causal=causal)
    return x, maps


class TinyTransformer(nn.Module):
    """Token and position embeddings, ``num_layers`` Transformer layers, a LayerNorm and a linear head.

    ``forward(tokens (B, T) int64) -> logits (B, T, vocab_size)``, ``T <= max_length``.
    """

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        causal: bool = True,
        norm_first: bool = True,
    ) -> None:
        super().__init__()
        if vocab_size < 1 or max_length < 1:
            raise ValueError(f"vocab_size and max_length must be positive, got {vocab_size} and {max_length}")
        self.vocab_size, self.max_length, self.causal = vocab_size, max_length, causal
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.token_embedding.weight, std=0.02)  # small, like the position table (GPT-2)
        self.position_embedding = LearnedPositionalEmbedding(max_length, d_model)
        width = dim_feedforward or 4 * d_model
        self.layers = _encoder_layers(num_layers, d_model, num_heads, width, dropout, norm_first)
        # A pre-LN stack never normalises its residual stream, so it needs a final norm; post-LN ends in one.
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size)

    def embed(self, tokens: Tensor, start: int = 0) -> Tensor:
        """Token plus position embeddings ``(B, T, d)`` of ``tokens (B, T)`` at positions ``start .. start+T-1``.

        ``start > 0`` embeds tokens that follow ``start`` earlier ones (decoding with a KV cache).
        """
        if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
            got = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be an int64 tensor of shape (B, T), got {got}")
        if start + tokens.shape[1] > self.max_length:
            if start:
                raise ValueError(f"{start} cached + {tokens.shape[1]} new tokens exceed max_length = {self.max_length}")
            raise ValueError(f"tokens has length {tokens.shape[1]}, expected at most max_length = {self.max_length}")
        if tokens.numel() and should_check_values(tokens) and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            low, high = int(tokens.min()), int(tokens.max())
            raise ValueError(f"tokens must lie in [0, {self.vocab_size - 1}], got values in [{low}, {high}]")
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        return self.token_embedding(tokens) + self.position_embedding(positions)  # (B, T, d)

    def make_kv_caches(self, batch_size: int, max_length: int | None = None) -> list[KVCache]:
        """One empty ``KVCache (B, H, max_length, Dh)`` per layer, with the model's dtype and device."""
        max_length = self.max_length if max_length is None else max_length
        check_int_in_range("max_length", max_length, 1, self.max_length)
        weight = self.token_embedding.weight
        return [
            KVCache(batch_size, layer.self_attn.num_heads, max_length, layer.self_attn.head_dim,
                    dtype=weight.dtype, device=weight.device)
            for layer in self.layers
        ]

    def forward(self, tokens: Tensor, kv_caches: list[KVCache] | None = None) -> Tensor:
        """Logits ``(B, T, vocab)``. With ``kv_caches`` (one per layer, from ``make_kv_caches``),
        ``tokens`` follow the ``kv_caches[0].length`` cached ones: each layer projects only the new
        tokens, appends their keys and values to its cache and lets the new queries attend every
        cached position up to their own. Same sub-modules in the same order, so the logits agree
        with a full recompute up to float rounding. Caches are for inference (``torch.no_grad()``)."""
        if kv_caches is None:
            x, _ = _run_layers(self.layers, self.embed(tokens), self.causal, need_weights=False)
            return self.head(self.final_norm(x))
        if not self.causal:
            raise ValueError("model must be causal (causal=True) to decode with kv_caches")
        if len(kv_caches) != len(self.layers):
            raise ValueError(f"kv_caches has {len(kv_caches)} entries, expected one per layer ({len(self.layers)})")
        x = self.embed(tokens, start=kv_caches[0].length)  # (B, T, d) at positions after the cached ones
        for layer, cache in zip(self.layers, kv_caches):
            x = layer(x, is_causal=True, kv_cache=cache)
        return self.head(self.final_norm(x))

    @torch.no_grad()
    def attention_maps(self, tokens: Tensor) -> Tensor:
        """Attention weights ``(num_layers, B, num_heads, T, T)``: row ``i`` is what position ``i`` reads."""
        _, maps = _run_layers(self.layers, self.embed(tokens), self.causal, need_weights=True)
        return torch.stack(maps)

    @torch.no_grad()
    def generate(self, prompt: Tensor, num_tokens: int, use_cache: bool = False) -> Tensor:
        """Greedy decoding: append the most likely next token ``num_tokens`` times; returns ``(B, num_tokens)``.

        ``use_cache=False`` reruns the whole sequence at every step (``P + t`` tokens at step ``t``);
        ``use_cache=True`` runs the prompt once into per-layer KV caches ("prefill") and then feeds one
        token per step ("decode"). Both give the same tokens. Prompts in a batch share one length.
        """
        if not self.causal:
            raise ValueError("generate needs a causal model (causal=True)")
        check_positive_int("num_tokens", num_tokens)
        if not isinstance(prompt, Tensor) or prompt.dim() != 2 or prompt.dtype != torch.long or prompt.shape[1] < 1:
            got = f"{tuple(prompt.shape)} {prompt.dtype}" if isinstance(prompt, Tensor) else type(prompt).__name__
            raise ValueError(f"prompt must be an int64 tensor of shape (B, P) with P >= 1, got {got}")
        total = prompt.shape[1] + num_tokens
        # The last generated token is never fed back, so the model sees at most total - 1 positions.
        if total - 1 > self.max_length:
            raise ValueError(f"prompt length {prompt.shape[1]} + num_tokens {num_tokens} - 1 exceeds "
                             f"max_length = {self.max_length}")
        generated = []
        if use_cache:
            caches = self.make_kv_caches(prompt.shape[0], total - 1)
            logits = self(prompt, kv_caches=caches)  # prefill: the whole prompt at once
            for step in range(num_tokens):
                next_token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
                generated.append(next_token)
                if step + 1 < num_tokens:
                    logits = self(next_token, kv_caches=caches)  # decode: one new token
        else:
            sequence = prompt
            for _ in range(num_tokens):
                next_token = self(sequence)[:, -1].argmax(dim=-1, keepdim=True)
                generated.append(next_token)
                sequence = torch.cat([sequence, next_token], dim=1)
        return torch.cat(generated, dim=1)


class PatchEmbedding(nn.Module):
    """Cut ``(B, C, H, W)`` images into non-overlapping ``patch_size`` squares and project each to ``dim``.

    Output ``(B, N, dim)`` with ``N = (H / p) * (W / p)`` patches in row-major order. Flattening a
    patch and applying one shared linear map is the same as a convolution with kernel = stride = p.
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int) -> None:
        super().__init__()
        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"patch_size ({patch_size}) must divide image_size ({image_size})")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Linear(in_channels * patch_size * patch_size, dim)

    def patches(self, images: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, N, C * p * p)``: each row holds one patch, channels outermost."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if not isinstance(images, Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != expected:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must have shape (B, {', '.join(map(str, expected))}), got {got}")
        p, side = self.patch_size, self.image_size // self.patch_size
        x = images.unflatten(2, (side, p)).unflatten(4, (side, p))  # (B, C, rows, p, cols, p)
        return x.permute(0, 2, 4, 1, 3, 5).flatten(3).flatten(1, 2)  # (B, rows * cols, C * p * p)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(self.patches(images))


class TinyViT(nn.Module):
    """A Vision Transformer: patches + class token + position embeddings, Transformer layers, linear head.

    ``forward(images (B, C, H, W)) -> logits (B, num_classes)``, read from the class token.
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_classes: int,
        in_channels: int = 1,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.patch_embedding = PatchEmbedding(image_size, patch_size, in_channels, d_model)
        self.class_token = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.position_embedding = LearnedPositionalEmbedding(self.patch_embedding.num_patches + 1, d_model)
        self.layers = _encoder_layers(num_layers, d_model, num_heads, dim_feedforward or 4 * d_model, dropout, True)
        self.final_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def embed(self, images: Tensor) -> Tensor:
        """Class token and patch embeddings plus positions: ``(B, C, H, W) -> (B, N + 1, d)``."""
        patches = self.patch_embedding(images)  # (B, N, d)
        tokens = torch.cat([self.class_token.expand(len(patches), -1, -1), patches], dim=1)  # (B, N + 1, d)
        return tokens + self.position_embedding(torch.arange(tokens.shape[1], device=tokens.device))

    def forward(self, images: Tensor) -> Tensor:
        x, _ = _run_layers(self.layers, self.embed(images), causal=False, need_weights=False)
        return self.head(self.final_norm(x[:, 0]))  # the class token summarises the image

    @torch.no_grad()
    def attention_maps(self, images: Tensor) -> Tensor:
        """``(num_layers, B, num_heads, N + 1, N + 1)``; index 0 is the class token, 1.. the patches."""
        _, maps = _run_layers(self.layers, self.embed(images), causal=False, need_weights=True)
        return torch.stack(maps)
