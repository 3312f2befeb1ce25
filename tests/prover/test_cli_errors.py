"""Bad input gets one clear line and exit 2, never a traceback; a finished search is never lost."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from prover.cli import EXIT_USAGE, build_parser, main, resolve_prove_config
from tests.conftest import ROOT
from tests.run_cli import COQ_EXAMPLES, prover

STATEMENT = "Theorem one_one : 1 + 1 = 2."


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def one_theorem(tmp_path) -> Path:
    path = tmp_path / "One.v"
    path.write_text(f"{STATEMENT}\nProof. Admitted.\n")
    return path


# --------------------------------------------------------------------------- nonsense values


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--memory-limit-mb", "0"),
        ("--processes", "0"),
        ("--tactic-timeout", "0"),
        ("--time-limit", "-5"),
        ("--time-limit", "nan"),
        ("--expansions", "-1"),
        ("--samples", "0"),
        ("--batch", "0"),
        ("--max-restarts", "-1"),
        ("--max-new-tokens", "0"),
        ("--temperature", "-0.5"),
        ("--tactic-timeout", "inf"),
        ("--time-limit", "inf"),
        ("--top-p", "2"),
        ("--top-p", "0"),
    ],
)
def test_prove_refuses_nonsense_numbers(capsys, flag, value):
    started = time.monotonic()
    code, out, err = run(capsys, "prove", "--env", "coq", "--statement", STATEMENT, flag, value)
    assert code == EXIT_USAGE and out == ""
    assert err.startswith(f"prover: error: {flag} must be") and err.count("\n") == 1
    assert time.monotonic() - started < 5  # refused before any process starts


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--limit", "-1"),
        ("--limit", "0"),
        ("--concurrency", "0"),
        ("--attempts", "0"),
        ("--ray-workers", "0"),
        ("--top-k", "0"),
    ],
)
def test_eval_refuses_nonsense_numbers(capsys, tmp_path, flag, value):
    out_dir = tmp_path / "run"
    code, _, err = run(
        capsys, "eval", "--env", "coq", "--benchmark-file", "x.jsonl", "--out", str(out_dir), flag, value
    )
    assert code == EXIT_USAGE and f"{flag} must be at least" in err
    assert not out_dir.exists()


def test_eval_refuses_an_infinite_limit_before_writing_anything(capsys, tmp_path):
    out_dir = tmp_path / "run"
    for flag in ("--tactic-timeout", "--time-limit"):
        code, _, err = run(
            capsys, "eval", "--env", "coq", "--benchmark-file", "x.jsonl", "--out", str(out_dir), flag, "inf"
        )
        assert code == EXIT_USAGE and f"{flag} must be a finite number" in err
    assert not out_dir.exists()


@pytest.mark.parametrize("command", [["eval", "--env", "coq", "--out", ""], ["prove", "--tree", "", "x"]])
def test_an_empty_path_is_refused_not_read_as_the_current_directory(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main(command)
    assert exc.value.code == EXIT_USAGE and "an empty path" in capsys.readouterr().err


def test_help_states_the_ranges():
    help_text = " ".join(prover("prove", "--help").stdout.split())
    assert "seconds per tactic (default: 10.0; > 0)" in help_text
    assert "proof-assistant processes in the pool (default: 1; ≥ 1)" in help_text
    assert "nucleus sampling mass (default: 0.95; > 0; ≤ 1)" in help_text


# --------------------------------------------------------------------------- eval offers only what it uses


@pytest.mark.parametrize("flag", ["--file", "--theorem", "--statement", "--header"])
def test_eval_does_not_offer_one_theorem_flags(capsys, flag):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--env", "coq", "--out", "x", flag, "y"])
    assert exc.value.code == EXIT_USAGE and f"unrecognized arguments: {flag}" in capsys.readouterr().err
    assert flag not in prover("eval", "--help").stdout.split()


# --------------------------------------------------------------------------- a file picks the proof assistant


def config_of(*argv: str):
    return resolve_prove_config(build_parser().parse_args(["prove", *argv]))


def test_a_coq_file_implies_env_coq(one_theorem, tmp_path):
    assert config_of("--file", str(one_theorem)).env.env == "coq"
    positional = config_of(str(one_theorem))
    assert positional.env.env == "coq" and positional.theorem.file == one_theorem
    thy = tmp_path / "T.thy"
    thy.write_text('theory T imports Main begin\nlemma t: "True" sorry\nend\n')
    assert config_of("--file", str(thy)).env.env == "isabelle"
    # an explicit --env wins, and the mismatch is then a usage error
    assert config_of("--file", str(one_theorem), "--env", "lean").env.env == "lean"


def test_a_file_with_several_theorems_needs_a_name(capsys):
    code, _, err = run(capsys, "prove", str(COQ_EXAMPLES))
    assert code == EXIT_USAGE and "--theorem NAME" in err and "add_zero_r" in err


@pytest.mark.usefixtures("coq_available")
def test_prove_a_coq_file_by_its_path(one_theorem):
    done = prover("prove", str(one_theorem), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["theorem"] == "one_one"


# --------------------------------------------------------------------------- unusable files


def test_binary_theorem_file_is_named(capsys, tmp_path):
    binary = tmp_path / "Bin.v"
    binary.write_bytes(Path(sys.executable).read_bytes()[:4096])
    code, _, err = run(capsys, "prove", "--file", str(binary), "--theorem", "x")
    assert code == EXIT_USAGE and str(binary) in err and "not a UTF-8 text file" in err
    nul = tmp_path / "Nul.v"
    nul.write_text("Theorem a : True.\x00\n")
    code, _, err = run(capsys, "prove", "--file", str(nul), "--theorem", "a")
    assert code == EXIT_USAGE and str(nul) in err and "NUL" in err


def test_missing_benchmark_file(capsys, tmp_path):
    missing = tmp_path / "none.jsonl"
    code, _, err = run(capsys, "eval", "--env", "coq", "--benchmark-file", str(missing), "--out", str(tmp_path / "r"))
    assert code == EXIT_USAGE and f"--benchmark-file {missing}" in err and "No such file" in err


def test_check_names_a_bad_file(capsys, tmp_path):
    binary = tmp_path / "Bin.v"
    binary.write_bytes(b"\xff\xfe garbage")
    code, _, err = run(capsys, "check", str(binary))
    assert code == EXIT_USAGE and f"file {binary} is not a UTF-8 text file" in err
    code, _, err = run(capsys, "check", str(tmp_path / "none.v"))
    assert code == EXIT_USAGE and "none.v: cannot read it (No such file or directory)" in err
    theory = tmp_path / "Foo.thy"  # not a Lean file: no attempt to start Lean on it
    theory.write_text("theory Foo imports Main begin\nend\n")
    code, _, err = run(capsys, "check", str(theory))
    assert code == EXIT_USAGE and "reads a .lean or .v file" in err and "lake" not in err


def test_check_refuses_an_env_that_does_not_read_the_file(capsys, tmp_path):
    coq = tmp_path / "A.v"
    coq.write_text("Theorem a : True. Proof. exact I. Qed.\n")
    for env in ("lean", "leandojo", "isabelle"):
        code, _, err = run(capsys, "check", "--env", env, str(coq))
        assert code == EXIT_USAGE and f"--env {env} cannot check a .v file (use --env coq)" in err
    lean = tmp_path / "A.lean"
    lean.write_text("theorem a : True := trivial\n")
    code, _, err = run(capsys, "check", "--env", "coq", str(lean))
    assert code == EXIT_USAGE and "--env coq cannot check a .lean file (use --env lean)" in err


def test_binary_benchmark_file(capsys, tmp_path):
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = run(capsys, "eval", "--env", "coq", "--benchmark-file", str(binary), "--out", str(tmp_path / "r"))
    assert code == EXIT_USAGE and str(binary) in err


def test_unusable_eval_out(capsys, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    bench = str(COQ_EXAMPLES.parent / "coq_bench.jsonl")
    for out, reason in (
        (a_file, "is a file, not a directory"),
        (a_file / "sub", "a part of the path is a file"),
        (Path("/proc/prover-test/run"), "cannot create the directory"),
    ):
        code, _, err = run(capsys, "eval", "--env", "coq", "--benchmark-file", bench, "--out", str(out))
        assert code == EXIT_USAGE, err
        assert err.startswith(f"prover: error: --out {out}") and reason in err and err.count("\n") == 1


def test_tactic_prediction_out_is_checked_too(capsys, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    steps = COQ_EXAMPLES.parent / "coq_steps.jsonl"
    code, _, err = run(capsys, "eval", "--env", "coq", "--tactic-steps", str(steps), "--out", str(a_file))
    assert code == EXIT_USAGE and "is a file, not a directory" in err


def test_repl_that_exits_at_once_shows_its_code_and_stderr(capsys):
    cmd = f"{sys.executable} -c \"import sys; sys.stderr.write('repl boom\\n'); sys.exit(3)\""
    code, _, err = run(capsys, "prove", "--statement", "theorem t : True :=", "--repl-cmd", cmd)
    assert code == EXIT_USAGE
    assert "exited (code 3)" in err and "repl boom" in err and "Traceback" not in err


# --------------------------------------------------------------------------- a bad --tree path never loses a search


def test_bad_tree_directory_is_refused_before_the_search(capsys, tmp_path):
    started = time.monotonic()
    tree = tmp_path / "no" / "such" / "tree.json"
    code, out, err = run(capsys, "prove", "--env", "coq", "--statement", STATEMENT, "--tree", str(tree))
    assert code == EXIT_USAGE and out == "" and f"--tree {tree}" in err
    assert time.monotonic() - started < 5
    code, _, err = run(capsys, "prove", "--env", "coq", "--statement", STATEMENT, "--tree", str(tmp_path))
    assert code == EXIT_USAGE and "is a directory" in err


@pytest.mark.usefixtures("coq_available")
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a file every write to fails)")
def test_tree_write_failure_after_the_search_keeps_the_proof():
    # /dev/full opens fine (the early check passes) but every write fails: the search has finished by then
    done = prover("prove", "--env", "coq", "--statement", STATEMENT, "--tree", "/dev/full")
    assert done.returncode == 0, done.stderr
    assert "proved one_one" in done.stdout and "reflexivity" in done.stdout
    assert "search tree was not written to /dev/full" in done.stderr and "Traceback" not in done.stderr
    as_json = prover("prove", "--env", "coq", "--statement", STATEMENT, "--tree", "/dev/full", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["status"] == "proved"


# --------------------------------------------------------------------------- report and version


def test_report_plot_without_matplotlib_names_the_extra(capsys, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = {"theorem": "a", "attempt": 0, "status": "proved", "stop_reason": "proved", "wall_s": 1.0}
    (run_dir / "results.jsonl").write_text(json.dumps(record) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    code, _, err = run(capsys, "report", str(run_dir), "--plot", str(tmp_path / "p.png"))
    assert code == EXIT_USAGE and "pip install 'prover[plots]'" in err
    assert not (tmp_path / "p.png").exists()


def test_version():
    from prover import __version__

    done = prover("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"prover {__version__}"
    assert __version__[0].isdigit()


def test_a_coq_cmd_that_is_not_coqidetop_fails_fast_and_clearly(capsys):
    started = time.monotonic()
    code, _, err = run(capsys, "prove", "--env", "coq", "--statement", STATEMENT, "--coq-cmd", "cat")
    assert code == EXIT_USAGE and "`cat`" in err and "Init" in err and "Traceback" not in err
    assert time.monotonic() - started < 60  # it was 241 s


def test_report_plot_path_is_checked(capsys, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = {"theorem": "a", "attempt": 0, "status": "proved", "stop_reason": "proved", "wall_s": 1.0}
    (run_dir / "results.jsonl").write_text(json.dumps(record) + "\n")
    code, out, err = run(capsys, "report", str(run_dir), "--plot", str(tmp_path / "none" / "p.png"))
    assert code == EXIT_USAGE and out == "" and "--plot" in err and "does not exist" in err


def test_binary_tactic_list_is_named(capsys, tmp_path):
    binary = tmp_path / "tactics.txt"
    binary.write_bytes(b"simp\n\xd0\xff\n")
    code, _, err = run(capsys, "prove", "--env", "coq", "--statement", STATEMENT, "--tactics", str(binary))
    assert code == EXIT_USAGE and f"--tactics {binary} is not a UTF-8 text file" in err


def test_a_missing_file_argument_is_not_looked_up_as_a_theorem_name(capsys, tmp_path):
    missing = tmp_path / "Nope.v"
    code, _, err = run(capsys, "prove", str(missing))
    assert code == EXIT_USAGE and f"{missing}: no such file" in err


@pytest.mark.parametrize(("env", "variant"), [("coq", "lean4"), ("coq", "isabelle"), ("isabelle", "lean4_llemma")])
def test_a_variant_the_env_does_not_read_is_refused(capsys, env, variant):
    data = str(ROOT / "tests" / "data" / "minif2f")
    code, _, err = run(capsys, "prove", "--env", env, "--variant", variant, "toy_linear", "--data", data)
    assert code == EXIT_USAGE and f"--env {env} reads the" in err and f"not --variant {variant}" in err


def test_an_output_under_a_file_says_so(capsys, tmp_path):
    a_file = tmp_path / "t.v"
    a_file.write_text("x")
    code, _, err = run(capsys, "prove", "--env", "coq", "--statement", STATEMENT, "--tree", str(a_file / "x.json"))
    assert code == EXIT_USAGE and f"{a_file} is a file, not a directory" in err


def test_a_memory_cap_too_low_to_start_names_the_cap_not_the_install(capsys, coq_available):
    code, _, err = run(capsys, "prove", "--env", "coq", "--statement", STATEMENT, "--memory-limit-mb", "20")
    assert code == EXIT_USAGE and "needs more memory than --memory-limit-mb allows" in err
    assert "install" not in err
