"""BERT (Devlin et al. 2019, arXiv:1810.04805): a Transformer encoder pretrained on unlabelled text.

``BertModel`` = embeddings (token + segment + position, then LayerNorm and dropout) -> a stack of
post-LN encoder layers from ``lepton_lib.attention.transformer`` (GELU, exact erf form) -> a pooler
(``tanh(W h_[CLS] + b)``). On top of it:

* ``BertForPreTraining``: the masked-language-model head (dense, GELU, LayerNorm, then a projection
  onto the vocabulary whose matrix IS the word-embedding matrix, "tied") and the next-sentence head
  (a 2-way classifier on the pooled ``[CLS]`` vector). The MLM loss is a cross-entropy over the
  masked positions only. With ``predict_masked_only=True`` the vocabulary projection runs only
  on those positions: about 15% of the work of the largest matrix product of a small BERT.
* ``BertForSequenceClassification``: dropout and a linear layer on the pooled vector.

Parameter names differ from Hugging Face's: ``lepton_lib.interop.huggingface`` translates them, and
``lepton_lib.bert.saving`` reads and writes Hugging Face directories (``config.json`` + ``model.safetensors``).
Masks follow Hugging Face at this level: ``attention_mask`` is 1 (or True) on real tokens and 0 on padding.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lepton_lib.attention.tiny_models import IGNORE_INDEX  # label of a position the MLM loss skips
from lepton_lib.attention.transformer import TransformerEncoder, TransformerEncoderLayer
from lepton_lib.core.checks import check_positive_int, should_check_values

__all__ = [
    "BertConfig", "BertOutput", "PreTrainingOutput", "BertEmbeddings", "BertModel", "BertForPreTraining",
    "BertForSequenceClassification", "count_parameters", "init_bert_weights",
]

# (layers, hidden, heads) of the compact BERTs of Turc et al. 2019 (arXiv:1908.08962) and BERT-base.
PRESETS = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "base": (12, 768, 12)}


@dataclass
class BertConfig:
    """Sizes and hyper-parameters, with Hugging Face's field names (so ``config.json`` maps 1:1)."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2
    classifier_dropout: float | None = None
    extra: dict = field(default_factory=dict, repr=False)  # unknown config.json keys, kept for the round trip

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size", "num_labels"):
            check_positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                             f"({self.num_attention_heads})")
        if self.hidden_act != "gelu":
            raise ValueError(f"hidden_act must be 'gelu' (exact erf GELU, as BERT), got {self.hidden_act!r}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id must lie in [0, {self.vocab_size}), got {self.pad_token_id}")

    @classmethod
    def preset(cls, name: str, **overrides) -> BertConfig:
        """``tiny`` (2 layers, 128 hidden, 2 heads), ``mini`` (4/256/4), ``small`` (4/512/8), ``base`` (12/768/12).

        The feed-forward width is 4 x hidden, as in every BERT.
        """
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        layers, hidden, heads = PRESETS[name]
        sizes = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                     intermediate_size=4 * hidden)
        return cls(**(sizes | overrides))

    def to_dict(self) -> dict:
        """The ``config.json`` dictionary of Hugging Face's ``BertConfig``."""
        data = {k: v for k, v in asdict(self).items() if k != "extra"}
        return self.extra | data | {"model_type": "bert"}

    @classmethod
    def from_dict(cls, data: dict) -> BertConfig:
        known = {f.name for f in fields(cls)} - {"extra"}
        if data.get("model_type", "bert") != "bert":
            raise ValueError(f"config model_type must be 'bert', got {data.get('model_type')!r}")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"only absolute position embeddings are supported, got {data['position_embedding_type']!r}")
        num_labels = len(data["id2label"]) if "id2label" in data else data.get("num_labels", 2)
        values = {k: v for k, v in data.items() if k in known} | {"num_labels": num_labels}
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})


