"""`prover eval` / `prover report` end to end on real Coq and on the fake Lean REPL."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time

import pytest

from prover.evaluate import pass_at_k, read_results, summarize, wilson_interval
from tests.conftest import FAKE_REPL, MINIF2F_DATA, ROOT
from tests.run_cli import prover

DATA = ROOT / "tests" / "data"
BENCH = DATA / "coq_bench.jsonl"


def coq_eval(out, *extra: str) -> subprocess.CompletedProcess[str]:
    return prover(
        "eval", "--env", "coq", "--benchmark-file", str(BENCH), "--out", str(out), "--expansions", "5", *extra
    )


def test_summary_math():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0 and pass_at_k(4, 0, 2) == 0.0
    low, high = wilson_interval(3, 4)
    assert 0 < low < 0.75 < high < 1
    records = [
        {
            "theorem": "a",
            "attempt": 0,
            "status": "proved",
            "stop_reason": "proved",
            "split": "valid",
            "expansions": 2,
            "wall_s": 1.0,
            "verification_failures": 0,
        },
        {
            "theorem": "a",
            "attempt": 1,
            "status": "failed",
            "stop_reason": "expansions",
            "split": "valid",
            "expansions": 5,
            "wall_s": 3.0,
            "verification_failures": 0,
        },
        {
            "theorem": "b",
            "attempt": 0,
            "status": "failed",
            "stop_reason": "time_limit",
            "split": "test",
            "expansions": 4,
            "wall_s": 9.0,
            "verification_failures": 1,
        },
        {
            "theorem": "b",
            "attempt": 1,
            "status": "failed",
            "stop_reason": "expansions",
            "split": "test",
            "expansions": 5,
            "wall_s": 3.0,
            "verification_failures": 0,
        },
    ]
    s = summarize(records)
    assert s["proved"] == 1 and s["theorems"] == 2 and s["pass_rate"] == 0.5
    assert s["pass@1"] == 0.25 and s["pass@2"] == 0.5
    assert s["splits"]["valid"]["proved"] == 1 and s["splits"]["test"]["proved"] == 0
    assert s["stop_reasons"] == {"proved": 1, "expansions": 2, "time_limit": 1}
    assert s["verification_failures"] == 1 and s["expansions"]["median"] == 4.5


@pytest.mark.usefixtures("coq_available")
def test_eval_on_coq_writes_results_summary_plots_and_resumes(tmp_path):
    out = tmp_path / "run"
    done = coq_eval(out, "--processes", "2")
    assert done.returncode == 0, done.stderr
    records = read_results(out / "results.jsonl")
    by_name = {r["theorem"]: r for r in records}
    assert set(by_name) == {"add_zero_r", "and_swap", "double_ex", "false_add"}
    assert by_name["false_add"]["status"] == "failed"
    assert all(by_name[n]["status"] == "proved" and by_name[n]["verified"] for n in ("add_zero_r", "double_ex"))
    for r in records:
        assert {"model_s", "env_s", "wall_s", "attempt", "seed", "variant", "stop_reason"} <= set(r)
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {**summarize(records), "run_wall_s": summary["run_wall_s"]}
    assert summary["proved"] == 3 and summary["variants"] == ["file:coq_bench.jsonl"]
    config = json.loads((out / "config.json").read_text())
    assert config["env"]["env"] == "coq" and config["search"]["expansions"] == 5
    assert (out / "proved_vs_time.png").stat().st_size > 0 and (out / "proved_vs_expansions.png").exists()
    assert "pass rate   3/4" in done.stdout
    # rerunning skips everything already in results.jsonl
    again = coq_eval(out, "--processes", "2")
    assert again.returncode == 0 and len(read_results(out / "results.jsonl")) == 4
    # a changed search budget is refused in the same directory
    changed = coq_eval(out, "--expansions", "7")
    assert changed.returncode == 2 and "different settings" in changed.stderr
    # so is a benchmark file of the same name with other statements (add_zero_r made false)
    edited = tmp_path / "edited" / BENCH.name
    edited.parent.mkdir()
    edited.write_text(BENCH.read_text().replace("n + 0 = n", "n + 1 = n"))
    other = prover("eval", "--env", "coq", "--benchmark-file", str(edited), "--out", str(out), "--expansions", "5")
    assert other.returncode == 2 and "different settings (benchmark_sha256)" in other.stderr


@pytest.mark.usefixtures("coq_available")
def test_killed_run_resumes_without_losing_or_repeating(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prover.cli",
            "eval",
            "--env",
            "coq",
            "--benchmark-file",
            str(BENCH),
            "--out",
            str(out),
            "--expansions",
            "5",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(read_results(out / "results.jsonl")) < 1:
        time.sleep(0.1)
    import os

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_results(out / "results.jsonl")
    assert 1 <= len(before) < 4
    resumed = coq_eval(out)
    assert resumed.returncode == 0, resumed.stderr
    after = read_results(out / "results.jsonl")
    assert sorted(r["theorem"] for r in after) == ["add_zero_r", "and_swap", "double_ex", "false_add"]
    assert after[: len(before)] == before


@pytest.mark.usefixtures("coq_available")
def test_attempts_give_pass_at_k_and_names_limit_select(tmp_path):
    out = tmp_path / "run"
    done = coq_eval(out, "--attempts", "2", "--names", "and_swap,false_add")
    assert done.returncode == 0, done.stderr
    records = read_results(out / "results.jsonl")
    assert sorted((r["theorem"], r["attempt"], r["seed"]) for r in records) == [
        ("and_swap", 0, 0),
        ("and_swap", 1, 1),
        ("false_add", 0, 0),
        ("false_add", 1, 1),
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@1"] == 0.5 and summary["pass@2"] == 0.5
    unknown = coq_eval(tmp_path / "x", "--names", "nope")
    assert unknown.returncode == 2 and "unknown theorem" in unknown.stderr


def test_eval_through_the_fake_lean_repl(tmp_path):
    """miniF2F-format theorems of our own, with their Mathlib header, through the fake Lean REPL."""
    tactics = tmp_path / "t.txt"
    tactics.write_text("constructor\nexact hp\napply hqr\nexact hq\nsubst h₀; subst h₁; norm_num\n")
    repl = f"{shlex.quote(sys.executable)} {FAKE_REPL}"
    done = prover(
        "eval",
        "--benchmark-file",
        str(MINIF2F_DATA / "minif2f_lean4.jsonl"),
        "--names",
        "toy_and_chain,toy_three_steps,toy_bad_statement",
        "--repl-cmd",
        repl,
        "--tactics",
        str(tactics),
        "--out",
        str(tmp_path / "run"),
    )
    assert done.returncode == 0, done.stderr
    records = {r["theorem"]: r for r in read_results(tmp_path / "run" / "results.jsonl")}
    assert records["toy_and_chain"]["status"] == "proved" and records["toy_and_chain"]["tactics"][-1] == "exact hq"
    assert records["toy_three_steps"]["status"] == "proved"
    assert records["toy_bad_statement"]["status"] == "error"


@pytest.mark.usefixtures("coq_available")
def test_ray_sharding_gives_the_same_results_as_local(tmp_path):
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert coq_eval(local).returncode == 0
    done = coq_eval(distributed, "--ray-workers", "2", "--ray")
    assert done.returncode == 0, done.stderr

    def outcome(run):
        return sorted((r["theorem"], r["status"], tuple(r["tactics"])) for r in read_results(run / "results.jsonl"))

    assert outcome(local) == outcome(distributed)
    assert json.loads((distributed / "summary.json").read_text())["proved"] == 3


@pytest.mark.usefixtures("coq_available")
def test_resume_after_a_torn_last_line_keeps_the_rerun_record(tmp_path):
    out = tmp_path / "run"
    assert coq_eval(out, "--names", "and_swap,double_ex").returncode == 0
    results = out / "results.jsonl"
    results.write_bytes(results.read_bytes()[:-40])  # killed while writing the second record
    assert len(read_results(results)) == 1
    again = coq_eval(out, "--names", "and_swap,double_ex")
    assert again.returncode == 0, again.stderr
    assert sorted(r["theorem"] for r in read_results(results)) == ["and_swap", "double_ex"]
    steps = tmp_path / "tp"
    tactic_eval = ("eval", "--env", "coq", "--tactic-steps", str(DATA / "coq_steps.jsonl"), "--out", str(steps))
    assert prover(*tactic_eval).returncode == 0
    rows = steps / "tactic_results.jsonl"
    rows.write_bytes(rows.read_bytes()[:-10])
    resumed = prover(*tactic_eval)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["index"] for r in read_results(rows)) == [0, 1, 2]


@pytest.mark.usefixtures("coq_available")
def test_report_compares_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    coq_eval(a, "--names", "and_swap,false_add")
    coq_eval(b, "--names", "and_swap,double_ex")
    plot = tmp_path / "cmp.png"
    done = prover("report", str(a), str(b), "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "1/2" in lines[1] and "50.0%" in lines[1]
    assert "2/2" in lines[2] and "100.0%" in lines[2]
    assert plot.stat().st_size > 0
    assert prover("report", str(tmp_path / "none")).returncode == 2


def test_report_leaves_blank_a_pass_at_k_a_run_has_not_measured(tmp_path):
    record = {"split": "test", "stop_reason": "proved", "expansions": 1, "wall_s": 1.0, "verification_failures": 0}
    for run, attempts in (("one", 1), ("two", 2)):
        (tmp_path / run).mkdir()
        lines = [{**record, "theorem": "a", "attempt": i, "status": "proved"} for i in range(attempts)]
        (tmp_path / run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    done = prover("report", str(tmp_path / "one"), str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr
    header, one, two = done.stdout.splitlines()[:3]
    assert header.split()[-2:] == ["pass@1", "pass@2"]
    assert one.split()[-2:] == ["100.0%", "—"] and two.split()[-2:] == ["100.0%", "100.0%"]
    assert "nan" not in done.stdout


@pytest.mark.usefixtures("coq_available")
def test_tactic_prediction_eval(tmp_path):
    tactics_file = DATA / "coq_steps.jsonl"
    out = tmp_path / "tp"
    done = prover(
        "eval", "--env", "coq", "--tactic-steps", str(tactics_file), "--top-k", "25", "--check", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "tactic_summary.json").read_text())
    # the automation list contains `intros; lia` (step 1) and `lia` (step 2) but not step 3's tactic
    assert summary["steps"] == 3 and summary["top25"] == pytest.approx(2 / 3, abs=1e-3)
    assert summary["top1"] == 0.0
    assert summary["checked_steps"] == 3 and 0 < summary["accept_rate"] < 1 and summary["any_accepted"] == 1.0
    rows = [json.loads(line) for line in (out / "tactic_results.jsonl").read_text().splitlines()]
    assert [r["topk"] for r in rows] == [True, True, False]
    assert all("model_s" in r and "env_s" in r for r in rows)
    config = json.loads((out / "tactic_config.json").read_text())
    assert config["top_k"] == 25 and config["check"] is True and config["env"]["env"] == "coq"
    # the directory resumes only the same measurement: another k (or no --check) is refused
    other_k = prover("eval", "--env", "coq", "--tactic-steps", str(tactics_file), "--top-k", "1", "--out", str(out))
    assert other_k.returncode == 2 and "different settings (top_k, check)" in other_k.stderr
    assert json.loads((out / "tactic_config.json").read_text())["top_k"] == 25
    edited = tmp_path / "edited" / tactics_file.name  # same name, another ground truth
    edited.parent.mkdir()
    edited.write_text(tactics_file.read_text().replace('"lia."', '"nia."'))
    assert edited.read_text() != tactics_file.read_text()
    argv = ("eval", "--env", "coq", "--tactic-steps", str(edited), "--top-k", "25", "--check", "--out", str(out))
    other_steps = prover(*argv)
    assert other_steps.returncode == 2 and "different settings (steps, steps_sha256)" in other_steps.stderr
