"""`prover setup lean`: the smoke test finds a broken workspace (through our fake REPL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envs.types import EnvSetupError
from prover.setup import SMOKE_REQUESTS, smoke_test
from tests.conftest import fake_repl_argv


def test_the_smoke_test_imports_mathlib():
    assert any("import Mathlib" in request["cmd"] for _, request in SMOKE_REQUESTS)
    smoke_test(fake_repl_argv(), None)


def test_a_broken_mathlib_cache_is_found_at_setup():
    with pytest.raises(EnvSetupError, match="(?s)Mathlib smoke test failed.*cache.*Mathlib.olean"):
        smoke_test(fake_repl_argv("--broken-module", "Mathlib"), None)


def test_a_repl_that_dies_on_import_is_a_setup_error(tmp_path: Path):
    log = tmp_path / "log.jsonl"
    with pytest.raises(EnvSetupError, match="did not answer the Mathlib smoke test"):
        smoke_test(fake_repl_argv("--exit-on-cmd", "import Mathlib", "--log", str(log)), None)
    sent = [json.loads(line)["request"]["cmd"] for line in log.read_text().splitlines()]
    assert sent[0] == "example : 1 + 1 = 2 := rfl"  # Lean alone answered first


def test_a_repl_that_hangs_is_a_setup_error():
    with pytest.raises(EnvSetupError, match="within 1s"):
        smoke_test(fake_repl_argv("--hang-on-cmd", "import Mathlib"), None, timeout=1)
