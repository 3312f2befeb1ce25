from __future__ import annotations

import math

import pytest

from prover.generators.postprocess import clean, cut_at_stop
from prover.generators.prompts import load_prompt
from search.best_first import Suggestion


def test_cut_strip_dedupe_filter_topn():
    raw = [
        Suggestion("  simp\n---\nNext", -1.0, 3),
        Suggestion("simp", -1.0, 1),
        Suggestion("", -0.1, 1),
        Suggestion("sorry", -0.01, 1),
        Suggestion("linarith", -2.0, 2),
        Suggestion("ring", -3.0, 1),
    ]
    out = clean(raw, "lean4", 2, stop=("---",))
    assert [s.tactic for s in out] == ["simp", "linarith"]
    assert math.isclose(out[0].logprob, math.log(2 * math.exp(-1.0)))


def test_cut_at_first_of_several_stops():
    assert cut_at_stop("a[GOAL]b\nc", ("\n", "[GOAL]")) == "a"


def test_prompts_by_name_and_file(tmp_path):
    llemma = load_prompt("llemma", "lean4")
    text = llemma.render("x : ℕ\n⊢ x = x")
    assert text.endswith("Tactic state:\n---\nx : ℕ\n⊢ x = x\n---\nNext tactic:\n---\n")
    assert text.startswith("Given the Lean 4 tactic state")
    assert llemma.stop == ("---",)
    assert load_prompt("llmstep", "lean4").render("⊢ P") == "[GOAL]⊢ P[PROOFSTEP]"
    assert "Coq" in load_prompt("llemma", "coq").template
    assert "Isabelle" in load_prompt("llemma", "isabelle").template
    custom = tmp_path / "p.txt"
    custom.write_text("STATE {state} TACTIC")
    assert load_prompt(str(custom), "lean4").render("g") == "STATE g TACTIC"
    with pytest.raises(ValueError):
        load_prompt("llmstep", "coq")
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholder")
    with pytest.raises(ValueError, match="placeholder"):
        load_prompt(str(bad), "lean4")
