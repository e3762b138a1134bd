"""BERT pretraining (book/bert): WordPiece, pretraining data, the model, the pretraining loop and its
checkpoints, fine-tuning. The recorded runs' recipes: lepton_lib.bert.pretraining_recipe and
lepton_lib.bert.fine_tuning_recipe.
"""
from lepton_lib.bert import basic_tokenizer, checkpoint, fine_tuning, lstm_classifier, model, pretraining, pretraining_data, saving, tokenization, word_senses

__all__ = [  # every public name of the modules above
    *basic_tokenizer.__all__,
    *checkpoint.__all__,
    *fine_tuning.__all__,
    *lstm_classifier.__all__,
    *model.__all__,
    *pretraining.__all__,
    *pretraining_data.__all__,
    *saving.__all__,
    *tokenization.__all__,
    *word_senses.__all__,
]

from lepton_lib.bert.basic_tokenizer import *  # noqa: E402, F403
from lepton_lib.bert.checkpoint import *  # noqa: E402, F403
from lepton_lib.bert.fine_tuning import *  # noqa: E402, F403
from lepton_lib.bert.lstm_classifier import *  # noqa: E402, F403
from lepton_lib.bert.model import *  # noqa: E402, F403
from lepton_lib.bert.pretraining import *  # noqa: E402, F403
from lepton_lib.bert.pretraining_data import *  # noqa: E402, F403
from lepton_lib.bert.saving import *  # noqa: E402, F403
from lepton_lib.bert.tokenization import *  # noqa: E402, F403
from lepton_lib.bert.word_senses import *  # noqa: E402, F403
