from __future__ import annotations

import pytest

from envs.tactic_guard import TacticPolicy, check_tactic

LEAN_OK = [
    "simp",
    "nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]",
    "exact?",
    "norm_num at h ⊢",
    "rw [Nat.add_comm]",
    "intro x\n  simp at x",
    "exact ⟨1, by norm_num⟩",
    "omega",
    "simp [show (2:ℝ) = 1 + 1 by norm_num]",
    "linarith -- closes it",
]
LEAN_BAD = {
    "sorry": "gives up",
    "exact sorry": "gives up",
    "admit": "gives up",
    "exact (sorryAx _)": "gives up",
    "native_decide": "native_decide",
    "theorem t : False := sorry": "gives up",
    "simp\ntheorem x : 1 = 1 := rfl": "starts a command",
    "lemma foo : True := trivial": "starts a command",
    "example : True := trivial": "starts a command",
    "axiom ax : False": "starts a command",
    "#eval IO.println 1": "command",
    "#exit": "command",
    "import Mathlib": "starts a command",
    "set_option maxHeartbeats 0 in simp": "starts a command",
    'elab "x" : tactic => pure ()': "command",
    'macro "x" : tactic => `(tactic| rfl)': "command",
    "run_tac pure ()": "command",
    "run_cmd pure ()": "command",
    "simp\nend": "column 0",
    "simp\nnamespace Foo": "command",
    "simp\n@[simp] def f := 1": "command",
    "exact (by simp": "unbalanced",
    "simp /- open": "comment",
    "attribute [simp] foo": "command",
    "exact Lean.ofReduceBool": "meta",
    "": "empty",
    "decide\nopen Foo": "column 0",
    "simp\ninclude h": "command",
    "omit h in simp": "command",
    "unsafe_cast": None,
}


@pytest.mark.parametrize("tactic", LEAN_OK)
def test_lean_accepts_ordinary_tactics(tactic):
    assert check_tactic("lean4", tactic) is None


@pytest.mark.parametrize("tactic,why", [(k, v) for k, v in LEAN_BAD.items() if v])
def test_lean_rejects_escapes(tactic, why):
    reason = check_tactic("lean4", tactic)
    assert reason is not None and why in reason, (tactic, reason)


def test_native_decide_is_configurable():
    assert check_tactic("lean4", "native_decide", TacticPolicy(allow_native_decide=True)) is None


COQ_OK = [
    "intros n",
    "induction n; simpl; lia.",
    "exact (fun x => x).",
    "-",
    "{",
    "}",
    "rewrite Nat.add_0_r.",
    "apply (f_equal S).",
    "simpl in *.",
    "destruct l as [|x xs].",
]
COQ_BAD = [
    "admit",
    "admit.",
    "Admitted.",
    "Abort.",
    "auto. Qed.",
    "intros. Axiom x : False.",
    "Qed",
    "give_up",
    "(* open",
    "exact_no_check I",
    "Require Import Classical.",
    "Print Assumptions x.",
    "Ltac t := idtac.",
    "Set Printing All.",
    "Definition x := 1.",
    "",
]


@pytest.mark.parametrize("tactic", COQ_OK)
def test_coq_accepts_ordinary_tactics(tactic):
    assert check_tactic("coq", tactic) is None


@pytest.mark.parametrize("tactic", COQ_BAD)
def test_coq_rejects_escapes(tactic):
    assert check_tactic("coq", tactic) is not None


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError):
        check_tactic("agda", "refl")
