"""Theorem names, read one way per language, on every declaration form."""

from __future__ import annotations

import pytest

from envs.declarations import DeclarationError, declaration_name, declarations, find_declaration


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("theorem t : 1 + 1 = 2 :=", "t"),
        ("theorem t: 1 + 1 = 2 :=", "t"),
        ("theorem t(a : ℕ) : a = a :=", "t"),
        ("theorem t{a : ℕ} : a = a :=", "t"),
        ("theorem t[Group G] : True :=", "t"),
        ("theorem t⦃a : ℕ⦄ : a = a :=", "t"),
        ("theorem\n  mathd_algebra_478\n  (b h v : ℝ) : v = 65 :=", "mathd_algebra_478"),
        ("lemma foo' : True :=", "foo'"),
        ("theorem Nat.foo_bar : True :=", "Nat.foo_bar"),
        ("theorem «my theorem» : True :=", "«my theorem»"),
        ("@[simp] theorem s : True :=", "s"),
        ("@[simp, norm_num]\ntheorem s : True :=", "s"),
        ("private theorem p : True :=", "p"),
        ("protected nonrec theorem q : True :=", "q"),
        ("/-- doc with theorem fake -/\ntheorem real_one : True :=", "real_one"),
        ("example : True :=", None),
        ("example: True :=", None),
    ],
)
def test_lean_names(statement, name):
    assert declaration_name(statement, "lean4") == name


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("Theorem t : 1 + 1 = 2.", "t"),
        ("Theorem t2: 1 + 1 = 2.", "t2"),
        ("Lemma l(n : nat) : n = n.", "l"),
        ("Example ex : 2 = 2.", "ex"),
        ("Corollary c' : True.", "c'"),
        ("Proposition p : True.", "p"),
        ("Fact f : True.", "f"),
        ("Remark r : True.", "r"),
        ("Local Theorem lt : True.", "lt"),
        ("#[local] Lemma al : True.", "al"),
        ("Theorem\n  mathd_algebra_55\n  (x : R) : x = x.", "mathd_algebra_55"),
    ],
)
def test_coq_names(statement, name):
    assert declaration_name(statement, "coq") == name


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ('theorem amc12a_2019_p21:\n  fixes z :: complex\n  shows "z = z"', "amc12a_2019_p21"),
        ('lemma foo [simp]: "x = x"', "foo"),
        ('lemma foo : "x = x"', "foo"),
        ('lemma "x = x"', None),
    ],
)
def test_isabelle_names(statement, name):
    assert declaration_name(statement, "isabelle") == name


def test_no_declaration_is_a_clear_error():
    with pytest.raises(DeclarationError, match="Theorem NAME"):
        declaration_name("Definition d := 1.", "coq")
    with pytest.raises(DeclarationError, match="theorem NAME"):
        declaration_name("def d := 1", "lean4")


def test_file_declarations_in_order_and_lookup():
    text = "\n".join(
        [
            "Require Import Arith.",
            "Theorem a: True.",
            "Proof. auto. Qed.",
            "",
            "Example b : 1 = 1.",
            "Proof. reflexivity. Qed.",
        ]
    )
    assert [d.name for d in declarations(text, "coq")] == ["a", "b"]
    found = find_declaration(text, "b", "coq")
    assert found is not None and text[found.start :].startswith("Example b")
    assert find_declaration(text, "c", "coq") is None
