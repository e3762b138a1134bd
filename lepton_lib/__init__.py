"""lepton_lib: the small, readable PyTorch library behind The Lepton Book.

Modules, one idea each: ``utils`` (devices, seeds, input checks), ``data`` (verified downloads and
dataset loaders), ``viz`` (plot style and mermaid diagrams), ``numpy_nn`` (a NumPy MLP with
backpropagation), ``optim`` (optimizers written by hand), ``metrics`` (classification metrics),
``train`` (training loops), ``attention`` and ``transformer``.
"""
__version__ = "0.1.0"
