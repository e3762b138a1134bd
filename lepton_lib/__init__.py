"""lepton_lib: the small, readable PyTorch library behind The Lepton Book.

Modules, one idea each: ``utils`` (devices, seeds, input checks), ``data`` (verified downloads and
dataset loaders), ``viz`` (plot style and mermaid diagrams), ``numpy_nn`` (a NumPy MLP with
backpropagation), ``optim`` (optimizers written by hand), ``metrics`` (classification metrics),
``train`` (training loops), ``attention`` (scaled dot-product and multi-head attention),
``tiled_attention`` (flash-style tiling and the KV cache), ``positional`` (position encodings),
``transformer`` (encoder and decoder layers), ``tiny_models`` (a small Transformer and ViT),
``flops`` (compute and memory accounting), ``gnn`` and ``graph_utils`` (graph neural networks).
"""
__version__ = "0.1.0"