@dataclass
class BertOutput:
    last_hidden_state: Tensor  # (B, S, H)
    pooler_output: Tensor | None  # (B, H): tanh(W h_[CLS] + b)
    attentions: list[Tensor] | None = None  # one (B, heads, S, S) per layer, when asked for


@dataclass
class PreTrainingOutput:
    loss: Tensor | None  # mlm_loss + nsp_loss, when labels were given
    mlm_loss: Tensor | None  # mean cross-entropy over the masked positions
    nsp_loss: Tensor | None  # mean cross-entropy of IsNext / NotNext over the labelled pairs (label != -100)
    mlm_logits: Tensor  # (B, S, V), or (M, V) for the M masked positions with predict_masked_only
    nsp_logits: Tensor | None  # (B, 2): class 0 = IsNext, 1 = NotNext (Hugging Face's convention)
    mlm_loss_sum: Tensor | None = None  # the sums and counts, to normalise over several micro-batches
    nsp_loss_sum: Tensor | None = None
    masked_count: Tensor | None = None  # 0-dim int64 on the model's device: counting syncs nothing

    @property
    def num_masked(self) -> int:
        """The number of masked positions as an int (reading it waits for the device)."""
        return 0 if self.masked_count is None else int(self.masked_count)


class BertEmbeddings(nn.Module):
    """``LayerNorm(E_token[id] + E_segment[type] + E_position[i])``, then dropout: (B, S) -> (B, S, H)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.segment_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # learned, absolute: 0..S-1
        x = self.word_embeddings(input_ids) + self.segment_embeddings(token_type_ids) + self.position_embeddings(positions)
        return self.dropout(self.norm(x))


def _check_labels(name: str, labels: object, shape: tuple[int, ...], described: str, num_classes: int) -> None:
    """Shape and dtype always; values (class ids, or -100 for MLM) where ``should_check_values`` allows."""
    if not isinstance(labels, Tensor) or tuple(labels.shape) != shape:
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{name} must have {described}{shape}, got {got}")
    if labels.dtype != torch.long:
        raise ValueError(f"{name} must be an int64 tensor, got {labels.dtype}")
    if should_check_values(labels):
        ignored = labels == IGNORE_INDEX  # an unscored position (MLM) or an example without a pair (NSP/SOP)
        bad = labels[~ignored & ((labels < 0) | (labels >= num_classes))]
        if bad.numel():
            if name == "mlm_labels":
                raise ValueError(f"{name} must hold -100 or ids in [0, {num_classes - 1}], got {int(bad[0])}")
            raise ValueError(f"{name} must hold 0 or 1, got {int(bad[0])} (or -100: an example without a pair, "
                             f"which the pair loss ignores)")


def _check_inputs(config: BertConfig, input_ids: Tensor, attention_mask: Tensor | None,
                  token_type_ids: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Validate the inputs; return segment ids and the padding mask (True = padding) or None.

    Shapes and dtypes are checked always; the values (ids in range, a mask of 0 and 1) only where
    :func:`~lepton_lib.core.checks.should_check_values` allows, so a GPU forward pass never waits
    for the device. Off the CPU the padding mask is passed on even when it masks nothing.
    """
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        got = f"{input_ids.dtype} of shape {tuple(input_ids.shape)}" if isinstance(input_ids, Tensor) else type(input_ids)
        raise ValueError(f"input_ids must be an int64 tensor of shape (B, S), got {got}")
    B, S = input_ids.shape
    if B == 0 or S == 0:
        raise ValueError(f"input_ids is empty (shape {(B, S)}); expected at least one token per sequence")
    if S > config.max_position_embeddings:
        raise ValueError(f"input_ids has {S} positions, more than max_position_embeddings = "
                         f"{config.max_position_embeddings}; truncate or split the sequence")
    check_values = should_check_values(input_ids)
    if check_values:
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= config.vocab_size:
            raise ValueError(f"input_ids must lie in [0, {config.vocab_size}) (vocab_size), got values in [{low}, {high}]")
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    elif not isinstance(token_type_ids, Tensor) or token_type_ids.shape != input_ids.shape:
        got = tuple(token_type_ids.shape) if isinstance(token_type_ids, Tensor) else type(token_type_ids).__name__
        raise ValueError(f"token_type_ids must have input_ids' shape {(B, S)}, got {got}")
    elif token_type_ids.dtype != torch.long:
        raise ValueError(f"token_type_ids must be an int64 tensor, got {token_type_ids.dtype}")
    elif check_values and (int(token_type_ids.min()) < 0 or int(token_type_ids.max()) >= config.type_vocab_size):
        raise ValueError(f"token_type_ids must lie in [0, {config.type_vocab_size}) (type_vocab_size)")
    if attention_mask is None:
        return token_type_ids, None
    if not isinstance(attention_mask, Tensor) or attention_mask.shape != input_ids.shape:
        got = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
        raise ValueError(f"attention_mask must have input_ids' shape {(B, S)} (1 = token, 0 = padding), got {got}")
    check_mask = check_values and attention_mask.dtype != torch.bool
    if check_mask and bool(((attention_mask != 0) & (attention_mask != 1)).any()):
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    padding = attention_mask == 0
    if padding.device.type == "cpu" and not bool(padding.any()):  # no padding: let attention skip the mask
        return token_type_ids, None
    return token_type_ids, padding


