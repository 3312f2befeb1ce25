"""Datasets: miniF2F variants from our own tiny files, the downloads (faked), source files, the Coq prelude.

Only the test marked `conformance` reads the real miniF2F in ../shared.
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.error
from pathlib import Path

import pytest

from prover import datasets
from prover.datasets import (
    HAMMER_IMPORT,
    DatasetError,
    coq_prelude,
    find_theorem,
    load_jsonl_benchmark,
    load_minif2f,
    split_coq_source,
    split_lean_source,
    theorem_from_file,
    theorem_from_statement,
)
from tests.conftest import MINIF2F_DATA


def test_lean_variants_load_with_informal_text_joined_by_name():
    for variant in ("lean4_llemma", "lean4_deepseek"):
        theorems = load_minif2f(variant, None, MINIF2F_DATA)
        assert [t.name for t in theorems] == ["rq_mul_le", "rq_add_comm", "rq_two"]  # split, then name
        assert {t.split for t in theorems} == {"valid", "test"} and {t.language for t in theorems} == {"lean4"}
        t = find_theorem(theorems, "rq_two")
        assert t.statement == "theorem rq_two : (1 : ℕ) + 1 = 2 :=" and t.header.startswith("import")
        assert t.informal_statement == "Show that $1+1=2$." and t.informal_proof == "By computation."
    assert [t.name for t in load_minif2f("lean4_deepseek", "test", MINIF2F_DATA)] == ["rq_mul_le"]


def test_isabelle_variant_cuts_the_header_from_the_theory():
    theorems = load_minif2f("isabelle", "valid", MINIF2F_DATA)
    assert [t.name for t in theorems] == ["rq_add_comm", "rq_two"]
    assert all(t.language == "isabelle" for t in theorems)
    assert theorems[1].header == "theory rq_two imports Main\nbegin\n\n"
    assert theorems[1].informal_proof == "By computation."


def test_rocq_variant_is_coq_with_the_prelude_and_informal_text():
    theorems = load_minif2f("rocq", None, MINIF2F_DATA)
    assert len(theorems) == 6 and {t.language for t in theorems} == {"coq"}
    two = find_theorem(theorems, "rq_two")
    assert two.statement == "Theorem rq_two: 1 + 1 = 2." and two.split == "valid"
    assert two.header.startswith("Require Import Lia.\n") and "Lra" not in two.header  # not over the reals
    lin = find_theorem(theorems, "rq_real_lin")
    assert lin.header.startswith("Require Import Lia.\nRequire Import Lra Psatz.\n")
    assert lin.header.endswith("Require Import Reals.\n\nOpen Scope R_scope.\n\n")  # the original, last
    assert lin.informal_proof == "Adding 2 gives $3x=9$, so $x=3$."
    raw = load_minif2f("rocq", "valid", MINIF2F_DATA, prelude=False)
    assert find_theorem(raw, "rq_real_lin").header == "Require Import Reals.\n\nOpen Scope R_scope.\n\n"


def test_the_prelude_adds_only_what_is_missing():
    assert coq_prelude("Require Import Arith.\n", hammer=False) == "Require Import Lia.\n"
    assert coq_prelude("Require Import Lia.\n", hammer=False) == ""
    assert coq_prelude("Require Import Coquelicot.Coquelicot.\n", hammer=False) == (
        "Require Import Lia.\nRequire Import Lra Psatz.\n"
    )
    with_hammer = coq_prelude("", hammer=True)
    assert HAMMER_IMPORT in with_hammer and "Set Hammer ATPLimit" in with_hammer
    assert HAMMER_IMPORT not in coq_prelude(HAMMER_IMPORT + "\n", hammer=True)


def test_hammer_detection_follows_coqc(monkeypatch, tmp_path):
    datasets.hammer_installed.cache_clear()
    monkeypatch.setattr(datasets.shutil, "which", lambda _: None)
    assert datasets.hammer_installed() is False
    datasets.hammer_installed.cache_clear()


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="Did you mean: rq_add_comm"):
        find_theorem(load_minif2f("rocq", None, MINIF2F_DATA), "rq_add")
    with pytest.raises(DatasetError, match="does not exist"):
        load_minif2f("rocq", None, tmp_path)
    with pytest.raises(DatasetError, match="unknown miniF2F variant"):
        load_minif2f("lean3", None, MINIF2F_DATA)
    with pytest.raises(DatasetError, match="no formal statements"):
        load_minif2f("informal", None, MINIF2F_DATA)


def test_offline_download_says_to_use_data(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVER_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    for variant in ("lean4", "rocq"):
        with pytest.raises(DatasetError, match="--data DIR"):
            load_minif2f(variant)
    with pytest.raises(DatasetError, match="not downloaded automatically"):
        load_minif2f("lean4_llemma")


def tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


FACEBOOK = tarball(
    {
        "miniF2F-e4f/informal/test/mathd_x.json": json.dumps(
            {"problem_name": "mathd_x", "informal_statement": "Show a = 1.", "informal_proof": "By h."}
        ),
        "miniF2F-e4f/isabelle/test/mathd_x.thy": "theory mathd_x imports Main begin\n"
        'theorem mathd_x:\n  fixes a :: real\n  assumes "a = 1"\n'
        '  shows "a = 1"\n  using assms by simp\nend\n',
    }
)


def fake_downloads(monkeypatch, tmp_path, archives: dict[str, bytes]) -> list[str]:
    fetched: list[str] = []

    def download(url):
        fetched.append(url)
        return next(data for key, data in archives.items() if key in url)

    monkeypatch.setenv("PROVER_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets, "_download", download)
    return fetched


def test_download_builds_jsonl_from_the_archives(monkeypatch, tmp_path):
    source = "import Mathlib\n\nopen Real\n\ntheorem mathd_x (a : ℝ) (h : a = 1) : a = 1 := by\n  sorry\n"
    lean = tarball({"miniF2F-lean4-abc/MiniF2F/Test/mathd_x.lean": source})
    fetched = fake_downloads(monkeypatch, tmp_path, {"miniF2F-lean4": lean, "facebookresearch": FACEBOOK})
    [t] = load_minif2f("lean4")
    assert t.name == "mathd_x" and t.split == "test" and t.header == "import Mathlib\n\nopen Real\n\n"
    assert t.statement == "theorem mathd_x (a : ℝ) (h : a = 1) : a = 1 :="
    assert t.informal_statement == "Show a = 1." and t.informal_proof == "By h."
    [isa] = load_minif2f("isabelle")
    assert isa.language == "isabelle" and isa.statement.startswith("theorem mathd_x:")
    assert isa.statement.endswith('shows "a = 1"') and isa.header.startswith("theory mathd_x")
    load_minif2f("lean4")
    assert len(fetched) == 2  # cached after the first download
    assert (tmp_path / "minif2f" / "minif2f_lean4.jsonl").is_file()


def test_rocq_download_from_the_pinned_archive(monkeypatch, tmp_path):
    rocq = tarball(
        {
            "miniF2F-rocq-b60a/test/mathd_x.v": "Require Import Reals.\nOpen Scope R_scope.\n\n"
            "Theorem mathd_x: forall a : R,\n  a = 1 -> (* given. *) a = 1.\nProof.\nAdmitted.\n",
            "miniF2F-rocq-b60a/valid/mathd_y.v": "Require Import Arith.\n\nLemma mathd_y : 2 + 2 = 4.\nProof.\n",
            "miniF2F-rocq-b60a/README.md": "not a problem",
        }
    )
    fetched = fake_downloads(monkeypatch, tmp_path, {"LLM4Rocq/miniF2F-rocq": rocq, "facebookresearch": FACEBOOK})
    theorems = load_minif2f("rocq", prelude=False)
    assert fetched[0] == datasets.ROCQ_ARCHIVE and "b60affae5d9b81eb097424e3143c40165ccbe97b" in fetched[0]
    x, y = theorems
    assert (x.name, x.split, y.name, y.split) == ("mathd_x", "test", "mathd_y", "valid")
    assert x.header == "Require Import Reals.\nOpen Scope R_scope.\n\n" and x.language == "coq"
    assert x.statement == "Theorem mathd_x: forall a : R,\n  a = 1 -> (* given. *) a = 1."
    assert y.statement == "Lemma mathd_y : 2 + 2 = 4." and y.header == "Require Import Arith.\n\n"
    assert x.informal_proof == "By h."  # joined by name
    assert len(load_minif2f("rocq", "valid")) == 1 and len(fetched) == 2  # cached


def test_source_files(tmp_path):
    lean = tmp_path / "A.lean"
    lean.write_text(
        "import Mathlib\n\ntheorem helper : True := trivial\n\n"
        "theorem main (f : ℕ → ℕ) (h : ∀ x, f x = (x : ℕ)) : f 1 = 1 := by\n  simp [h]\n"
    )
    t = theorem_from_file(lean, "main")
    assert t.statement == "theorem main (f : ℕ → ℕ) (h : ∀ x, f x = (x : ℕ)) : f 1 = 1 :="
    assert "theorem helper" in t.header
    assert split_lean_source("theorem t {a : ℕ} : a = a := rfl", "t")[1] == "theorem t {a : ℕ} : a = a :="
    assert split_lean_source("example : True := trivial\ntheorem u : True := trivial", None)[1] == (
        "theorem u : True :="
    )
    header, statement = split_coq_source("Require Import Arith.\nLemma l : forall n, n = n.\nProof.", "l")
    assert header == "Require Import Arith.\n" and statement == "Lemma l : forall n, n = n."
    with pytest.raises(DatasetError):
        theorem_from_file(lean, "absent")
    with pytest.raises(DatasetError, match=".lean or .v"):
        theorem_from_file(tmp_path / "x.txt", "t")


@pytest.mark.parametrize(
    ("source", "name", "statement"),
    [
        ("Theorem t2: 1 + 1 = 2.\nProof. reflexivity. Qed.", "t2", "Theorem t2: 1 + 1 = 2."),
        ("Lemma t2' (x:nat):x = x.", "t2'", "Lemma t2' (x:nat):x = x."),
        ("Local Lemma l : 1.5 = 1.5 -> True. (* done. *)", "l", "Local Lemma l : 1.5 = 1.5 -> True."),
        ("Theorem c : (* a. b. *) True.\n", "c", "Theorem c : (* a. b. *) True."),
        ('Example e : "x. y" = "x. y".', "e", 'Example e : "x. y" = "x. y".'),
        ("Theorem t20 : True.\nTheorem t2 : False.", "t2", "Theorem t2 : False."),
    ],
)
def test_coq_declarations_in_every_form(tmp_path, source, name, statement):
    path = tmp_path / "T.v"
    path.write_text(source)
    t = theorem_from_file(path, name)
    assert (t.name, t.statement, t.language) == (name, statement, "coq")
    assert theorem_from_statement(statement, "", "coq").name == name


def test_inline_statement_and_jsonl_benchmark(tmp_path):
    t = theorem_from_statement("theorem t (a : ℕ) : a = a :=", "import Mathlib", "lean4")
    assert t.name == "t" and t.header == "import Mathlib"
    assert theorem_from_statement("example : 1 = 1 :=", "", "lean4").name == "example"
    assert theorem_from_statement('theorem th: "x = x"', "", "isabelle").name == "th"
    with pytest.raises(DatasetError, match="theorem NAME"):
        theorem_from_statement("a = a", "", "lean4")
    with pytest.raises(DatasetError, match="Theorem NAME"):
        theorem_from_statement("1 + 1 = 2.", "", "coq")
    bench = tmp_path / "b.jsonl"
    bench.write_text(
        '{"name": "x", "split": "test", "header": "", "formal_statement": "theorem x : True :="}\n'
        '{"name": "y", "split": "valid", "formal_statement": "theorem y : True :="}\n'
    )
    assert [t.name for t in load_jsonl_benchmark(bench, split="test")] == ["x"]
    bench.write_text('{"name": "x"}\n')
    with pytest.raises(DatasetError, match="lacks formal_statement"):
        load_jsonl_benchmark(bench)


@pytest.mark.conformance
def test_the_real_minif2f_loads_in_every_variant(shared: Path):
    data = shared / "benchmarks" / "minif2f"
    for variant in ("lean4", "lean4_llemma", "lean4_deepseek", "isabelle", "rocq"):
        theorems = load_minif2f(variant, None, data, prelude=False)
        assert len(theorems) == 488 and len(load_minif2f(variant, "test", data, prelude=False)) == 244
        assert sum(t.informal_proof is not None for t in theorems) == 488
    rocq = {t.name: t for t in load_minif2f("rocq", None, data, prelude=False)}
    # every statement's name is the record's name, whatever the spacing before the colon
    assert all(theorem_from_statement(t.statement, t.header, "coq").name == n for n, t in rocq.items())
    assert rocq["mathd_algebra_478"].statement.startswith("Theorem mathd_algebra_478")
