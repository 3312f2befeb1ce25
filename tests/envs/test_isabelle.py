"""The Isabelle backend against a fake PISA gRPC server (real protobuf messages, scripted prover)."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time

import pytest

from envs.isabelle import IsabelleConfig, PisaIsabelle, decode_string_message, encode_string_message
from envs.types import EnvSetupError, Failed, Progress, Proved, Theorem, TheoremStartError, TimedOut, metered
from tests.conftest import ROOT

SCRIPT = ROOT / "tests" / "data" / "pisa_script.json"
HEADER = "theory Scratch\n  imports Main\nbegin\n"
ADD = Theorem("add_comm_ex", 'theorem add_comm_ex: "(a::nat) + b = b + a"', HEADER, "isabelle")
TWO = Theorem("two_step", 'theorem two_step: "(x::nat) = 2 \\<Longrightarrow> x + x = 4"', HEADER, "isabelle")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pisa(tmp_path):
    """Start fake PISA servers; yields a function (extra flags) -> port; all stopped afterwards."""
    procs = []

    def start(*extra: str) -> int:
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests/fakes/fake_pisa.py"),
                "--port",
                str(port),
                "--script",
                str(SCRIPT),
                "--log",
                str(tmp_path / f"log{port}.jsonl"),
                *extra,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return port

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def make_env(port: int, tmp_path, **extra) -> PisaIsabelle:
    return PisaIsabelle(IsabelleConfig(ports=(port,), host="127.0.0.1", workdir=tmp_path, **extra))


def test_codec_matches_protobuf():
    from tests.fakes.fake_pisa import pisa_messages

    m = pisa_messages()
    for text in ("", "by simp", "x" * 300, "théorème ∀ x. P x\n" * 50):
        ours = encode_string_message(text)
        assert ours == m["IsaCommand"](command=text).SerializeToString()
        assert decode_string_message(m["IsaState"](state=text).SerializeToString()) == text


async def test_start_step_branch_and_prove(pisa, tmp_path):
    env = make_env(pisa(), tmp_path)
    try:
        root = await env.start(TWO)
        assert root.goals == ("proof (prove)\ngoal (1 subgoal):\n 1. x = 2 \\<Longrightarrow> x + x = 4",)
        bad = await env.run_tactic(root, "by blast", 5)
        assert isinstance(bad, Failed) and "Step error" in bad.message
        step = await env.run_tactic(root, "apply simp", 5)
        assert isinstance(step, Progress) and "No subgoals" in step.state.goals[0]
        assert isinstance(await env.run_tactic(root, "by presburger", 5), Proved)  # a branch from the root
        assert isinstance(await env.run_tactic(step.state, "done", 5), Proved)
        for unsafe in ("sorry", "oops", "lemma x: False sorry"):
            result = await env.run_tactic(root, unsafe, 5)
            assert isinstance(result, Failed) and result.message.startswith("rejected"), unsafe
    finally:
        await env.close()
    header_files = list(tmp_path.glob("Prover_*.thy"))
    assert len(header_files) == 1 and header_files[0].read_text().startswith(f"theory {header_files[0].stem}")


async def test_protocol_commands(pisa, tmp_path):
    port = pisa()
    env = make_env(port, tmp_path)
    try:
        root = await env.start(ADD)
        await env.run_tactic(root, "by simp", 5)
    finally:
        await env.close()
    log = [json.loads(line) for line in (tmp_path / f"log{port}.jsonl").read_text().splitlines()]
    assert [e["method"] for e in log[:3]] == ["InitialiseIsabelle", "IsabelleWorkingDirectory", "IsabelleContext"]
    commands = [e["text"] for e in log if e["method"] == "IsabelleCommand"]
    sep = "<apply to top level state>"
    assert commands[:2] == ["<proceed before> end", "<initialise>"]
    assert commands[2] == f"{sep} default {sep} {ADD.statement} {sep} s1"
    assert commands[3] == f"{sep} s1 {sep} by simp {sep} s2" and commands[4] == "<is finished> s2"


async def test_verify_in_a_fresh_session(pisa, tmp_path):
    env = make_env(pisa(), tmp_path)
    try:
        root = await env.start(TWO)
        assert (await env.verify(TWO, ["apply simp", "done"])).accepted
        assert not (await env.verify(TWO, ["apply simp"])).accepted
        assert not (await env.verify(TWO, ["sorry"])).accepted
        # the fresh session dropped the named states; the old state replays its path
        assert isinstance(await env.run_tactic(root, "by presburger", 5), Proved)
        assert env.restarts == 0
    finally:
        await env.close()


async def test_timeout_reinitialises_and_replays(pisa, tmp_path):
    env = make_env(pisa("--hang-on", "apply (rule impI)"), tmp_path)
    try:
        root = await env.start(TWO)
        step = await env.run_tactic(root, "apply simp", 5)
        assert await env.run_tactic(root, "apply (rule impI)", 0.5) == TimedOut(0.5)
        assert env.restarts == 1
        # the session was re-initialised: the earlier state is rebuilt from its path
        assert isinstance(step, Progress)
        assert isinstance(await env.run_tactic(step.state, "done", 5), Proved)
    finally:
        await env.close()


async def test_bad_statement_and_missing_server(pisa, tmp_path):
    env = make_env(pisa(), tmp_path)
    try:
        with pytest.raises(TheoremStartError, match="rejected"):
            await env.start(Theorem("nope", 'theorem nope: "unknown"', HEADER, "isabelle"))
    finally:
        await env.close()
    env = make_env(free_port(), tmp_path)
    try:
        with pytest.raises(EnvSetupError, match="PISA"):
            await env.start(ADD)
    finally:
        await env.close()


def isabelle_cli(command: str, port: int, workdir, *extra: str) -> subprocess.CompletedProcess[str]:
    """`prover COMMAND` on the two-step theorem against the fake PISA server on `port`."""
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", command, "--env", "isabelle", "--statement", TWO.statement, "--header",
         HEADER, "--pisa-ports", str(port), "--pisa-host", "127.0.0.1", "--isabelle-workdir", str(workdir), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_prove_through_the_cli(pisa, tmp_path):
    port = pisa()
    tactics = tmp_path / "t.txt"
    tactics.write_text("by blast\napply simp\ndone\n")
    done = isabelle_cli(
        "prove",
        port,
        tmp_path,
        "--tactics",
        str(tactics),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and record["tactics"] == ["apply simp", "done"]
    assert record["proof"].endswith("  apply simp\n  done\n\nend\n")


def test_prove_through_the_cli_with_a_verify_port(pisa, tmp_path):
    port, verify_port = pisa(), pisa()
    tactics = tmp_path / "t.txt"
    tactics.write_text("apply simp\ndone\n")
    done = isabelle_cli("prove", port, tmp_path, "--tactics", str(tactics), "--pisa-verify-port", str(verify_port))
    assert done.returncode == 0, done.stderr
    checks = [json.loads(line)["text"] for line in (tmp_path / f"log{verify_port}.jsonl").read_text().splitlines()]
    assert any(f"{TWO.statement}\napply simp\ndone" in text for text in checks)


def test_draft_sketch_prove_on_isabelle(pisa, tmp_path):
    port = pisa()
    sketch = tmp_path / "sketch.thy"
    sketch.write_text('proof -\n  have "x + x = 2 * x" sorry\n  then show ?thesis sorry\nqed\n')
    done = isabelle_cli(
        "draft",
        port,
        tmp_path,
        "--sketch",
        str(sketch),
        "--json",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "proved" and record["gaps"] == 2 and record["gaps_closed"] == 2
    assert record["tactics"] == ["proof -", 'have "x + x = 2 * x" by simp', "then show ?thesis by presburger", "qed"]


async def test_another_header_on_the_same_port_does_not_lose_states(pisa, tmp_path):
    """Re-initialising PISA for B's header drops A's named states: A's state must be replayed."""
    env = make_env(pisa(), tmp_path)
    other = Theorem(ADD.name, ADD.statement, "theory Other\n  imports Complex_Main\nbegin\n", "isabelle")
    try:
        a = await env.start(TWO)
        step = await env.run_tactic(a, "apply simp", 5)
        b = await env.start(other)
        assert isinstance(await env.run_tactic(b, "by simp", 5), Proved)
        with metered() as usage:
            assert isinstance(step, Progress)
            assert isinstance(await env.run_tactic(step.state, "done", 5), Proved)
        assert usage.replays == 1 and env.restarts == 0
    finally:
        await env.close()


