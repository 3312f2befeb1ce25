"""miniF2F in Rocq end to end on real Coq: `--variant rocq`, the prelude, statements that do not
elaborate, names without a space before the colon, and CoqHammer closing a drafting gap."""

from __future__ import annotations

import json

import pytest

from prover.datasets import hammer_installed
from tests.conftest import MINIF2F_DATA
from tests.run_cli import prover

pytestmark = pytest.mark.usefixtures("coq_available")


def test_a_name_followed_by_a_colon_is_proved_and_verified():
    done = prover("prove", "--env", "coq", "--statement", "Theorem t2: 1 + 1 = 2.", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and record["verified"] and record["verification_failures"] == 0
    assert "Theorem t2: 1 + 1 = 2.\nProof.\n" in record["proof"]


def test_eval_on_rocq_proves_with_the_prelude_and_reports_what_does_not_elaborate(tmp_path):
    out = tmp_path / "run"
    done = prover(
        "eval", "--env", "coq", "--variant", "rocq", "--data", str(MINIF2F_DATA), "--generator", "automation",
        "--time-limit", "60", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = {r["theorem"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert len(records) == 6 and {r["variant"] for r in records.values()} == {"rocq"}
    broken = records.pop("rq_stdlib_names")  # `From Stdlib` is Rocq 9; Coq 8.16 cannot load it
    assert (broken["status"], broken["stop_reason"]) == ("error", "start_error")
    assert "Stdlib" in broken["error"] and broken["tactic_calls"] == 0
    assert {n: r["status"] for n, r in records.items()} == dict.fromkeys(records, "proved")
    # over the reals the prelude's lra/nra do it; the statement without a space before `:` verifies too
    assert records["rq_real_lin"]["tactics"][-1].endswith("lra")
    assert "Require Import Lra Psatz." in records["rq_real_lin"]["proof"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reasons"]["start_error"] == 1 and summary["proved"] == 5
    assert summary["verification_failures"] == 0


@pytest.mark.skipif(not hammer_installed(), reason="CoqHammer is not installed (apt-get install libcoq-hammer)")
def test_draft_closes_a_gap_only_coqhammer_closes(tmp_path):
    source = tmp_path / "Rev.v"
    source.write_text("Require Import List.\n\nTheorem len_rev2 (l : list nat) : length (rev (rev l)) = length l.\n")
    sketch = tmp_path / "sketch.v"
    # no cheap closer proves rev (rev l) = l: it needs the library lemma the hammer's premise selection finds
    sketch.write_text("assert (h : rev (rev l) = l) by admit.\nrewrite h.\nreflexivity.\n")
    done = prover(
        "draft", "--env", "coq", "--file", str(source), "--theorem", "len_rev2", "--sketch", str(sketch),
        "--tactic-timeout", "120", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and record["verified"] and record["gaps_closed"] == 1
    assert record["tactics"][0] in ("assert (h : rev (rev l) = l) by sauto.", "assert (h : rev (rev l) = l) by hammer.")
    assert "From Hammer Require Import Hammer Tactics." in record["proof"]


def test_the_rocq_variant_belongs_to_coq():
    done = prover("prove", "--env", "lean", "--variant", "rocq", "rq_two", "--data", str(MINIF2F_DATA))
    assert done.returncode == 2 and "--env coq (rocq)" in done.stderr
    # --env coq alone reads the rocq variant (the default --variant is a Lean one)
    done = prover("prove", "--env", "coq", "rq_two", "--data", str(MINIF2F_DATA), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["tactics"] == ["reflexivity"]
