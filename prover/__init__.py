"""User-facing side of the prover: CLI, options, generators, datasets, evaluation."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("prover")
except _metadata.PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
