"""The benchmark scripts keep running (small sizes; the figures live in benchmarks/README.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_search_overhead_runs():
    out = run("benchmarks.search_overhead", "--sizes", "100", "300", "--rounds", "2", "--quota", "300")
    rows = [line.split() for line in out.splitlines()[1:] if not line.startswith("#")]
    assert [r[0] for r in rows] == ["100", "300"] and [r[2] for r in rows] == ["400", "1200"]


@pytest.mark.usefixtures("coq_available")
def test_coq_roundtrip_runs():
    out = run("benchmarks.coq_roundtrip", "--rounds", "8")
    assert "backend / direct latency ratio" in out


def test_generator_batching_runs():
    out = run("benchmarks.generator_batching", "--searches", "3", "--requests", "1", "--samples", "2", "--tokens", "4")
    assert "batched / one at a time" in out


@pytest.mark.usefixtures("coq_available")
def test_parallel_candidates_runs():
    out = run("benchmarks.parallel_candidates", "--processes", "2", "--rounds", "1", "--slow", "0.05")
    assert "2 processes / 1 process: median" in out


@pytest.mark.usefixtures("coq_available")
def test_parallel_candidates_pipeline_runs():
    args = ("--processes", "2", "--rounds", "1", "--slow", "0.05", "--model-latency", "0.05")
    out = run("benchmarks.parallel_candidates", *args)
    assert "pipelined / one after another: median" in out
