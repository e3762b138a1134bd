"""Hugging Face <-> lepton_lib parameter names for BERT.

``lepton_lib.bert.model`` names its parameters after the book's modules (``encoder.layers.0.self_attn.q_proj``);
Hugging Face's ``transformers.BertModel`` names the same tensors ``encoder.layer.0.attention.self.query``. The
tensors themselves are identical, so converting a checkpoint is renaming it: ``to_hf_state_dict`` gives our
parameters under Hugging Face's names and ``from_hf_state_dict`` copies a Hugging Face state dict into one of our
models. ``lepton_lib.bert.saving`` uses them to read and write Hugging Face directories; the parity tests use them
to compare our BERT with ``transformers``' tensor by tensor.
"""
from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from lepton_lib.bert.model import BertForPreTraining, BertModel

__all__ = ["BERT_RENAMES", "hf_parameter_name", "to_hf_state_dict", "from_hf_state_dict"]

BERT_RENAMES = [  # (our name pattern, Hugging Face's name) for the body of BertModel
    (r"embeddings\.segment_embeddings\.", "embeddings.token_type_embeddings."),
    (r"embeddings\.norm\.", "embeddings.LayerNorm."),
    (r"encoder\.layers\.(\d+)\.self_attn\.q_proj\.", r"encoder.layer.\1.attention.self.query."),
    (r"encoder\.layers\.(\d+)\.self_attn\.k_proj\.", r"encoder.layer.\1.attention.self.key."),
    (r"encoder\.layers\.(\d+)\.self_attn\.v_proj\.", r"encoder.layer.\1.attention.self.value."),
    (r"encoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"encoder.layer.\1.attention.output.dense."),
    (r"encoder\.layers\.(\d+)\.norm1\.", r"encoder.layer.\1.attention.output.LayerNorm."),
    (r"encoder\.layers\.(\d+)\.ffn\.linear1\.", r"encoder.layer.\1.intermediate.dense."),
    (r"encoder\.layers\.(\d+)\.ffn\.linear2\.", r"encoder.layer.\1.output.dense."),
    (r"encoder\.layers\.(\d+)\.norm2\.", r"encoder.layer.\1.output.LayerNorm."),
    (r"pooler\.", "pooler.dense."),
    (r"mlm_dense\.", "cls.predictions.transform.dense."),
    (r"mlm_norm\.", "cls.predictions.transform.LayerNorm."),
    (r"mlm_bias$", "cls.predictions.bias"),
    (r"nsp_head\.", "cls.seq_relationship."),
]


def hf_parameter_name(name: str, prefixed: bool) -> str:
    """Hugging Face's name for our parameter ``name``; ``prefixed`` puts the body under ``bert.`` (task models)."""
    body = name.removeprefix("bert.")
    for pattern, replacement in BERT_RENAMES:
        new, hits = re.subn("^" + pattern, replacement, body)
        if hits:
            body = new
            break
    is_head = body.startswith(("cls.", "classifier."))
    return body if is_head or not prefixed else "bert." + body


def to_hf_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Our parameters under Hugging Face's names (``bert.`` prefix for the task models, decoder tied)."""
    prefixed = not isinstance(model, BertModel)
    state = {hf_parameter_name(k, prefixed): v for k, v in model.state_dict().items()}
    if isinstance(model, BertForPreTraining):
        state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
        state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    return state


@torch.no_grad()
def from_hf_state_dict(model: nn.Module, state: dict[str, Tensor]) -> list[str]:
    """Copy Hugging Face tensors into ``model``; return the names of our parameters left untouched.

    The ``bert.`` prefix is optional (a plain ``BertModel`` checkpoint fills a task model's body).
    Keys ``model`` has no place for (e.g. the MLM head when loading a ``BertModel``) are ignored;
    a tensor of the wrong shape raises.
    """
    available = {k.removeprefix("bert."): v for k, v in state.items()}
    missing = []
    for name, tensor in model.state_dict().items():
        key = hf_parameter_name(name, prefixed=False)
        if key not in available:
            missing.append(name)
            continue
        if available[key].shape != tensor.shape:
            raise ValueError(f"{key} has shape {tuple(available[key].shape)} in the checkpoint, "
                             f"expected {tuple(tensor.shape)} for {name}")
        tensor.copy_(available[key])
    return missing
