"""Converters between this library's modules and torch's, Hugging Face's and PyTorch Geometric's: the
parity tests and weight loading use them; the chapters' teaching code does not.
"""

__all__ = []

