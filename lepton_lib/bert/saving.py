"""Save and load this library's BERTs as Hugging Face directories (``config.json`` + ``model.safetensors``).

The on-disk format is Hugging Face's, so ``transformers`` reads what ``save_pretrained`` writes and
``load_pretrained`` reads real checkpoints (all-MiniLM-L6-v2 in the book); the parameter names are
translated by ``lepton_lib.interop.huggingface``.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

from torch import nn

from lepton_lib.bert.model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from lepton_lib.core.files import atomic_write_bytes

__all__ = ["save_pretrained", "load_pretrained"]

ARCHITECTURES = {BertModel: "BertModel", BertForPreTraining: "BertForPreTraining",
                 BertForSequenceClassification: "BertForSequenceClassification"}
# The config is also stored in the weights file's metadata (Hugging Face ignores extra metadata): the two
# files are replaced one after the other, and a save interrupted between them leaves weights whose own
# config says how to read them.
CONFIG_METADATA_KEY = "lepton_config"


def save_pretrained(model: nn.Module, directory: str | Path) -> Path:
    """Write ``model.safetensors`` then ``config.json`` (Hugging Face names) into ``directory``.

    Each file is replaced atomically; a save killed between the two leaves the new weights next to the
    old ``config.json``, which ``load_pretrained`` detects and resolves with the config stored in the weights.
    """
    from safetensors.torch import save_file

    # Imported when called: lepton_lib.interop imports lepton_lib.bert, so a module-level import would be a cycle.
    from lepton_lib.interop.huggingface import to_hf_state_dict

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in to_hf_state_dict(model).items()}
    for tied in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"):  # safetensors stores each once
        state.pop(tied, None)
    config = model.config.to_dict() | {"architectures": [ARCHITECTURES[type(model)]]}
    # Weights first, each file atomically: a crash never pairs a new config.json with old weights.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model.safetensors.tmp-")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": "pt", CONFIG_METADATA_KEY: json.dumps(config, sort_keys=True)})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, directory / "model.safetensors")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_bytes(directory / "config.json", json.dumps(config, indent=2, sort_keys=True).encode())
    return directory


def load_pretrained(directory: str | Path, model_class: type[nn.Module] = BertModel, strict: bool = True,
                    **config_overrides) -> nn.Module:
    """Build ``model_class`` from a Hugging Face BERT directory (``config.json`` + ``model.safetensors``).

    With ``strict=True`` every parameter of the body must be in the file; head parameters that are
    missing (a classifier on top of a plain encoder) keep their fresh initialisation and are listed
    in ``model.newly_initialized``. ``config_overrides`` change the config (e.g. ``num_labels=2``,
    dropout rates) before the model is built.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from lepton_lib.interop.huggingface import from_hf_state_dict  # at call time, as in save_pretrained

    directory = Path(directory)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ValueError(f"{path} not found: load_pretrained expects a directory with config.json and "
                             f"model.safetensors (Hugging Face format)")
    try:
        saved = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_path} is not valid JSON ({err}): the file is truncated or corrupted") from err
    if not isinstance(saved, dict):
        raise ValueError(f"{config_path} must hold a JSON object, got {type(saved).__name__}")
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            stored_with_weights = (f.metadata() or {}).get(CONFIG_METADATA_KEY)
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights_path} cannot be read as safetensors (truncated or corrupted: {err})") from err
    if stored_with_weights is not None and json.loads(stored_with_weights) != saved:
        warnings.warn(f"{config_path} does not describe {weights_path} (a save_pretrained interrupted between "
                      f"its two files?); using the config stored in the weights file", stacklevel=2)
        saved = json.loads(stored_with_weights)
    model = model_class(BertConfig.from_dict(saved | config_overrides))
    missing = from_hf_state_dict(model, weights)
    body_missing = [m for m in missing if m.removeprefix("bert.").startswith(("embeddings", "encoder"))]
    if strict and body_missing:
        raise ValueError(f"{weights_path} lacks {len(body_missing)} encoder tensors, e.g. {body_missing[:3]}")
    model.newly_initialized = missing
    return model