class BertModel(nn.Module):
    """``forward(input_ids (B, S), attention_mask, token_type_ids) -> BertOutput``."""

    def __init__(self, config: BertConfig, add_pooler: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        layer = TransformerEncoderLayer(
            config.hidden_size, config.num_attention_heads, config.intermediate_size,
            dropout=config.hidden_dropout_prob, activation="gelu", norm_first=False,  # post-LN, as BERT
            layer_norm_eps=config.layer_norm_eps, batch_first=True,
            attention_dropout=config.attention_probs_dropout_prob,  # on the attention weights
            ffn_dropout=0.0,  # BERT has no dropout between the two feed-forward matrices
        )
        self.encoder = TransformerEncoder(layer, config.num_hidden_layers)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooler else None
        self.apply(lambda module: init_bert_weights(module, config.initializer_range))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                output_attentions: bool = False) -> BertOutput:
        token_type_ids, padding = _check_inputs(self.config, input_ids, attention_mask, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids)
        attentions = [] if output_attentions else None
        for layer in self.encoder.layers:
            if output_attentions:  # recompute this layer's weights from its input (the layer does not return them)
                _, weights = layer.self_attn(x, x, x, key_padding_mask=padding, need_weights=True)
                attentions.append(weights)
            x = layer(x, src_key_padding_mask=padding)
        pooled = None if self.pooler is None else torch.tanh(self.pooler(x[:, 0]))  # the [CLS] position
        return BertOutput(x, pooled, attentions)


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, std^2) weights, zero biases, LayerNorm = identity, zero padding row."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertForPreTraining(nn.Module):
    """BERT with the MLM and (optionally) NSP heads.

    ``forward(input_ids, attention_mask, token_type_ids, mlm_labels (B, S), nsp_labels (B,))``:
    ``mlm_labels`` holds the original id at each masked position and -100 elsewhere; ``nsp_labels``
    is 0 when segment B really follows A and 1 when it is a random sentence (SOP: 0 in order, 1
    swapped), or -100 for an example without a pair, which the pair loss leaves out: ``nsp_loss``
    is the mean over the labelled examples.
    """

    def __init__(self, config: BertConfig, use_nsp: bool = True, predict_masked_only: bool = True) -> None:
        super().__init__()
        self.config, self.use_nsp, self.predict_masked_only = config, use_nsp, predict_masked_only
        self.bert = BertModel(config, add_pooler=use_nsp)  # without NSP nothing would train the pooler
        H = config.hidden_size
        self.mlm_dense = nn.Linear(H, H)
        self.mlm_norm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))  # the projection's matrix is the embedding
        self.nsp_head = nn.Linear(H, 2) if use_nsp else None
        for module in (self.mlm_dense, self.mlm_norm, self.nsp_head):
            if module is not None:
                init_bert_weights(module, config.initializer_range)

    def mlm_logits(self, hidden: Tensor) -> Tensor:
        """(..., H) -> (..., V): transform, then score every word by a dot product with its embedding."""
        h = self.mlm_norm(F.gelu(self.mlm_dense(hidden)))
        return F.linear(h, self.bert.embeddings.word_embeddings.weight, self.mlm_bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None,
                mlm_labels: Tensor | None = None, nsp_labels: Tensor | None = None) -> PreTrainingOutput:
        if mlm_labels is not None:
            _check_labels("mlm_labels", mlm_labels, tuple(input_ids.shape), "input_ids' shape ", self.config.vocab_size)
        if nsp_labels is not None:
            if not self.use_nsp:
                raise ValueError("nsp_labels were given but this model has no NSP head (use_nsp=False)")
            _check_labels("nsp_labels", nsp_labels, (input_ids.shape[0],), "shape (B,) = ", 2)
        out = self.bert(input_ids, attention_mask, token_type_ids)
        nsp_logits = self.nsp_head(out.pooler_output) if self.use_nsp else None
        if mlm_labels is None:
            return PreTrainingOutput(None, None, None, self.mlm_logits(out.last_hidden_state), nsp_logits)
        masked = mlm_labels != IGNORE_INDEX
        if self.predict_masked_only:  # (M, H) rows of the masked positions only
            logits = self.mlm_logits(out.last_hidden_state[masked])
            targets = mlm_labels[masked]
        else:
            logits = self.mlm_logits(out.last_hidden_state)
            targets = mlm_labels
        mlm_sum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                  ignore_index=IGNORE_INDEX, reduction="sum")
        masked_count = masked.sum()
        mlm_loss = mlm_sum / masked_count.clamp(min=1)
        nsp_sum = nsp_loss = None
        if nsp_labels is not None:  # -100 marks an example without a pair: left out of the sum and of the mean
            nsp_sum = F.cross_entropy(nsp_logits.float(), nsp_labels, ignore_index=IGNORE_INDEX, reduction="sum")
            nsp_loss = nsp_sum / (nsp_labels != IGNORE_INDEX).sum().clamp(min=1)
        loss = mlm_loss if nsp_loss is None else mlm_loss + nsp_loss
        return PreTrainingOutput(loss, mlm_loss, nsp_loss, logits, nsp_logits, mlm_sum, nsp_sum, masked_count)


