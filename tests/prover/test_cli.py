"""End to end through the `prover` command line: the fake Lean REPL and real Coq."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAKE_REPL, ROOT
from tests.run_cli import prove_coq_example, prover

DATA = ROOT / "tests" / "data"
AND_STATEMENT = "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r :="


@pytest.fixture
def repl_cmd(transcripts) -> str:
    return f"{shlex.quote(sys.executable)} {FAKE_REPL} --transcripts {transcripts} --axioms complex_and=propext"


@pytest.fixture
def and_tactics(tmp_path) -> Path:
    path = tmp_path / "tactics.txt"
    path.write_text("sorry\nexact h1.right\nexact h1.left\napply h2\napply And.intro\n")
    return path


def test_help_explains_every_subcommand():
    out = prover("--help").stdout
    for sub in ("prove", "check", "eval", "report", "draft", "serve", "setup"):
        assert sub in out
    prove_help = prover("prove", "--help").stdout
    for flag in (
        "--repl-cmd",
        "--generator",
        "--expansions",
        "--time-limit",
        "--tactic-timeout",
        "--samples",
        "--batch",
        "--tree",
        "--json",
        "--preset",
        "--tactics",
    ):
        assert flag in prove_help


def prove_and(repl_cmd: str, tactics, *extra: str):
    """`prover prove` on the transcripts' `complex_and` theorem through the fake REPL."""
    return prover("prove", "--statement", AND_STATEMENT, "--repl-cmd", repl_cmd, "--tactics", str(tactics), *extra)


def test_prove_through_the_lean_repl_json(repl_cmd, and_tactics, tmp_path):
    tree = tmp_path / "tree.graphml"
    done = prove_and(repl_cmd, and_tactics, "--json", "--tree", str(tree))
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and record["verified"] is True
    assert record["tactics"] == ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"]
    assert record["proof"].startswith(AND_STATEMENT + " by\n  apply And.intro")
    assert record["axioms"] == ["propext"]
    for key in ("stop_reason", "expansions", "tactic_calls", "model_calls", "model_s", "env_s", "wall_s"):
        assert key in record
    import networkx as nx

    graph = nx.read_graphml(tree)
    assert any(d["tactic"] == "apply And.intro" for _, _, d in graph.edges(data=True))


def test_prove_human_output_and_json_tree(repl_cmd, and_tactics, tmp_path):
    tree = tmp_path / "tree.json"
    done = prove_and(repl_cmd, and_tactics, "--tree", str(tree))
    assert done.returncode == 0
    assert "proved complex_and" in done.stdout and "  exact h1.right" in done.stdout
    graph = json.loads(tree.read_text())
    outcomes = {e["tactic"]: e["outcome"] for e in graph["edges"]}
    assert outcomes["sorry"] == "failed" and outcomes["exact h1.right"] == "proved"
    assert graph["nodes"][0]["status"] == "proved"


def test_not_proved_exits_1(repl_cmd, tmp_path):
    tactics = tmp_path / "t.txt"
    tactics.write_text("apply And.intro\nexact h1.left\n")
    done = prove_and(repl_cmd, tactics, "--json")
    assert done.returncode == 1
    record = json.loads(done.stdout)
    assert record["status"] == "failed" and record["stop_reason"] == "frontier_exhausted"
    assert record["verified"] is False and record["tactics"] == []


def test_nonstandard_axioms_are_never_reported_proved(transcripts, and_tactics):
    cmd = f"{shlex.quote(sys.executable)} {FAKE_REPL} --transcripts {transcripts} --axioms complex_and=sorryAx"
    done = prove_and(cmd, and_tactics, "--json")
    record = json.loads(done.stdout)
    assert done.returncode == 1 and record["status"] == "failed" and record["verification_failures"] >= 1


def test_minif2f_theorem_is_loaded_and_a_statement_error_is_reported(repl_cmd, shared):
    done = prover(
        "prove", "mathd_algebra_478", "--data", str(shared / "benchmarks" / "minif2f"), "--repl-cmd", repl_cmd, "--json"
    )
    record = json.loads(done.stdout)
    assert done.returncode == 1 and record["status"] == "error" and record["stop_reason"] == "start_error"
    assert "mathd_algebra_478" in record["error"]


def test_usage_and_setup_errors_exit_2(shared):
    data = str(shared / "benchmarks" / "minif2f")
    unknown = prover("prove", "no_such_theorem", "--data", data, "--repl-cmd", "x")
    assert unknown.returncode == 2 and "no theorem named" in unknown.stderr
    missing = prover("prove", "--statement", AND_STATEMENT, "--repl-cmd", "no-such-repl-binary")
    assert missing.returncode == 2 and "prover setup lean" in missing.stderr
    nothing = prover("prove")
    assert nothing.returncode == 2


def test_check_lean_file(repl_cmd, tmp_path):
    path = tmp_path / "t.lean"
    path.write_text("theorem bb : 1+1=2 := by rfl\n")
    # the fake knows no such whole file; it answers with an error, which check must report
    done = prover("check", str(path), "--repl-cmd", repl_cmd, "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["theorems"][0]["name"] == "bb" and not report["theorems"][0]["proved"]


@pytest.mark.usefixtures("coq_available")
def test_prove_coq_multi_step_and_check(tmp_path):
    done = prove_coq_example(
        "rev_length_ex",
        "--tactics",
        str(DATA / "rev_length.txt"),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and len(record["tactics"]) >= 3
    assert record["tactics"][0] == "induction l"
    # the reported proof, without the file's other (admitted) theorems, compiles with a fresh coqc
    text = record["proof"]
    proof_file = tmp_path / "Proof.v"
    proof_file.write_text(text.split("(* one tactic *)")[0] + text[text.index("Theorem rev_length_ex") :])
    done_check = subprocess.run(["coqc", "-q", str(proof_file)], capture_output=True, text=True, cwd=tmp_path)
    assert done_check.returncode == 0, done_check.stdout + done_check.stderr


@pytest.mark.usefixtures("coq_available")
@pytest.mark.parametrize("name", ["add_zero_r", "and_swap", "double_ex"])
def test_prove_coq_with_default_automation(name):
    done = prove_coq_example(name, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verified"] is True


@pytest.mark.usefixtures("coq_available")
@pytest.mark.parametrize("name", ["false_add", "false_prop"])
def test_false_coq_statements_are_never_proved(name):
    done = prove_coq_example(
        name,
        "--json",
        "--expansions",
        "15",
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "failed"


@pytest.mark.usefixtures("coq_available")
def test_check_coq_file(tmp_path):
    path = tmp_path / "Ok.v"
    path.write_text("Theorem a : 1 + 1 = 2.\nProof. reflexivity. Qed.\nTheorem b : 2 = 3.\nProof. Admitted.\n")
    done = prover("check", str(path), "--json")
    report = {t["name"]: t for t in json.loads(done.stdout)["theorems"]}
    assert done.returncode == 1
    assert report["a"]["proved"] and not report["b"]["proved"] and report["b"]["axioms"] == ["b"]
