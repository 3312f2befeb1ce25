"""`python -m prover.tiny_model OUTDIR` builds the tests' tiny Llama offline, and `--generator hf` runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.run_cli import COQ_EXAMPLES


@pytest.mark.usefixtures("coq_available")
def test_build_offline_then_prove_with_it(tmp_path):
    out = tmp_path / "tiny"
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    built = subprocess.run(
        [sys.executable, "-m", "prover.tiny_model", str(out)], capture_output=True, text=True, env=offline, timeout=300
    )
    assert built.returncode == 0, built.stderr
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert f"--model {out}" in built.stdout  # it says what to run next
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 2
    # the README's snippet, end to end on CPU
    argv = ["prove", "--env", "coq", "--file", str(COQ_EXAMPLES), "--theorem", "add_zero_r"]
    argv += ["--generator", "hf", "--model", str(out), "--samples", "4", "--expansions", "5"]
    argv += ["--max-new-tokens", "16", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "prover.cli", *argv], capture_output=True, text=True, env=offline, cwd=ROOT, timeout=300
    )
    assert done.returncode in (0, 1), done.stderr
    record = json.loads(done.stdout)
    assert record["model_calls"] >= 1 and record["model_s"] > 0 and record["status"] in ("proved", "failed")


def test_unwritable_outdir_is_a_clear_error(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "prover.tiny_model", str(a_file / "sub")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and "cannot write" in done.stderr and "Traceback" not in done.stderr


def test_the_tests_use_the_same_builder():
    from prover import tiny_model
    from tests.fakes import tiny_model as fake

    assert fake.build_tiny_llama is tiny_model.build_tiny_llama
