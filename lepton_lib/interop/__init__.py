"""Converters between this library's modules and torch's, Hugging Face's and PyTorch Geometric's: the
parity tests and weight loading use them; the chapters' teaching code does not.
"""
from lepton_lib.interop import huggingface, pyg, torch_modules

__all__ = [  # every public name of the modules above
    *huggingface.__all__,
    *pyg.__all__,
    *torch_modules.__all__,
]

from lepton_lib.interop.huggingface import *  # noqa: E402, F403
from lepton_lib.interop.pyg import *  # noqa: E402, F403
from lepton_lib.interop.torch_modules import *  # noqa: E402, F403
