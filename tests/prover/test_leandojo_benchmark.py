"""LeanDojo Benchmark 4 (prover/leandojo_benchmark.py) and `prover prove|eval --env leandojo` end to end.

The benchmark is tests/data/leandojo/benchmark, written in LeanDojo Benchmark 4's shape; the CLI
runs in-process so that `lean_dojo.Dojo` can be the scripted fake (tests/fakes/fake_dojo.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prover.cli import main
from prover.datasets import DatasetError
from prover.leandojo_benchmark import load_leandojo, read_records, traced_steps
from tests.envs.test_leandojo import DATA, lean, traced_repo  # noqa: F401 (fixtures)
from tests.fakes.fake_dojo import FakeLean, Traced, git_repo

BENCHMARK = DATA / "benchmark"
TACTICS = ["subst h", "rfl", "constructor", "· exact hq", "· exact hp"]


def test_loads_splits_and_strategies() -> None:
    test = load_leandojo(BENCHMARK, "test")
    assert [t.name for t in test] == ["Demo.eq_symm'", "Demo.and_swap"]
    eq = test[0]
    assert (eq.file_path, eq.start, eq.end, eq.split, eq.language) == (
        "Demo/Basic.lean",
        (5, 1),
        (8, 6),
        "test",
        "lean4",
    )
    assert eq.url == "https://github.com/prover-tests/demo" and len(eq.commit) == 40 and eq.statement == ""
    assert [t.name for t in load_leandojo(BENCHMARK / "random", "valid")] == ["Demo.add_zero'"]  # a strategy's folder
    assert [t.name for t in load_leandojo(BENCHMARK, "test", "novel_premises")] == ["Demo.add_zero'"]
    assert [t.split for t in load_leandojo(BENCHMARK, None)] == ["valid", "test", "test"]
    # a strategy's own folder with another strategy asked: refused, not evaluated under the wrong tag
    with pytest.raises(DatasetError, match="is the 'random' split, but --leandojo-split novel_premises"):
        load_leandojo(BENCHMARK / "random", "test", "novel_premises")


def test_bad_data_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="needs --data DIR"):
        load_leandojo(None, "test")
    with pytest.raises(DatasetError, match="holds no LeanDojo Benchmark 4"):
        load_leandojo(tmp_path, "test")
    (tmp_path / "test.json").write_text("[{")
    with pytest.raises(DatasetError, match="not JSON"):
        load_leandojo(tmp_path, "test")
    (tmp_path / "test.json").write_text(json.dumps([{"url": "u", "commit": "c", "file_path": "A.lean"}]))
    with pytest.raises(DatasetError, match="theorem 1 lacks full_name"):
        load_leandojo(tmp_path, "test")
    with pytest.raises(DatasetError, match="cannot read"):
        load_leandojo(tmp_path, "valid")


def test_traced_steps_check_only_the_main_line() -> None:
    steps = traced_steps(read_records(BENCHMARK, "test"))
    assert [s["tactic"] for s in steps] == [
        "subst h",
        "rfl",
        "constructor",
        "· exact hq",
        "exact hq",
        "· exact hp",
        "exact hp",
    ]
    checkable = {s["id"]: s["prefix"] for s in steps if "theorem" in s}
    assert checkable == {
        "Demo.eq_symm'#0": [],
        "Demo.eq_symm'#1": ["subst h"],
        "Demo.and_swap#0": [],
        "Demo.and_swap#1": ["constructor"],
        "Demo.and_swap#3": ["constructor", "· exact hq"],
    }
    assert steps[2]["theorem"].name == "Demo.and_swap" and steps[0]["state"].startswith("a b : ℕ")


@pytest.fixture
def dojo_benchmark(traced_repo: Traced, tmp_path: Path) -> Path:  # noqa: F811
    """The test benchmark pointing at the local traced repo."""
    out = tmp_path / "leandojo_benchmark_4"
    for path in BENCHMARK.rglob("*.json"):
        records = json.loads(path.read_text(encoding="utf-8"))
        for r in records:
            r.update(url=traced_repo.url, commit=traced_repo.commit)
        target = out / path.relative_to(BENCHMARK)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture
def tactic_list(tmp_path: Path) -> Path:
    path = tmp_path / "tactics.txt"
    path.write_text("\n".join(TACTICS) + "\n", encoding="utf-8")
    return path


def leandojo_args(data: Path, *extra: str) -> list[str]:
    return ["--benchmark", "leandojo", "--data", str(data), "--split", "test", "--env", "leandojo", *extra]


def test_prove_one_benchmark_theorem(lean: FakeLean, dojo_benchmark: Path, tactic_list: Path, capsys) -> None:  # noqa: F811
    code = main(["prove", "Demo.eq_symm'", *leandojo_args(dojo_benchmark, "--tactics", str(tactic_list), "--json")])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["status"] == "proved" and record["verified"]
    assert record["tactics"] == ["subst h", "rfl"]
    assert "theorem eq_symm' (a b : Nat) (h : a = b) : b = a := by\n  subst h\n  rfl" in record["proof"]
    assert lean.count("open_command") == 1  # the fresh check


def test_eval_benchmark_with_search(lean: FakeLean, dojo_benchmark: Path, tactic_list: Path, tmp_path: Path) -> None:  # noqa: F811
    run = tmp_path / "run"
    assert main(["eval", *leandojo_args(dojo_benchmark, "--tactics", str(tactic_list), "--out", str(run))]) == 0
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert {r["theorem"]: r["status"] for r in records} == {"Demo.eq_symm'": "proved", "Demo.and_swap": "proved"}
    assert {r["variant"] for r in records} == {"leandojo:random"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["proved"] == 2 and summary["verification_failures"] == 0
    # a run directory refuses another split strategy
    other = leandojo_args(dojo_benchmark, "--tactics", str(tactic_list), "--out", str(run))
    other += ["--leandojo-split", "novel_premises"]
    assert main(["eval", *other]) == 2


def test_eval_traced_tactics(lean: FakeLean, dojo_benchmark: Path, tactic_list: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    run = tmp_path / "tp"
    args = ["eval", "--traced-tactics", "--top-k", "8", "--check", "--out", str(run)]
    assert main([*args, *leandojo_args(dojo_benchmark, "--tactics", str(tactic_list))]) == 0
    summary = json.loads((run / "tactic_summary.json").read_text())
    assert summary["steps"] == 7 and summary["top8"] == round(5 / 7, 4)
    assert summary["top1"] == round(1 / 7, 4)  # only `subst h` is the list's first tactic
    assert summary["checked_steps"] == 5 and summary["any_accepted"] == 1.0
    assert summary["accept_rate"] == round(5 / 25, 4)  # one scripted tactic per main-line state
    assert "tactic_config.json" in {p.name for p in run.iterdir()}


def test_cli_errors_are_one_line_exit_2(
    lean: FakeLean,  # noqa: F811
    dojo_benchmark: Path,
    traced_repo: Traced,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    def run(*args: str) -> str:
        assert main(list(args)) == 2
        err = capsys.readouterr().err.strip()
        # one error line, no traceback (eval's progress bar may have been drawn before it)
        assert err.splitlines()[-1].startswith("prover: error: ") and err.count("prover: error") == 1, err
        assert "Traceback" not in err
        return err.splitlines()[-1]

    assert "add --env leandojo" in run(
        "prove", "Demo.eq_symm'", "--benchmark", "leandojo", "--data", str(dojo_benchmark)
    )
    assert "needs --data DIR" in run(
        "eval", "--benchmark", "leandojo", "--env", "leandojo", "--out", str(tmp_path / "r")
    )
    assert "--benchmark leandojo" in run("eval", "--traced-tactics", "--out", str(tmp_path / "r2"))
    assert "--statement" not in run("prove", "--env", "leandojo", "--statement", "theorem t : True :=")
    # a repository that LeanDojo has not traced
    other = tmp_path / "other"
    shutil.copytree(DATA / "repo", other)
    commit = git_repo(other)
    untraced = tmp_path / "untraced"
    shutil.copytree(dojo_benchmark, untraced)
    path = untraced / "random" / "test.json"
    path.write_text(json.dumps([{**r, "url": str(other), "commit": commit} for r in json.loads(path.read_text())]))
    assert "is not traced in LeanDojo's cache" in run("prove", "Demo.eq_symm'", *leandojo_args(untraced))
    # no Lean
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "`lake` is not on PATH" in run("eval", *leandojo_args(dojo_benchmark, "--out", str(tmp_path / "r3")))
