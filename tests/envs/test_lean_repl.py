"""The Lean REPL client, through real pipes against a fake REPL replaying real transcripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envs.lean_repl import (
    CommandReply,
    LeanRepl,
    LeanReplConfig,
    ProtocolError,
    TacticReply,
    encode_request,
    parse_axioms,
    parse_reply,
    render_proof_body,
    statement_with_sorry,
    tactic_outcome,
)
from envs.types import EnvError, EnvSetupError, Failed, Progress, Proved, Theorem, TheoremStartError, TimedOut

AND = Theorem(
    "complex_and", "theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r :=", header="import Lean\n"
)
AND_PROOF = ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"]


def records(transcripts: Path) -> list[dict]:
    return [json.loads(line) for line in transcripts.read_text().splitlines()]


def test_every_recorded_response_parses_to_a_typed_value(transcripts):
    kinds = set()
    for rec in records(transcripts):
        reply = parse_reply(rec["response"])
        kinds.add(type(reply).__name__)
        if "tactic" in rec["request"]:
            assert isinstance(reply, (TacticReply, ProtocolError)), rec["name"]
            outcome = tactic_outcome(reply)
            assert isinstance(outcome, (TacticReply, Failed, Proved)), rec["name"]
    assert kinds == {"CommandReply", "TacticReply", "ProtocolError"}


def test_tactic_outcomes_follow_proof_status(transcripts):
    by_name = {r["name"]: r for r in records(transcripts)}

    def outcome(name):
        return tactic_outcome(parse_reply(by_name[name]["response"]))

    assert isinstance(outcome("proof_branching/4"), Proved)
    assert isinstance(outcome("proof_branching/1"), TacticReply)
    # an error message with a new proofState is a failure, not progress
    assert isinstance(outcome("invalid_tactic/1"), Failed)
    assert "my_fake_premise" in outcome("invalid_tactic/1").message
    # no goals but metavariables / sorry / kernel errors are not proofs
    for name in ("app_type_mismatch/4", "tactic_mode_sorry/1", "app_type_mismatch2/4", "self_proof_rw/2"):
        assert isinstance(outcome(name), Failed), name
    assert outcome("unknown_tactic/1") == Failed("Lean error:\n<input>:1:1: unknown tactic")


def test_framing_is_one_line_then_a_blank_line():
    data = encode_request({"cmd": "theorem foo : 1 = 1 := by\nrfl"})
    assert data.endswith(b"\n\n") and data.count(b"\n") == 2
    assert json.loads(data)["cmd"] == "theorem foo : 1 = 1 := by\nrfl"


def test_statement_and_proof_rendering():
    assert statement_with_sorry("theorem t : 1 = 1 :=") == "theorem t : 1 = 1 := by sorry"
    assert statement_with_sorry("theorem t : 1 = 1 := by") == "theorem t : 1 = 1 := by sorry"
    body = render_proof_body("theorem t : P :=", ["constructor", "· simp\n  ring"])
    assert body == "theorem t : P := by\n  constructor\n  · simp\n    ring\n"


def test_axiom_report_parsing():
    from envs.lean_repl import Message

    assert parse_axioms([Message("info", "'t' depends on axioms: [propext, Classical.choice, Quot.sound]")]) == (
        "propext",
        "Classical.choice",
        "Quot.sound",
    )
    assert parse_axioms([Message("info", "'t' does not depend on any axioms")]) == ()
    assert parse_axioms([Message("info", "something else")]) is None


@pytest.fixture
async def make_repl(fake_repl_cmd):
    """Build `LeanRepl`s over the fake REPL (extra fake flags, config fields); all closed afterwards."""
    made: list[LeanRepl] = []

    def make(*extra: str, **config) -> LeanRepl:
        env = LeanRepl(LeanReplConfig(cmd=fake_repl_cmd(*extra), **config))
        made.append(env)
        return env

    yield make
    for env in made:
        await env.close()


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_proves_through_real_pipes(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    state = await env.start(AND)
    assert state.goals == ("p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r",)
    results = []
    for tactic in AND_PROOF:
        result = await env.run_tactic(state, tactic, 5)
        results.append(result)
        if isinstance(result, Progress):
            state = result.state
    assert [type(r).__name__ for r in results] == ["Progress", "Progress", "Progress", "Proved"]
    requests = [entry["request"] for entry in log_lines(log)]
    assert requests[0] == {"cmd": "import Lean\n"}
    assert requests[2] == {"cmd": AND.statement + " by sorry", "env": 0}
    assert requests[3] == {"tactic": "apply And.intro", "proofState": 0}


async def test_errors_and_untrusted_tactics_are_failures(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    state = await env.start(AND)
    failed = await env.run_tactic(state, "exact nonsense", 5)
    assert isinstance(failed, Failed) and "no recorded answer" in failed.message
    for bad in ("sorry", "admit", "exact sorry", "theorem x : False := sorry", "#exit", "native_decide"):
        result = await env.run_tactic(state, bad, 5)
        assert isinstance(result, Failed) and result.message.startswith("rejected:"), bad
    sent = [e["request"].get("tactic") for e in log_lines(log)]
    assert "sorry" not in sent and "#exit" not in sent


async def test_header_is_elaborated_once_per_process_and_reused(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    for _ in range(3):
        await env.start(AND)
    header_cmds = [e for e in log_lines(log) if e["request"].get("cmd") == "import Lean\n"]
    assert len(header_cmds) == 1 and env.header_elaborations == 1


async def test_timeout_restarts_unpickles_the_header_and_replays(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), "--hang-on", "hang")
    root = await env.start(AND)
    step1 = await env.run_tactic(root, "apply And.intro", 5)
    assert isinstance(step1, Progress)
    timed = await env.run_tactic(step1.state, "hang", 0.5)
    assert timed == TimedOut(0.5)
    assert env.restarts == 1
    # a state from before the restart still works: its path is replayed
    step2 = await env.run_tactic(step1.state, "exact h1.left", 5)
    assert isinstance(step2, Progress)
    assert step2.state.goals == ("case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r",)
    entries = log_lines(log)
    pids = sorted({e["pid"] for e in entries})
    assert len(pids) == 2
    second = [e["request"] for e in entries if e["pid"] != entries[0]["pid"]]
    assert "unpickleEnvFrom" in second[0], second[0]
    assert not any(r.get("cmd") == "import Lean\n" for r in second)
    assert {"tactic": "apply And.intro", "proofState": 0} in second
    assert env.header_elaborations == 1


async def test_crash_is_recovered_by_restart(make_repl):
    env = make_repl("--exit-on", "crash")
    root = await env.start(AND)
    result = await env.run_tactic(root, "crash", 5)
    assert isinstance(result, Failed) and "crashed" in result.message
    assert env.restarts == 2
    after = await env.run_tactic(root, "apply And.intro", 5)
    assert isinstance(after, Progress)


async def test_a_process_killed_between_calls_is_restarted_and_states_replayed(make_repl):
    import os
    import signal

    env = make_repl()
    root = await env.start(AND)
    step = await env.run_tactic(root, "apply And.intro", 5)
    os.killpg(env._slots[0].process.proc.pid, signal.SIGKILL)
    await env._slots[0].process.proc.wait()
    after = await env.run_tactic(step.state, "exact h1.left", 5)
    assert isinstance(after, Progress) and after.state.goals[0].endswith("⊢ r")
    assert env.restarts == 1


async def test_memory_cap_restarts_the_process(make_repl):
    env = make_repl("--bloat-on", "exact h1.left", memory_limit_mb=150)
    root = await env.start(AND)
    s1 = await env.run_tactic(root, "apply And.intro", 5)
    assert env.restarts == 0
    s2 = await env.run_tactic(s1.state, "exact h1.left", 5)
    assert isinstance(s2, Progress) and env.restarts == 1
    s3 = await env.run_tactic(s2.state, "apply h2", 5)  # replayed in the new process
    assert isinstance(s3, Progress) and env.restarts == 2  # the replay bloated it again


async def test_restarts_are_bounded(make_repl):
    env = make_repl("--hang-on", "hang", max_restarts=1)
    root = await env.start(AND)
    assert isinstance(await env.run_tactic(root, "hang", 0.3), TimedOut)
    with pytest.raises(EnvError, match="restarted more than 1"):
        await env.run_tactic(root, "hang", 0.3)


async def test_restarts_between_successes_are_not_a_crash_loop(make_repl):
    env = make_repl("--hang-on", "hang", max_restarts=1)
    root = await env.start(AND)
    for _ in range(3):
        assert isinstance(await env.run_tactic(root, "hang", 0.3), TimedOut)
        assert isinstance(await env.run_tactic(root, "apply And.intro", 5), Progress)
    assert env.restarts == 3


async def test_pool_spreads_theorems_over_processes(make_repl, tmp_path):
    import asyncio

    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), processes=3)
    states = await asyncio.gather(*(env.start(AND) for _ in range(3)))
    results = await asyncio.gather(*(env.run_tactic(s, "apply And.intro", 5) for s in states))
    assert all(isinstance(r, Progress) for r in results)
    assert len({e["pid"] for e in log_lines(log)}) == 3


async def test_verify_accepts_a_real_proof_and_reports_axioms(make_repl):
    env = make_repl("--axioms", "complex_and=propext")
    verdict = await env.verify(AND, AND_PROOF)
    assert verdict.accepted and verdict.axioms == ("propext",)
    short = await env.verify(AND, AND_PROOF[:2])
    assert not short.accepted and "unsolved goals" in short.messages[0]


async def test_verify_rejects_nonstandard_axioms_and_sorry(make_repl):
    env = make_repl("--axioms", "complex_and=propext,sorryAx")
    verdict = await env.verify(AND, AND_PROOF)
    assert not verdict.accepted and "sorryAx" in verdict.reason
    assert not (await env.verify(AND, ["sorry"])).accepted


async def test_a_crashing_checker_accepts_nothing(make_repl):
    env = make_repl("--exit-on-cmd", "#print axioms")
    verdict = await env.verify(AND, AND_PROOF)
    assert not verdict.accepted and "crashed" in verdict.reason


async def test_verify_checks_in_a_fresh_process_as_a_command(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    await env.start(AND)
    await env.verify(AND, AND_PROOF)
    entries = log_lines(log)
    verify_pid = entries[-1]["pid"]
    assert verify_pid != entries[0]["pid"]
    cmds = [e["request"]["cmd"] for e in entries if e["pid"] == verify_pid]
    assert cmds[1].startswith(AND.statement + " by\n  apply And.intro")
    assert cmds[2] == "#print axioms complex_and"


async def test_a_statement_that_never_elaborates_is_a_start_error_not_a_hang(make_repl):
    env = make_repl("--hang-on-cmd", "complex_and", start_timeout=0.5)
    with pytest.raises(TheoremStartError, match="did not start it in time"):
        await env.start(AND)
    assert env.restarts == 2


async def test_statement_that_does_not_elaborate_is_a_start_error(make_repl):
    env = make_repl()
    with pytest.raises(TheoremStartError, match="does not elaborate"):
        await env.start(Theorem("nope", "theorem nope : Foo :="))


async def test_missing_or_failing_repl_command_says_what_to_install(make_repl):
    env = LeanRepl(LeanReplConfig(cmd=("definitely-not-a-lean-repl",)))
    with pytest.raises(EnvSetupError, match="prover setup lean"):
        await env.start(AND)
    env = make_repl("--fail-start")
    with pytest.raises(EnvSetupError, match="failing at start.*prover setup lean"):
        await env.start(AND)


def test_command_reply_errors_property():
    reply = parse_reply(
        {"env": 3, "messages": [{"severity": "error", "pos": {"line": 1, "column": 0}, "data": "unknown identifier"}]}
    )
    assert isinstance(reply, CommandReply) and reply.errors[0].data == "unknown identifier"


def test_file_declarations_follow_namespaces():
    from envs.lean_repl import file_declarations

    text = (
        "import Mathlib\nnamespace Foo.Bar\ntheorem a : True := trivial\nsection S\nlemma b : True := trivial\n"
        "end S\nend Foo.Bar\ntheorem c : True := trivial\nnamespace X\ntheorem _root_.d : True := trivial\n"
        "example : True := trivial\nend X\n"
    )
    assert file_declarations(text) == [("Foo.Bar.a", 3), ("Foo.Bar.b", 5), ("c", 8), ("d", 10)]