class BertForSequenceClassification(nn.Module):
    """``forward(input_ids, attention_mask, token_type_ids) -> logits (B, num_labels)``.

    ``pooling="cls"`` classifies the pooled [CLS] vector (BERT's and Hugging Face's choice);
    ``"mean"`` the mean of the last layer's vectors over the real (unpadded) tokens, as Sentence-BERT
    does: a model pretrained with MLM alone never trains [CLS] or the pooler, while every token's
    vector was trained to describe its context.
    """

    POOLINGS = ("cls", "mean")

    def __init__(self, config: BertConfig, pooling: str = "cls") -> None:
        super().__init__()
        if pooling not in self.POOLINGS:
            raise ValueError(f"pooling must be one of {self.POOLINGS}, got {pooling!r}")
        self.config, self.pooling = config, pooling
        self.bert = BertModel(config)
        p = config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        if self.pooling == "cls":
            pooled = out.pooler_output  # (B, H)
        else:
            keep = (torch.ones_like(input_ids) if attention_mask is None else attention_mask).unsqueeze(-1)
            keep = keep.to(out.last_hidden_state.dtype)  # (B, L, 1)
            pooled = (out.last_hidden_state * keep).sum(1) / keep.sum(1).clamp(min=1)  # (B, H)
        return self.classifier(self.dropout(pooled))


def count_parameters(model: nn.Module) -> int:
    """Distinct trainable numbers (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())

