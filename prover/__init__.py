"""User-facing side of the prover: CLI, options, generators, datasets, evaluation."""
