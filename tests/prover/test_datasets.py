from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest

from prover import datasets
from prover.datasets import (
    DatasetError,
    find_theorem,
    load_jsonl_benchmark,
    load_minif2f,
    split_coq_source,
    split_lean_source,
    theorem_from_file,
    theorem_from_statement,
)


@pytest.fixture(scope="module")
def minif2f(shared) -> Path:
    return shared / "benchmarks" / "minif2f"


def test_every_lean_variant_loads_with_informal_text(minif2f):
    for variant in ("lean4", "lean4_llemma", "lean4_deepseek"):
        theorems = load_minif2f(variant, None, minif2f)
        assert len(theorems) == 488
        assert {t.split for t in theorems} == {"valid", "test"}
        t = find_theorem(theorems, "mathd_algebra_478")
        assert t.statement.startswith("theorem mathd_algebra_478") and t.statement.rstrip().endswith(":=")
        assert t.header.lstrip().startswith("import") and t.language == "lean4"
        assert t.informal_statement and t.informal_proof
    assert len(load_minif2f("lean4", "test", minif2f)) == 244


def test_variants_differ_where_the_readme_says(minif2f):
    canonical = {t.name: t for t in load_minif2f("lean4", None, minif2f)}
    llemma = {t.name: t for t in load_minif2f("lean4_llemma", None, minif2f)}
    assert canonical.keys() == llemma.keys()
    assert llemma["aimeII_2001_p3"].header.startswith("import MiniF2F.Minif2fImport")
    assert canonical["aimeII_2001_p3"].header.startswith("import Mathlib")


def test_isabelle_variant(minif2f):
    theorems = load_minif2f("isabelle", "valid", minif2f)
    assert len(theorems) == 244 and all(t.language == "isabelle" for t in theorems)


def test_unknown_names_and_missing_files(minif2f, tmp_path):
    with pytest.raises(DatasetError, match="Did you mean"):
        find_theorem(load_minif2f("lean4", None, minif2f), "mathd_algebra_47")
    with pytest.raises(DatasetError, match="does not exist"):
        load_minif2f("lean4", None, tmp_path)
    with pytest.raises(DatasetError, match="unknown miniF2F variant"):
        load_minif2f("lean3", None, minif2f)


def test_offline_download_says_to_use_data(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVER_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError, match="--data DIR"):
        load_minif2f("lean4")
    with pytest.raises(DatasetError, match="not downloaded automatically"):
        load_minif2f("lean4_llemma")


def tarball(files: dict[str, str]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_download_builds_jsonl_from_the_archives(monkeypatch, tmp_path):
    source = "import Mathlib\n\nopen Real\n\ntheorem mathd_x (a : ℝ) (h : a = 1) : a = 1 := by\n  sorry\n"
    lean = tarball({"miniF2F-lean4-abc/MiniF2F/Test/mathd_x.lean": source})
    facebook = tarball(
        {
            "miniF2F-e4f/informal/test/mathd_x.json": json.dumps(
                {"problem_name": "mathd_x", "informal_statement": "Show a = 1.", "informal_proof": "By h."}
            ),
            "miniF2F-e4f/isabelle/test/mathd_x.thy": "theory mathd_x imports Main begin\n"
            'theorem mathd_x:\n  fixes a :: real\n  assumes "a = 1"\n'
            '  shows "a = 1"\n  using assms by simp\nend\n',
        }
    )
    fetched = []

    def download(url):
        fetched.append(url)
        return lean if "miniF2F-lean4" in url else facebook

    monkeypatch.setenv("PROVER_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets, "_download", download)
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
    header, statement = split_coq_source("Require Import Arith.\nLemma l : forall n, n = n.\nProof.", "l")
    assert header == "Require Import Arith.\n" and statement == "Lemma l : forall n, n = n."
    with pytest.raises(DatasetError):
        theorem_from_file(lean, "absent")
    with pytest.raises(DatasetError, match=".lean or .v"):
        theorem_from_file(tmp_path / "x.txt", "t")


def test_inline_statement_and_jsonl_benchmark(tmp_path):
    t = theorem_from_statement("theorem t (a : ℕ) : a = a :=", "import Mathlib", "lean4")
    assert t.name == "t" and t.header == "import Mathlib"
    with pytest.raises(DatasetError):
        theorem_from_statement("a = a", "", "lean4")
    bench = tmp_path / "b.jsonl"
    bench.write_text(
        '{"name": "x", "split": "test", "header": "", "formal_statement": "theorem x : True :="}\n'
        '{"name": "y", "split": "valid", "formal_statement": "theorem y : True :="}\n'
    )
    assert [t.name for t in load_jsonl_benchmark(bench, split="test")] == ["x"]
    bench.write_text('{"name": "x"}\n')
    with pytest.raises(DatasetError, match="lacks formal_statement"):
        load_jsonl_benchmark(bench)
