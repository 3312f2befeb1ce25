"""The tiny random Llama the tests use: the project's own builder (`python -m prover.tiny_model`)."""

from prover.tiny_model import TRAINING_TEXT, build_tiny_llama

__all__ = ["TRAINING_TEXT", "build_tiny_llama"]
