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
    "simp /- a /- nested -/ comment -/ at h",
    "simp /-- a doc comment -/",
    'exact "-- not a comment"',
    "exact h.stop",
    "rw [h₁'] at h'",
    "exact ⟨'a', rfl⟩",
    "exact x.«foo»",
    'exact (r"raw", 1).2',
    "exact h.end_eq",
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
    "simp\nend": "command",
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
    # issue 11.6: `stop` is `repeat sorry`; `apply?` admits the goal it cannot close
    "stop": "gives up",
    "simp\n  stop": "gives up",
    "apply?": "gives up",
    "exact lcProof": "gives up",
    # the native-decide family trusts the compiler
    "decide +native": "compiler",
    "decide +kernel +native": "compiler",
    "decide (config := {native := true})": "compiler",
    "decide (config := { kernel := false, native := true })": "compiler",
    "bv_decide": "compiler",
    # these end the proof block or run meta code from a term
    "exact f\nwhere f : True := trivial": "command",
    "simp\ndecreasing_by simp": "command",
    "exact by_elab pure (Lean.mkConst ``True.intro)": "command",
    "simproc foo (_) := fun _ => pure .continue": "command",
    "alias foo := bar": "command",
    'notation3 "x" => 1': "command",
    # characters that change how the tactic reads (issue 11.7, 13.5)
    "simp\u202e": "U+202E",
    "simp \u2066x\u2069": "U+2066",
    "simp\u2028": "U+2028",
    'exact "\x01"': "U+0001",
    "simp\rlinarith": "U+000D",
    "simp\x1b[2K": "U+001B",
    # review: the axioms reached by a qualified name, quoted identifiers, `?` forms, comment tricks,
    # invisible format characters
    "exact _root_.sorryAx _ false": "gives up",
    "exact _root_.lcProof": "gives up",
    "exact «sorryAx» _ false": "gives up",
    "decide (config := { «native» := true })": "compiler",
    "termination_by?": "command",
    "simp\ndecreasing_by?": "command",
    "simp /-/": "comment",
    "simp /--/": "comment",
    "simp /-!/": "comment",
    "simp /- -- -/ (": "unbalanced",
    "simp /- /- nested -/ (": "comment",
    'simp "/-': "string",
    "simp\u061c": "U+061C",
    "simp\u200b": "U+200B",
    "si\u2060mp": "U+2060",
    "\ufeffsimp": "U+FEFF",
    # review: text hidden from the guard by Lean's lexing (escaped names, character literals, raw
    # strings, interpolation), and what trusts compiled code without saying `native`
    'have «--» : Nat := 0 <;> run_tac do let _ ← IO.Process.run {cmd := "sh", args := #[]}': "command",
    "let «--» := 0; exact sorry\nskip": "gives up",
    "(have h : Char := '\"'; exact sorry) --'\"')": "gives up",
    "(have h : Char := '\"'; native_decide) --'\"')": "compiler",
    'exact (r"\\", sorry).2 --")': "gives up",
    '(have := r"\\"; run_tac do pure ()) --")': "command",
    'exact (fun _ => rfl) s!"{by_elab do pure (Lean.mkNatLit 0)}"': "interpolated",
    "exact Lean.ofReduceNat _ _ rfl": "meta",
    "decide (config := ⟨false, true⟩)": "compiler",
    "exact DecideConfig.mk false true": "compiler",
    "simp end": "command",
    "exact h\n  end": "command",
    "proof_wanted foo : True": "command",
}


@pytest.mark.parametrize("tactic", LEAN_OK)
def test_lean_accepts_ordinary_tactics(tactic):
    assert check_tactic("lean4", tactic) is None


@pytest.mark.parametrize("tactic,why", [(k, v) for k, v in LEAN_BAD.items() if v])
def test_lean_rejects_escapes(tactic, why):
    reason = check_tactic("lean4", tactic)
    assert reason is not None and why in reason, (tactic, reason)


@pytest.mark.parametrize(
    "tactic", ["native_decide", "decide +native", "decide (config := {native := true})", "bv_decide"]
)
def test_native_decide_is_configurable(tactic):
    assert check_tactic("lean4", tactic) is not None
    assert check_tactic("lean4", tactic, TacticPolicy(allow_native_decide=True)) is None


