"""Shared fixtures: the fake Lean REPL (self-contained), the optional shared data, Coq.

The default test run needs nothing outside the repository. Tests that read `../shared`
(recorded REPL transcripts, the full miniF2F) are marked `conformance`: without the shared
directory they are skipped with ONE reason; with PROVER_REQUIRE_CONFORMANCE=1 (set by
`.ci/run`) a missing shared directory fails them instead, so CI cannot skip them silently.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE_REPL = ROOT / "tests" / "fakes" / "fake_lean_repl.py"
DATA = ROOT / "tests" / "data"
MINIF2F_DATA = DATA / "minif2f"  # our own tiny miniF2F-format files
CONFORMANCE_MISSING = "conformance data not found: ../shared/fixtures or $PROVER_SHARED"


def find_shared_dir() -> Path | None:
    """`../shared` next to the checkout (or $PROVER_SHARED), or None when absent."""
    env = os.environ.get("PROVER_SHARED")
    candidates = [Path(env)] if env else [p / "shared" for p in ROOT.parents]
    for c in candidates:
        if (c / "fixtures" / "lean-repl" / "transcripts.jsonl").is_file():
            return c
    return None


def conformance_required() -> bool:
    return os.environ.get("PROVER_REQUIRE_CONFORMANCE", "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if find_shared_dir() is not None or conformance_required():
        return
    skip = pytest.mark.skip(reason=CONFORMANCE_MISSING)
    for item in items:
        if "conformance" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared data directory; only for tests marked `conformance`."""
    found = find_shared_dir()
    if found is None:
        if conformance_required():
            pytest.fail(f"{CONFORMANCE_MISSING} (PROVER_REQUIRE_CONFORMANCE is set)")
        pytest.skip(CONFORMANCE_MISSING)
    return found


@pytest.fixture(scope="session")
def transcripts(shared: Path) -> Path:
    """The real REPL's recorded requests and responses (conformance tests only)."""
    return shared / "fixtures" / "lean-repl" / "transcripts.jsonl"


def fake_repl_argv(*extra: str) -> tuple[str, ...]:
    """The argv of the fake Lean REPL (its own model, no shared data) with extra test hooks."""
    return (sys.executable, str(FAKE_REPL), *extra)


@pytest.fixture
def fake_repl_cmd():
    """Build the argv of the fake REPL with extra test hooks."""
    return fake_repl_argv


@pytest.fixture(scope="session")
def coq_available() -> None:
    if shutil.which("coqidetop.opt") is None or shutil.which("coqc") is None:
        pytest.fail("Coq is not installed: run `apt-get install -y coq` (.ci/run does)")