async def test_a_state_of_one_server_runs_on_another(pisa, tmp_path):
    env = PisaIsabelle(IsabelleConfig(ports=(pisa(), pisa()), host="127.0.0.1", workdir=tmp_path))
    try:
        root = await env.start(TWO)
        step = await env.run_tactic(root, "apply simp", 5)
        assert isinstance(step, Progress)
        home = env._slots[step.state.handle.slot]
        async with home.lock:
            with metered() as usage:
                other = await env.run_tactic(step.state, "done", 5)
                again = await env.run_tactic(root, "apply simp", 5)
        assert isinstance(other, Proved) and usage.replays == 1
        assert isinstance(again, Progress) and again.state.handle.slot != home.index
        assert usage.verify_s == 0
        assert (await env.verify(TWO, ["apply simp", "done"])).accepted
    finally:
        await env.close()


async def test_memory_cap_on_a_local_pisa_server(pisa, tmp_path):
    """The server's memory is sampled while the step runs: past the cap the step fails at once."""
    env = make_env(pisa("--bloat-on", "apply (rule impI)"), tmp_path, memory_limit_mb=300)
    try:
        root = await env.start(TWO)
        started = time.monotonic()
        result = await env.run_tactic(root, "apply (rule impI)", 30)
        assert isinstance(result, Failed) and "300 MiB cap" in result.message
        assert time.monotonic() - started < 4  # the fake answers only after 5 s
        assert env.restarts == 1
        # the session was re-initialised and the state is replayed
        assert isinstance(await env.run_tactic(root, "by presburger", 5), Proved)
    finally:
        await env.close()


