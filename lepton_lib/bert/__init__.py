"""BERT pretraining (book/bert): WordPiece, pretraining data, the model, the pretraining loop and its
checkpoints, fine-tuning, and the recorded runs' command lines.
"""
from lepton_lib.bert import checkpoint, fine_tuning, model, pretraining, pretraining_data, pretraining_recipe, tokenization

__all__ = [  # every public name of the modules above
    *checkpoint.__all__,
    *fine_tuning.__all__,
    *model.__all__,
    *pretraining.__all__,
    *pretraining_data.__all__,
    *pretraining_recipe.__all__,
    *tokenization.__all__,
]

from lepton_lib.bert.checkpoint import *  # noqa: E402, F403
from lepton_lib.bert.fine_tuning import *  # noqa: E402, F403
from lepton_lib.bert.model import *  # noqa: E402, F403
from lepton_lib.bert.pretraining import *  # noqa: E402, F403
from lepton_lib.bert.pretraining_data import *  # noqa: E402, F403
from lepton_lib.bert.pretraining_recipe import *  # noqa: E402, F403
from lepton_lib.bert.tokenization import *  # noqa: E402, F403
