"""End to end through the `prover` command line: the fake Lean REPL and real Coq."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAKE_REPL, MINIF2F_DATA, ROOT
from tests.run_cli import prove_coq_example, prover

DATA = ROOT / "tests" / "data"
AND_STATEMENT = "theorem toy_and_chain (p q r : Prop) (hp : p) (hq : q) (hqr : q → r) : p ∧ r :="


@pytest.fixture
def repl_cmd() -> str:
    """Our fake Lean REPL (its own model of Lean: nothing outside the repository)."""
    return f"{shlex.quote(sys.executable)} {FAKE_REPL}"


@pytest.fixture
def and_tactics(tmp_path) -> Path:
    path = tmp_path / "tactics.txt"
    path.write_text("sorry\nexact hq\nexact hp\napply hqr\nconstructor\n")
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
    eval_help = " ".join(prover("eval", "--help").stdout.split())
    assert "--out OUT run directory, required" in eval_help


def test_help_names_every_choice_of_every_option():
    import argparse

    from prover.cli import build_parser

    (subcommands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in subcommands.choices.items():
        for action in parser._actions:
            if action.option_strings and action.choices:  # its metavar hides the choices: the help names them
                assert all(str(c) in (action.help or "") for c in action.choices), (name, action.option_strings)


def prove_and(repl_cmd: str, tactics, *extra: str):
    """`prover prove` on our `toy_and_chain` theorem through the fake REPL."""
    return prover("prove", "--statement", AND_STATEMENT, "--repl-cmd", repl_cmd, "--tactics", str(tactics), *extra)


def test_prove_through_the_lean_repl_json(repl_cmd, and_tactics, tmp_path):
    tree = tmp_path / "tree.graphml"
    done = prove_and(repl_cmd, and_tactics, "--json", "--tree", str(tree))
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and record["verified"] is True
    assert record["tactics"] == ["constructor", "exact hp", "apply hqr", "exact hq"]
    assert record["proof"].startswith(AND_STATEMENT + " by\n  constructor")
    assert record["axioms"] == []
    for key in ("stop_reason", "expansions", "tactic_calls", "model_calls", "model_s", "env_s", "wall_s"):
        assert key in record
    import networkx as nx

    graph = nx.read_graphml(tree)
    assert any(d["tactic"] == "constructor" for _, _, d in graph.edges(data=True))


def test_prove_human_output_and_json_tree(repl_cmd, and_tactics, tmp_path):
    tree = tmp_path / "tree.json"
    done = prove_and(repl_cmd, and_tactics, "--tree", str(tree))
    assert done.returncode == 0
    assert "proved toy_and_chain" in done.stdout and "  exact hq" in done.stdout
    graph = json.loads(tree.read_text())
    outcomes = {e["tactic"]: e["outcome"] for e in graph["edges"]}
    assert outcomes.get("sorry") in (None, "failed")  # dropped by the guard, or failed: never a proof
    assert outcomes["exact hq"] == "proved"
    assert graph["nodes"][0]["status"] == "proved"


def test_not_proved_exits_1(repl_cmd, tmp_path):
    tactics = tmp_path / "t.txt"
    tactics.write_text("constructor\nexact hp\n")
    done = prove_and(repl_cmd, tactics, "--json")
    assert done.returncode == 1
    record = json.loads(done.stdout)
    assert record["status"] == "failed" and record["stop_reason"] == "frontier_exhausted"
    assert record["verified"] is False and record["tactics"] == []


def test_nonstandard_axioms_are_never_reported_proved(and_tactics):
    cmd = f"{shlex.quote(sys.executable)} {FAKE_REPL} --axioms toy_and_chain=sorryAx"
    done = prove_and(cmd, and_tactics, "--json")
    record = json.loads(done.stdout)
    assert done.returncode == 1 and record["status"] == "failed" and record["verification_failures"] >= 1


def test_minif2f_theorem_is_loaded_and_a_statement_error_is_reported(repl_cmd):
    data = str(MINIF2F_DATA)
    done = prover("prove", "toy_bad_statement", "--data", data, "--repl-cmd", repl_cmd, "--json")
    record = json.loads(done.stdout)
    assert done.returncode == 1 and record["status"] == "error" and record["stop_reason"] == "start_error"
    assert "toy_bad_statement" in record["error"] and "Nat.frobnicate" in record["error"]


def test_a_minif2f_theorem_with_its_header_is_proved_by_a_multi_tactic_candidate(repl_cmd, tmp_path):
    tactics = tmp_path / "t.txt"
    tactics.write_text("norm_num\nsubst h₀; subst h₁; norm_num\n")
    done = prover(
        "prove", "toy_three_steps", "--data", str(MINIF2F_DATA), "--repl-cmd", repl_cmd, "--tactics", str(tactics),
        "--json",
    )  # fmt: skip
    record = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert record["verified"] is True and record["tactics"] == ["subst h₀; subst h₁; norm_num"]
    assert "set_option maxHeartbeats 0" in record["proof"] and "  (subst h₀; subst h₁; norm_num)" in record["proof"]


def test_usage_and_setup_errors_exit_2():
    data = str(MINIF2F_DATA)
    unknown = prover("prove", "no_such_theorem", "--data", data, "--repl-cmd", "x")
    assert unknown.returncode == 2 and "no theorem named" in unknown.stderr
    missing = prover("prove", "--statement", AND_STATEMENT, "--repl-cmd", "no-such-repl-binary")
    assert missing.returncode == 2 and "prover setup lean" in missing.stderr
    nothing = prover("prove")
    assert nothing.returncode == 2


def test_check_lean_file(repl_cmd, tmp_path):
    path = tmp_path / "t.lean"
    path.write_text("theorem bb : 2 + 2 = 4 := by norm_num\n\ntheorem cc : 2 + 2 = 5 := by\n  norm_num\n")
    done = prover("check", str(path), "--repl-cmd", repl_cmd, "--json")
    report = {t["name"]: t for t in json.loads(done.stdout)["theorems"]}
    assert done.returncode == 1 and report["bb"]["proved"] and not report["cc"]["proved"]


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
    # an Admitted lemma is its own axiom, named by its full path
    assert report["a"]["proved"] and not report["b"]["proved"] and report["b"]["axioms"] == ["Top.b"]