async def test_a_verify_port_checks_on_its_own_warm_server(pisa, tmp_path):
    """With `verify_port`, re-checks never touch the search server and open each header once."""
    search_port, verify_port = pisa(), pisa()
    env = make_env(search_port, tmp_path, verify_port=verify_port)
    try:
        root = await env.start(TWO)
        step = await env.run_tactic(root, "apply simp", 5)
        searched = (tmp_path / f"log{search_port}.jsonl").read_text()
        assert (await env.verify(TWO, ["apply simp", "done"])).accepted
        assert not (await env.verify(TWO, ["apply simp"])).accepted
        assert not (await env.verify(TWO, ["apply (rule impI)"])).accepted
        assert (await env.verify(TWO, ["by presburger"])).accepted
        assert (tmp_path / f"log{search_port}.jsonl").read_text() == searched  # the search server untouched
        with metered() as usage:  # so the search's named states are all still there
            assert isinstance(step, Progress)
            assert isinstance(await env.run_tactic(step.state, "done", 5), Proved)
        assert usage.replays == 0
    finally:
        await env.close()
    log = [json.loads(line) for line in (tmp_path / f"log{verify_port}.jsonl").read_text().splitlines()]
    assert [e["method"] for e in log].count("IsabelleContext") == 1  # warm: the header opened once
    applied = [e["text"] for e in log if e["text"].startswith("<apply to top level state>")]
    assert len(applied) == 4 and all(
        text.split("<apply to top level state>")[1].strip() == "default" for text in applied
    )
    deleted = [e["text"] for e in log if e["text"].startswith("<delete>")]
    assert [text.split()[-1] for text in deleted] == [text.split()[-1] for text in applied]  # only default stays


async def test_a_verify_port_that_is_also_a_search_port_is_refused(tmp_path):
    with pytest.raises(ValueError, match="also a search port"):
        make_env(9000, tmp_path, verify_port=9000)


async def test_a_verifier_that_dies_fails_the_check_and_starts_fresh(pisa, tmp_path):
    verify_port = pisa("--hang-on", "apply (rule impI)")
    env = make_env(pisa(), tmp_path, verify_port=verify_port)
    env = PisaIsabelle(dataclasses.replace(env.config, start_timeout=1.0))
    try:
        verdict = await env.verify(TWO, ["apply (rule impI)", "done"])
        assert not verdict.accepted and "did not complete" in (verdict.reason or "")
        assert (await env.verify(TWO, ["apply simp", "done"])).accepted
    finally:
        await env.close()
    log = [json.loads(line) for line in (tmp_path / f"log{verify_port}.jsonl").read_text().splitlines()]
    assert [e["method"] for e in log].count("IsabelleContext") == 2  # nothing reused after the failure


def _log(tmp_path, port: int) -> list[tuple[str, str]]:
    lines = (tmp_path / f"log{port}.jsonl").read_text().splitlines()
    return [(e["method"], e["text"]) for e in map(json.loads, lines)]


async def test_a_new_context_ends_the_isabelle_of_the_old_one(pisa, tmp_path):
    """PISA's `IsabelleContext` starts a new Isabelle and forgets the old: we `exit` it first, and at close."""
    port = pisa("--hang-on", "apply (rule impI)")
    env = make_env(port, tmp_path)
    try:
        root = await env.start(TWO)
        assert await env.run_tactic(root, "apply (rule impI)", 0.5) == TimedOut(0.5)
        assert isinstance(await env.run_tactic(root, "apply simp", 5), Progress)  # a new session
    finally:
        await env.close()
    calls = _log(tmp_path, port)
    contexts = [i for i, (method, _) in enumerate(calls) if method == "IsabelleContext"]
    exits = [i for i, call in enumerate(calls) if call == ("IsabelleCommand", "exit")]
    assert len(contexts) == 2 and len(exits) == 2
    assert contexts[0] < exits[0] < contexts[1] < exits[1] == len(calls) - 1  # old one ended; last at close


async def test_pisa_own_step_timeout_replaces_the_session(pisa, tmp_path):
    """PISA answers "Futures timed out" but the step runs on in Isabelle: a timeout, and a new session."""
    port = pisa("--hang-on", "apply (rule impI)", "--step-timeout", "0.3")
    env = make_env(port, tmp_path)
    try:
        root = await env.start(TWO)
        step = await env.run_tactic(root, "apply simp", 5)
        with metered() as usage:
            assert await env.run_tactic(root, "apply (rule impI)", 5) == TimedOut(5)
        assert usage.restarts == 1
        assert isinstance(step, Progress)
        assert isinstance(await env.run_tactic(step.state, "done", 5), Proved)  # replayed in the new one
    finally:
        await env.close()
    assert ("IsabelleCommand", "exit") in _log(tmp_path, port)