@pytest.mark.parametrize("tactic", ["decide", "exact?", "exact h.stop", "simp [Nat.native]", "simp\tat h"])
def test_lean_near_misses_pass(tactic):
    assert check_tactic("lean4", tactic) is None


@pytest.mark.parametrize("language", ["lean4", "coq", "isabelle"])
@pytest.mark.parametrize("char", ["\x00", "\x01", "\x7f", "\x85", "\u202a", "\u202e", "\u2067", "\u2029", "\ud800"])
def test_every_language_rejects_control_and_bidi_characters(language, char):
    reason = check_tactic(language, f"simp{char}")
    assert reason is not None and f"U+{ord(char):04X}" in reason


COQ_OK = [
    "intros n",
    'exact I (* a comment with "a string" in it *)',
    'exact I (* "*)" *)',
    "1: lia",
    "assert (H : forall A : Set, A = A)",
    "- reflexivity",
    "apply H_Check",
    "induction n; simpl; lia.",
    "exact (fun x => x).",
    "-",
    "{",
    "}",
    "rewrite Nat.add_0_r.",
    "apply (f_equal S).",
    "simpl in *.",
    "destruct l as [|x xs].",
    "apply Cd.",
    "apply FunctionalExtensionality.functional_extensionality.",
    "intros\tn.",
]
COQ_BAD = [
    # review: commands glued to a bullet or brace, or after a string, still run as commands
    "-Axiom bad : False",
    '-Load "/tmp/evil.v"',
    "-Unset Guard Checking",
    "-Ltac foo := idtac",
    "-Print Assumptions x",
    "-Qed",
    "*Qed",
    "{Qed",
    "-Set Printing All",
    '-Redirect "/tmp/pwned"Check nat',
    "convert_concl_no_check True",
    # review: Coq lexes strings inside comments, so `(* "(*" *) X (* "*)" *)` runs X
    'exact helper (* "(*" *) . Abort. Theorem f : True. Proof. exact I (* "*)" *)',
    'idtac (* "(*" *) ; give_up (* "*)" *)',
    'exact I (* "(*" *) . Redirect "/tmp/pwned" Print nat. (* "*)" *)',
    'exact I (* "unterminated *)',
    "Property g : False",
    "idtac; Set Guard",
    "1: Set Printing All",
    "all: Set Printing All",
    "native_compute",
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
    # issue 11.6: proof-mode vernacular
    "Focus 1.",
    "Unfocus.",
    "BackTo 3.",
    "Solve All Obligations.",
    "Solve Obligations with auto.",
    "Existential 1 := 0.",
    "Grab Existential Variables.",
    "Show.",
    "Show Proof.",
    "Guarded.",
    "Strategy 1000 [f].",
    "Typeclasses Opaque f.",
    "Optimize Proof.",
    "Info 1 auto.",
    'Cd "/tmp".',
    '- Cd "/tmp".',
    "#[local] Hint Resolve x : core.",
    "#[local] auto.",
    # issue 11.7: a control character makes Coq's XML reply unparsable
    'idtac "\x01".',
    "auto.\u202e",
]


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError):
        check_tactic("agda", "refl")


ISABELLE_OK = ["apply simp", "by (simp add: algebra_simps)", "using assms by auto", 'have "x = 2" by simp', "qed"]
ISABELLE_BAD = [
    "sorry",
    "oops",
    'lemma foo: "False" sorry',
    "axiomatization where ax: False",
    "ML_prf \\<open>Thm.assume\\<close>",
    'ML \\<open>writeln "x"\\<close>',
    "method_setup m = \\<open>Scan.succeed (K all_tac)\\<close>",
    "oracle cheat = \\<open>fn x => x\\<close>",
    "declaration \\<open>K I\\<close>",
    "end",
    "apply simp (* open",
]


@pytest.mark.parametrize(("language", "tactic"), [("coq", t) for t in COQ_OK] + [("isabelle", t) for t in ISABELLE_OK])
def test_coq_and_isabelle_accept_ordinary_steps(language, tactic):
    assert check_tactic(language, tactic) is None


@pytest.mark.parametrize(
    ("language", "tactic"), [("coq", t) for t in COQ_BAD] + [("isabelle", t) for t in ISABELLE_BAD]
)
def test_coq_and_isabelle_reject_escapes(language, tactic):
    assert check_tactic(language, tactic) is not None
