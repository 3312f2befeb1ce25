"""Draft, Sketch, Prove: step splitting, gap filling, and end to end on real Coq."""

from __future__ import annotations

import json

import pytest

from prover.drafting import fill_gaps, split_steps
from tests.conftest import ROOT
from tests.run_cli import prover

DATA = ROOT / "tests" / "data"


def draft_coq(name: str, *extra: str):
    return prover("draft", "--env", "coq", "--file", str(DATA / "coq_examples.v"), "--theorem", name, *extra)


def test_lean_steps_keep_indented_blocks_together():
    sketch = "  have h : x = 4 := by sorry\n  rw [h₁, h]\n  constructor\n    · simp\n  sorry\n"
    assert split_steps(sketch, "lean4") == [
        "have h : x = 4 := by sorry",
        "rw [h₁, h]",
        "constructor\n  · simp",
        "sorry",
    ]
    assert fill_gaps("have h : x = 4 := by sorry", "linarith", "lean4") == "have h : x = 4 := by linarith"
    assert fill_gaps("exact sorry_lemma", "simp", "lean4") == "exact sorry_lemma"


def test_coq_steps_are_sentences():
    assert split_steps("intros a b.\nassert (h : a = a) by admit.\nadmit.", "coq") == [
        "intros a b.",
        "assert (h : a = a) by admit.",
        "admit.",
    ]
    assert fill_gaps("assert (h : a = a) by admit.", "lia.", "coq") == "assert (h : a = a) by lia."
    assert fill_gaps("admit.", "lia", "coq") == "lia."
    # a chained closer stays one closer inside a sentence; a bare gap needs no parentheses
    assert fill_gaps("assert (h : a = a) by admit.", "intros; lia", "coq") == "assert (h : a = a) by (intros; lia)."
    assert fill_gaps("admit.", "intros; lia", "coq") == "intros; lia."
    assert fill_gaps("assert (h : 0 <= x) by admit.", "psatz R 2", "coq") == "assert (h : 0 <= x) by psatz R 2."


@pytest.mark.usefixtures("coq_available")
def test_a_sketch_with_gaps_is_proved_and_verified():
    done = draft_coq("dsp_sum", "--sketch", str(DATA / "dsp_sum_sketch.v"), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and record["verified"]
    assert record["gaps"] == 2 and record["gaps_closed"] == 2
    assert (
        record["tactics"][1].startswith("assert (h1 : a * b = 6) by ")
        and "admit" not in record["proof"].split("dsp_sum")[-1]
    )


@pytest.mark.usefixtures("coq_available")
def test_a_false_step_in_a_sketch_fails_with_the_step_named():
    done = draft_coq("dsp_sum", "--sketch", str(DATA / "dsp_bad_sketch.v"), "--json")
    record = json.loads(done.stdout)
    assert done.returncode == 1 and record["status"] == "failed"
    assert "step 2" in record["message"] and "a * b = 7" in record["message"]


@pytest.mark.usefixtures("coq_available")
def test_a_no_op_closer_does_not_close_a_bare_gap(tmp_path):
    closers = tmp_path / "closers.txt"
    closers.write_text("intros\nsimpl\n")
    done = draft_coq("dsp_sum", "--sketch", str(DATA / "dsp_sum_sketch.v"), "--closers", str(closers), "--json")
    record = json.loads(done.stdout)
    assert done.returncode == 1 and "step 2" in record["message"]


@pytest.mark.usefixtures("coq_available")
def test_drafting_with_a_model_runs_to_a_clean_result(tmp_path):
    from tests.fakes.tiny_model import build_tiny_llama

    model = build_tiny_llama(tmp_path / "tiny")
    done = draft_coq(
        "dsp_sum",
        "--generator",
        "hf",
        "--model",
        str(model),
        "--sketches",
        "2",
        "--temperature",
        "1.0",
        "--max-new-tokens",
        "16",
        "--json",
    )
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "failed" and 1 <= record["sketches_tried"] <= 2
    assert record["informal_proof_source"] == "model"


def test_draft_without_sketch_or_model_is_a_usage_error():
    done = draft_coq("dsp_sum")
    assert done.returncode == 2 and "--sketch" in done.stderr
