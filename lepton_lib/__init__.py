"""lepton_lib: the small, readable PyTorch library behind The Lepton Book.

One subpackage per part of the book, one module per idea:

``core``         devices and seeds, argument checks, files and provenance, plot style, glue
``data``         verified downloads and every dataset loader
``foundations``  a NumPy MLP, gradient checks, optimizers, schedules, a training loop, metrics
``attention``    attention, tiled attention and the KV cache, positions, Transformer blocks, tiny models
``bert``         WordPiece, pretraining data, the model, pretraining, checkpoints, fine-tuning
``gnn``          graph operations, message-passing layers and models, sampling, recommendation
``background``   the arithmetic of training and serving large models
``cases``        the case studies' pipelines, group fairness rates, calibration
``scale``        activation memory, fast decoding, compression, privacy, interpretability, DDP
``interop``      converters to and from torch, Hugging Face and PyG, used by parity tests

Each subpackage's ``__init__`` exports its public names: ``from lepton_lib.bert import BertModel``.
"""
__version__ = "2.0.0"
