"""`--api-key` / OPENAI_API_KEY never land on disk or in logs, and never block a resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prover.evaluate import prepare_run_dir
from prover.options import GeneratorOptions, to_jsonable
from tests.conftest import ROOT
from tests.fakes.openai_server import FlakyServer

BENCH = ROOT / "tests" / "data" / "coq_bench.jsonl"
FLAG_KEY = "sk-flag-0123456789abcdef"
ENV_KEY = "sk-env-fedcba9876543210"


def eval_with_key(server: FlakyServer, out: Path, key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": ENV_KEY}
    argv = [sys.executable, "-m", "prover.cli", "-vv", "eval", "--env", "coq", "--benchmark-file", str(BENCH)]
    argv += ["--names", "add_zero_r", "--generator", "openai", "--model", "m", "--base-url", server.url]
    argv += ["--api-key", key, "--samples", "2", "--expansions", "2", "--out", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)


def files_under(path: Path) -> dict[str, str]:
    return {str(p): p.read_text(errors="replace") for p in path.rglob("*") if p.is_file()}


@pytest.mark.usefixtures("coq_available")
def test_keys_never_reach_the_run_directory_nor_the_logs_and_a_new_key_resumes(tmp_path):
    out = tmp_path / "run"
    with FlakyServer(tactics=["lia", "auto"]) as server:
        first = eval_with_key(server, out, FLAG_KEY)
        assert first.returncode == 0, first.stderr
        assert server.requests and all(r["auth"] == f"Bearer {FLAG_KEY}" for r in server.requests)
        second = eval_with_key(server, out, "sk-another-key-0000")  # same settings, new key: a resume
    assert second.returncode == 0, second.stderr
    assert "different settings" not in second.stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 1  # nothing ran twice
    written = files_under(out)
    assert {Path(p).name for p in written} >= {"config.json", "results.jsonl", "summary.json"}
    for key in (FLAG_KEY, ENV_KEY, "sk-another-key-0000"):
        for name, text in written.items():
            assert key not in text, name
        assert key not in first.stderr + first.stdout + second.stderr + second.stdout
    assert "api_key" not in json.loads((out / "config.json").read_text())["generator"]


def test_a_key_left_by_an_older_version_neither_blocks_nor_stays(tmp_path):
    config = {"generator": to_jsonable(GeneratorOptions(generator="openai")), "search": {}}
    old = {**config, "generator": {**config["generator"], "api_key": "sk-old"}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    prepare_run_dir(tmp_path, config)
    assert "sk-old" not in (tmp_path / "config.json").read_text()


def test_resolved_options_leave_the_key_out():
    options = GeneratorOptions(generator="openai", api_key="sk-hidden")
    assert "api_key" not in to_jsonable(options) and "sk-hidden" not in repr(options)
    assert options.api_key == "sk-hidden"  # the generator still gets it


def test_transport_settings_do_not_block_a_resume(tmp_path):
    """Retries and timeouts (and keys) do not change results; a run from before they existed resumes."""
    new = {"generator": to_jsonable(GeneratorOptions(generator="openai", retries=9, request_timeout=5.0))}
    old = {"generator": {k: v for k, v in new["generator"].items() if k not in ("retries", "request_timeout")}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    prepare_run_dir(tmp_path, new)
    assert json.loads((tmp_path / "config.json").read_text())["generator"]["retries"] == 9
    other_model = {"generator": {**new["generator"], "model": "another"}}
    with pytest.raises(ValueError, match="different settings"):
        prepare_run_dir(tmp_path, other_model)
