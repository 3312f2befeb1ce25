"""Run the `prover` command line as a user would, in a subprocess."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

COQ_EXAMPLES = ROOT / "tests" / "data" / "coq_examples.v"


def prover(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def prove_coq_example(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`prover prove --env coq` on a theorem of tests/data/coq_examples.v."""
    return prover("prove", "--env", "coq", "--file", str(COQ_EXAMPLES), "--theorem", name, *extra)
