"""Shared fixtures: where the shared data lives, the fake Lean REPL, Coq."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE_REPL = ROOT / "tests" / "fakes" / "fake_lean_repl.py"


def shared_dir() -> Path:
    """`../shared` next to the checkout (or $PROVER_SHARED)."""
    env = os.environ.get("PROVER_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [p / "shared" for p in ROOT.parents]
    for c in candidates:
        if (c / "fixtures" / "lean-repl" / "transcripts.jsonl").is_file():
            return c
    raise RuntimeError("the shared fixtures were not found; set PROVER_SHARED to the shared/ directory")


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()


@pytest.fixture(scope="session")
def transcripts(shared: Path) -> Path:
    return shared / "fixtures" / "lean-repl" / "transcripts.jsonl"


@pytest.fixture
def fake_repl_cmd(transcripts: Path):
    """Build the argv of the fake REPL with extra test hooks."""

    def build(*extra: str) -> tuple[str, ...]:
        return (sys.executable, str(FAKE_REPL), "--transcripts", str(transcripts), *extra)

    return build


@pytest.fixture(scope="session")
def coq_available() -> None:
    if shutil.which("coqidetop.opt") is None or shutil.which("coqc") is None:
        pytest.fail("Coq is not installed: run `apt-get install -y coq` (.ci/run does)")
