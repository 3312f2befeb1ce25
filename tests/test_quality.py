"""Lint and type checks run with the tests, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_ruff_lint_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rooms_import_only_what_the_design_allows():
    """envs/ never imports search/ or prover/; search/ imports only envs/."""
    import re

    rules = {"envs": ("search", "prover"), "search": ("prover",)}
    for room, forbidden in rules.items():
        for path in (ROOT / room).rglob("*.py"):
            text = path.read_text()
            for name in forbidden:
                assert not re.search(rf"^\s*(from|import) {name}\b", text, re.M), f"{path} imports {name}"
