"""The Lean REPL client, through real pipes against our fake REPL (its own model of Lean).

Conformance tests (marked) replay the real REPL's recorded transcripts from ../shared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from envs.lean_repl import (
    CommandReply,
    LeanRepl,
    LeanReplConfig,
    Message,
    ProtocolError,
    TacticReply,
    declared_name,
    encode_request,
    file_declarations,
    is_tactic_sequence,
    parse_axioms,
    parse_reply,
    render_proof_body,
    statement_with_sorry,
    tactic_outcome,
    tactic_text,
    with_heartbeat_limit,
)
from envs.types import (
    EnvError,
    EnvSetupError,
    Failed,
    Progress,
    ProofState,
    Proved,
    Suggestion,
    TacticResult,
    Theorem,
    TheoremStartError,
    TimedOut,
    metered,
)
from tests.conftest import FAKE_REPL, fake_repl_argv

MINIF2F_HEADER = "import Mathlib\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"
AND = Theorem(
    "toy_and_chain",
    "theorem toy_and_chain (p q r : Prop) (hp : p) (hq : q) (hqr : q → r) : p ∧ r :=",
    header="import Lean\n",
)
AND_GOAL = "p q r : Prop\nhp : p\nhq : q\nhqr : q → r\n⊢ p ∧ r"
AND_PROOF = ["constructor", "exact hp", "apply hqr", "exact hq"]
THREE = Theorem(
    "toy_three_steps",
    "theorem toy_three_steps (a b : ℕ) (h₀ : a = 2) (h₁ : b = 3) :\n  a + b = 5 :=",
    header=MINIF2F_HEADER,
)
RUNAWAY = Theorem("toy_runaway", "theorem toy_runaway (x : ℝ) (h₀ : 0 < x) : x / (x + 1) < 1 :=", header=MINIF2F_HEADER)
RUNAWAY_TACTIC = "nlinarith [sq_nonneg x]"


def talk(requests: list[dict], *extra: str) -> list[dict]:
    """One raw session with the fake REPL: its answers, in order."""
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n\n" for r in requests)
    done = subprocess.run(fake_repl_argv(*extra), input=data, capture_output=True, text=True, timeout=60)
    return [json.loads(chunk) for chunk in done.stdout.split("\n\n") if chunk.strip()]


# --------------------------------------------------------------------------- conformance (../shared)


def records(transcripts: Path) -> list[dict]:
    return [json.loads(line) for line in transcripts.read_text().splitlines()]


@pytest.mark.conformance
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


@pytest.mark.conformance
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


def _shapes(pairs) -> dict[str, set[str]]:
    """The keys printed per kind of answer, and inside messages and sorries."""
    keys: dict[str, set[str]] = {k: set() for k in ("command", "tactic", "error", "message", "sorry")}
    for request, answer in pairs:
        kind = "error" if set(answer) == {"message"} else ("tactic" if "tactic" in request else "command")
        keys[kind] |= set(answer)
        for m in answer.get("messages", []):
            keys["message"] |= set(m)
        for s in answer.get("sorries", []):
            keys["sorry"] |= set(s)
    return keys


@pytest.mark.conformance
def test_the_fake_answers_in_the_recorded_shapes(transcripts):
    """Every key our fake prints (answers, messages, sorries) is one the real REPL printed."""
    recorded = _shapes(
        (r["request"], r["response"]) for r in records(transcripts) if {"cmd", "tactic"} & set(r["request"])
    )
    requests = [
        {"cmd": AND.header},
        {"cmd": statement_with_sorry(AND.statement), "env": 0},
        {"tactic": "constructor", "proofState": 0},
        {"tactic": "exact nonsense", "proofState": 1},
        {"tactic": "sorry", "proofState": 1},
        {"tactic": "exat 42", "proofState": 0},
        {"tactic": "exact hp", "proofState": 99},
        {"cmd": "theorem x : True := by\n  constructor\n  exact hp", "env": 0},
        {"cmd": "#print axioms toy_and_chain", "env": 1},
    ]
    ours = _shapes(zip(requests, talk(requests), strict=True))
    for kind, keys in ours.items():
        assert keys, kind
        assert keys <= recorded[kind], (kind, keys - recorded[kind])


# --------------------------------------------------------------------------- wire format and rendering


def test_framing_is_one_line_then_a_blank_line():
    data = encode_request({"cmd": "theorem foo : 1 = 1 := by\nrfl"})
    assert data.endswith(b"\n\n") and data.count(b"\n") == 2
    assert json.loads(data)["cmd"] == "theorem foo : 1 = 1 := by\nrfl"


def test_parse_reply_types_each_answer():
    reply = parse_reply(
        {"env": 3, "messages": [{"severity": "error", "pos": {"line": 1, "column": 0}, "data": "unknown identifier"}]}
    )
    assert isinstance(reply, CommandReply) and reply.errors[0].data == "unknown identifier"
    tactic = parse_reply({"proofState": 2, "goals": [], "proofStatus": "Completed"})
    assert isinstance(tactic, TacticReply) and tactic_outcome(tactic) == Proved("Completed")
    sorry = parse_reply({"proofState": 2, "goals": [], "proofStatus": "Incomplete: contains sorry"})
    assert isinstance(tactic_outcome(sorry), Failed)
    assert parse_reply({"message": "Unknown proof state."}) == ProtocolError("Unknown proof state.")
    with pytest.raises(EnvError):
        parse_reply({"what": 1})


def test_statement_and_proof_rendering():
    assert statement_with_sorry("theorem t : 1 = 1 :=") == "theorem t : 1 = 1 := by sorry"
    assert statement_with_sorry("theorem t : 1 = 1 := by") == "theorem t : 1 = 1 := by sorry"
    body = render_proof_body("theorem t : P :=", ["constructor", "simp [foo,\n  bar]"])
    assert body == "theorem t : P := by\n  constructor\n  (simp [foo,\n     bar])\n"
    assert (
        with_heartbeat_limit("theorem t : P := by sorry", 50)
        == "set_option maxHeartbeats 50 in\ntheorem t : P := by sorry"
    )
    assert with_heartbeat_limit("x", None) == "x"


def test_multi_tactic_candidates_are_grouped_into_one_tactic():
    assert not is_tactic_sequence("norm_num")
    assert not is_tactic_sequence("constructor <;> simp")
    assert not is_tactic_sequence("simp [foo] -- a; b")
    assert is_tactic_sequence("norm_num; linarith")
    assert is_tactic_sequence("norm_num\nlinarith")
    assert tactic_text("norm_num") == "norm_num"
    assert tactic_text("norm_num; linarith") == "(norm_num; linarith)"
    assert tactic_text("  constructor\n  · exact a\n  · exact b") == "(constructor\n · exact a\n · exact b)"
    assert tactic_text("norm_num\nlinarith -- done") == "(norm_num\n linarith -- done\n)"


def test_axiom_report_parsing_matches_the_requested_name():
    report = [Message("info", "'t' depends on axioms: [propext, Classical.choice, Quot.sound]")]
    assert parse_axioms(report, "t") == ("propext", "Classical.choice", "Quot.sound")
    assert parse_axioms([Message("info", "'t' does not depend on any axioms")], "t") == ()
    assert parse_axioms([Message("info", "something else")], "t") is None
    primed = [Message("info", "'foo'' depends on axioms: [propext]")]
    assert parse_axioms(primed, "foo'") == ("propext",)
    assert parse_axioms(primed, "foo") is None  # `'foo'` is not a report about `foo`
    two = [Message("info", "'a' depends on axioms: [sorryAx]"), Message("info", "'b' depends on axioms: [propext]")]
    assert parse_axioms(two, "b") == ("propext",)


def test_declared_names_come_from_the_shared_reader():
    assert declared_name("theorem foo' (x : ℕ) : x = x :=") == ("theorem foo' (x : ℕ) : x = x :=", "foo'")
    assert declared_name("example : 1 = 1 :=") == (
        "theorem prover_checked_example : 1 = 1 :=",
        "prover_checked_example",
    )
    with pytest.raises(TheoremStartError):
        declared_name("1 = 1")
    source = Path(__file__).resolve().parents[2] / "envs" / "lean_repl.py"
    assert "_DECL_RE" not in source.read_text()


def test_file_declarations_follow_namespaces():
    text = (
        "import Mathlib\nnamespace Foo.Bar\ntheorem a : True := trivial\nsection S\nlemma b : True := trivial\n"
        "end S\nend Foo.Bar\ntheorem c : True := trivial\nnamespace X\ntheorem _root_.d : True := trivial\n"
        "example : True := trivial\nend X\n"
    )
    assert file_declarations(text) == [("Foo.Bar.a", 3), ("Foo.Bar.b", 5), ("c", 8), ("d", 10)]


# --------------------------------------------------------------------------- the fake is faithful


def test_the_fake_parses_one_tactic_per_request():
    answers = talk(
        [
            {"cmd": statement_with_sorry(THREE.statement)},
            {"tactic": "subst h₀; subst h₁", "proofState": 0},
            {"tactic": "subst h₀\nsubst h₁", "proofState": 0},
            {"tactic": "(subst h₀; subst h₁)", "proofState": 0},
        ]
    )
    assert answers[1] == {"message": "Lean error:\n<input>:1:8: expected end of input"}
    assert answers[2] == {"message": "Lean error:\n<input>:2:0: expected end of input"}
    assert answers[3]["goals"] == ["⊢ 2 + 3 = 5"]


def test_the_fake_honours_heartbeats_in_tactic_mode():
    limited = with_heartbeat_limit(statement_with_sorry(RUNAWAY.statement), 5000)
    answers = talk(
        [
            {"cmd": MINIF2F_HEADER},
            {"cmd": limited, "env": 0},
            {"tactic": RUNAWAY_TACTIC, "proofState": 0},
            {"tactic": f"set_option maxHeartbeats 10 in {RUNAWAY_TACTIC}", "proofState": 0},
        ]
    )
    assert answers[2]["message"].startswith(
        "Lean error:\n(deterministic) timeout at `whnf`, maximum number of heartbeats (5000)"
    )
    assert "(5000)" in answers[3]["message"]  # a tactic-level set_option does not change the running limit


def test_the_fake_dies_on_a_bad_pickle(tmp_path):
    bad = tmp_path / "bad.olean"
    bad.write_bytes(b"\x00garbage")
    for path in (bad, tmp_path / "missing.olean"):
        done = subprocess.run(
            fake_repl_argv(), input=json.dumps({"unpickleEnvFrom": str(path)}) + "\n\n", capture_output=True, text=True
        )
        assert done.returncode != 0 and done.stdout == "" and "uncaught exception" in done.stderr


# --------------------------------------------------------------------------- the client


@pytest.fixture
async def make_repl():
    """Build `LeanRepl`s over the fake REPL (extra fake flags, config fields); all closed afterwards."""
    made: list[LeanRepl] = []

    def make(*extra: str, **config) -> LeanRepl:
        env = LeanRepl(LeanReplConfig(cmd=fake_repl_argv(*extra), **config))
        made.append(env)
        return env

    yield make
    for env in made:
        await env.close()


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def prove(env: LeanRepl, theorem: Theorem, tactics: list[str]) -> list[TacticResult]:
    state = await env.start(theorem)
    results: list[TacticResult] = []
    for tactic in tactics:
        result = await env.run_tactic(state, tactic, 5)
        results.append(result)
        if isinstance(result, Progress):
            state = result.state
    return results


async def test_proves_through_real_pipes(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    state = await env.start(AND)
    assert state.goals == (AND_GOAL,)
    results = []
    for tactic in AND_PROOF:
        result = await env.run_tactic(state, tactic, 5)
        results.append(result)
        if isinstance(result, Progress):
            state = result.state
    assert [type(r).__name__ for r in results] == ["Progress", "Progress", "Progress", "Proved"]
    requests = [entry["request"] for entry in log_lines(log)]
    assert requests[0] == {"cmd": "import Lean\n"}
    assert requests[2] == {"cmd": f"set_option maxHeartbeats 100000 in\n{AND.statement} by sorry", "env": 0}
    assert requests[3] == {"tactic": "constructor", "proofState": 0}


async def test_the_heartbeat_limit_follows_the_tactic_timeout(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    root = await env.start(AND)  # before any tactic: the CLI's default timeout, 10 s
    await env.run_tactic(root, "constructor", 2.5)
    await env.start(THREE)  # then the search's own timeout
    fixed = make_repl("--log", str(log), tactic_timeout=1, heartbeats_per_second=1000)
    await fixed.start(AND)
    starts = [e["request"]["cmd"] for e in log_lines(log) if "by sorry" in e["request"].get("cmd", "")]
    assert [s.split("\n")[0] for s in starts] == [
        "set_option maxHeartbeats 100000 in",
        "set_option maxHeartbeats 25000 in",
        "set_option maxHeartbeats 1000 in",
    ]


async def test_errors_and_untrusted_tactics_are_failures(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    state = await env.start(AND)
    failed = await env.run_tactic(state, "exact nonsense", 5)
    assert isinstance(failed, Failed) and "Unknown identifier `nonsense`" in failed.message
    parse_error = await env.run_tactic(state, "exat 42", 5)
    assert parse_error == Failed("Lean error:\n<input>:1:1: unknown tactic")
    for bad in ("sorry", "admit", "exact sorry", "theorem x : False := sorry", "#exit", "native_decide"):
        result = await env.run_tactic(state, bad, 5)
        assert isinstance(result, Failed) and result.message.startswith("rejected:"), bad
    sent = [e["request"].get("tactic") for e in log_lines(log)]
    assert "sorry" not in sent and "#exit" not in sent


async def test_a_three_tactic_candidate_proves_a_theorem_needing_all_three(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), "--axioms", "toy_three_steps=propext")
    root = await env.start(THREE)
    for alone in ("subst h₀", "subst h₁", "norm_num"):
        assert not isinstance(await env.run_tactic(root, alone, 5), Proved), alone
    candidate = "subst h₀; subst h₁; norm_num"
    assert isinstance(await env.run_tactic(root, candidate, 5), Proved)
    two_lines = await env.run_tactic(root, "subst h₀\nsubst h₁", 5)
    assert isinstance(two_lines, Progress) and two_lines.state.goals == ("⊢ 2 + 3 = 5",)
    sent = [e["request"].get("tactic") for e in log_lines(log)]
    assert "(subst h₀; subst h₁; norm_num)" in sent and "(subst h₀\n subst h₁)" in sent
    # the command-mode re-check sees the same grouped tactics and accepts them
    assert "  (subst h₀; subst h₁; norm_num)\n" in env.render_proof(THREE, [candidate])
    verdict = await env.verify(THREE, [candidate])
    assert verdict.accepted, verdict
    split = await env.verify(THREE, ["subst h₀\nsubst h₁", "norm_num"])
    assert split.accepted, split


async def test_a_runaway_tactic_under_a_minif2f_header_is_stopped_by_lean(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), tactic_timeout=5)
    root = await env.start(RUNAWAY)
    result = await env.run_tactic(root, RUNAWAY_TACTIC, 5)
    assert result == TimedOut(5)
    assert env.restarts == 0
    after = await env.run_tactic(root, "rw [div_lt_one (by linarith)]", 5)
    assert isinstance(after, Progress) and after.state.handle.ref != root.handle.ref
    assert len({e["pid"] for e in log_lines(log)}) == 1 and env.header_elaborations == 1


async def test_under_lean_default_tactic_limit_a_runaway_is_still_stopped_by_lean(make_repl):
    """If tactic mode ignores the options (one reading of recent Lean), Lean's default limit stops it."""
    env = make_repl("--tactic-heartbeats", "default", tactic_timeout=5)
    root = await env.start(RUNAWAY)
    assert await env.run_tactic(root, RUNAWAY_TACTIC, 5) == TimedOut(5)
    assert env.restarts == 0


async def test_a_statement_too_heavy_for_the_limit_is_started_without_it(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), "--statement-cost", "500", max_heartbeats=100)
    state = await env.start(AND)
    assert state.goals == (AND_GOAL,)
    starts = [e["request"]["cmd"] for e in log_lines(log) if "by sorry" in e["request"].get("cmd", "")]
    assert starts == [f"set_option maxHeartbeats 100 in\n{AND.statement} by sorry", f"{AND.statement} by sorry"]


async def test_without_a_heartbeat_limit_only_the_kill_stops_a_runaway(make_repl):
    env = make_repl(max_heartbeats=0)  # as the miniF2F header alone would have it
    root = await env.start(RUNAWAY)
    assert await env.run_tactic(root, RUNAWAY_TACTIC, 0.5) == TimedOut(0.5)
    assert env.restarts == 1


async def test_header_is_elaborated_once_per_process_and_reused(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    for _ in range(3):
        await env.start(AND)
    header_cmds = [e for e in log_lines(log) if e["request"].get("cmd") == "import Lean\n"]
    assert len(header_cmds) == 1 and env.header_elaborations == 1


async def test_timeout_restarts_unpickles_the_header_and_replays(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), "--hang-on", "exact hang")
    root = await env.start(AND)
    step1 = await env.run_tactic(root, "constructor", 5)
    assert isinstance(step1, Progress)
    timed = await env.run_tactic(step1.state, "exact hang", 0.5)
    assert timed == TimedOut(0.5)
    assert env.restarts == 1
    # a state from before the restart still works: its path is replayed
    with metered() as usage:
        step2 = await env.run_tactic(step1.state, "exact hp", 5)
    assert isinstance(step2, Progress) and usage.replays == 1
    assert step2.state.goals == ("case right\np q r : Prop\nhp : p\nhq : q\nhqr : q → r\n⊢ r",)
    entries = log_lines(log)
    second = [e["request"] for e in entries if e["pid"] != entries[0]["pid"]]
    assert "unpickleEnvFrom" in second[0], second[0]
    assert not any(r.get("cmd") == "import Lean\n" for r in second)
    assert {"tactic": "constructor", "proofState": 0} in second
    assert env.header_elaborations == 1


async def test_a_bad_pickle_costs_one_header_elaboration_not_a_crash_loop(make_repl, tmp_path):
    env = make_repl("--hang-on", "exact hang", max_restarts_in_a_row=3)
    root = await env.start(AND)
    [pickle] = env._pickles.values()
    pickle.write_bytes(b"\x00 not a pickle")  # the real REPL dies unpickling this
    assert await env.run_tactic(root, "exact hang", 0.3) == TimedOut(0.3)
    after = await env.run_tactic(root, "constructor", 5)
    assert isinstance(after, Progress)
    assert env.header_elaborations == 2  # the bad pickle cost exactly one elaboration
    assert env.restarts == 2  # the timeout, and the death while unpickling
    # the fresh pickle works again: a later restart costs no elaboration
    assert await env.run_tactic(root, "exact hang", 0.3) == TimedOut(0.3)
    assert isinstance(await env.run_tactic(after.state, "exact hp", 5), Progress)
    assert env.header_elaborations == 2 and env.restarts == 3


async def test_crash_is_recovered_by_restart(make_repl):
    env = make_repl("--exit-on", "crash")
    root = await env.start(AND)
    result = await env.run_tactic(root, "crash", 5)
    assert isinstance(result, Failed) and "crashed" in result.message
    assert env.restarts == 2
    after = await env.run_tactic(root, "constructor", 5)
    assert isinstance(after, Progress)


def _kill_slot(env: LeanRepl, index: int = 0) -> None:
    process = env._slots[index].process
    assert process is not None and process.proc is not None
    os.killpg(process.proc.pid, signal.SIGKILL)


async def test_a_process_killed_between_calls_is_restarted_and_states_replayed(make_repl):
    env = make_repl()
    root = await env.start(AND)
    step = await env.run_tactic(root, "constructor", 5)
    _kill_slot(env)
    await env._slots[0].process.proc.wait()
    after = await env.run_tactic(step.state, "exact hp", 5)
    assert isinstance(after, Progress) and after.state.goals[0].endswith("⊢ r")
    assert env.restarts == 1


async def test_a_death_between_two_requests_of_one_step_never_uses_dead_ids(make_repl, tmp_path):
    """Issue 11.10: the process dies right after answering the replayed statement of a step."""
    marker = tmp_path / "armed"
    env = make_repl("--marker", str(marker), "--die-after", "toy_and_chain")
    root = await env.start(AND)
    step = await env.run_tactic(root, "constructor", 5)
    _kill_slot(env)
    await env._slots[0].process.proc.wait()
    marker.touch()  # the next process dies after answering the statement, before the tactic
    after = await env.run_tactic(step.state, "exact hp", 5)
    assert isinstance(after, Progress) and after.state.goals[0].endswith("⊢ r"), after
    assert not marker.exists() and env.restarts == 2


async def test_a_hang_while_replaying_counts_against_the_tactic_timeout(make_repl, tmp_path):
    """Issue 11.11: replaying a state hangs; the caller's timeout still holds."""
    marker = tmp_path / "armed"
    env = make_repl("--marker", str(marker), "--hang-before", "toy_and_chain")
    root = await env.start(AND)
    step = await env.run_tactic(root, "constructor", 5)
    _kill_slot(env)
    await env._slots[0].process.proc.wait()
    marker.touch()
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await env.run_tactic(step.state, "exact hp", 1)
    assert isinstance(result, TimedOut) and loop.time() - began < 1 + 5 + 2  # timeout + the pool's grace


async def test_a_state_of_one_process_is_stepped_on_another_by_replaying(make_repl, tmp_path):
    """The pool contract: `_step` may get a handle made on another slot; it replays, never trusts the id."""
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), processes=2)
    root = await env.start(AND)
    step = await env.run_tactic(root, "constructor", 5)
    assert step.state.handle.slot == 0
    await env.start(THREE)  # slot 1 is alive and has used the same ids for another theorem
    other = env._slots[1]
    with metered() as usage:
        async with other.lock:
            result = await env._step(other, step.state.handle, "exact hp", 5)
    assert isinstance(result, Progress) and result.state.goals[0].endswith("⊢ r")
    assert result.state.handle.slot == 1 and usage.replays == 1
    pids = {e["pid"] for e in log_lines(log)}
    assert len(pids) == 2


async def test_memory_cap_restarts_the_process(make_repl):
    env = make_repl("--bloat-on", "exact hp", memory_limit_mb=150)
    root = await env.start(AND)
    s1 = await env.run_tactic(root, "constructor", 5)
    assert env.restarts == 0
    await env.run_tactic(s1.state, "exact hp", 5)
    assert env.restarts >= 1
    assert env._slots[0].process is None or env._slots[0].process.rss_bytes() < 150 << 20


async def test_a_pool_over_many_theorems_stays_under_its_cap_by_recycling(make_repl):
    cap = 100
    env = make_repl("--state-kb", "4096", "--import-mb", "20", memory_limit_mb=cap)
    peak = 0
    theorem = Theorem(AND.name, AND.statement, MINIF2F_HEADER)
    for _ in range(8):
        results = await prove(env, theorem, AND_PROOF)
        assert isinstance(results[-1], Proved)
        peak = max(peak, env._slots[0].process.rss_bytes())
    assert peak < cap << 20
    assert env.recycles >= 2 and env.restarts == 0
    assert env._slots[0].baseline_rss > 20 << 20  # the import counts in the baseline


async def test_a_cap_below_the_post_import_baseline_is_refused(make_repl):
    env = make_repl("--import-mb", "60", memory_limit_mb=40)
    with pytest.raises(EnvSetupError, match="below the Lean REPL's post-import baseline"):
        await env.start(THREE)


async def test_the_default_cap_is_finite():
    env = LeanRepl(LeanReplConfig(cmd=fake_repl_argv(), processes=3))
    assert 512 <= env.memory_cap_mb() < 1 << 30


async def test_restarts_are_bounded(make_repl):
    env = make_repl("--hang-on", "exact hang", max_restarts_in_a_row=1)
    root = await env.start(AND)
    assert isinstance(await env.run_tactic(root, "exact hang", 0.3), TimedOut)
    with pytest.raises(EnvError, match="restarted more than 1"):
        await env.run_tactic(root, "exact hang", 0.3)


async def test_restarts_between_successes_are_not_a_crash_loop(make_repl):
    env = make_repl("--hang-on", "exact hang", max_restarts_in_a_row=1)
    root = await env.start(AND)
    for _ in range(3):
        assert isinstance(await env.run_tactic(root, "exact hang", 0.3), TimedOut)
        assert isinstance(await env.run_tactic(root, "constructor", 5), Progress)
    assert env.restarts == 3


async def test_pool_spreads_theorems_over_processes(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), processes=3)
    states = await asyncio.gather(*(env.start(AND) for _ in range(3)))
    results = await asyncio.gather(*(env.run_tactic(s, "constructor", 5) for s in states))
    assert all(isinstance(r, Progress) for r in results)
    assert len({e["pid"] for e in log_lines(log)}) == 3


async def test_verify_accepts_a_real_proof_and_reports_axioms(make_repl):
    env = make_repl("--axioms", "toy_and_chain=propext")
    with metered() as usage:
        verdict = await env.verify(AND, AND_PROOF)
    assert verdict.accepted and verdict.axioms == ("propext",)
    assert usage.verify_s > 0
    short = await env.verify(AND, AND_PROOF[:2])
    assert not short.accepted and "unsolved goals" in short.messages[0]


async def test_verify_reads_the_axioms_the_proof_really_uses(make_repl):
    env = make_repl()
    linear = Theorem("toy_linear", "theorem toy_linear (x : ℝ) (h₀ : 3 * x + 2 = 11) : x = 3 :=", MINIF2F_HEADER)
    verdict = await env.verify(linear, ["linarith"])
    assert verdict.accepted and set(verdict.axioms) == {"propext", "Classical.choice", "Quot.sound"}
    assert (await env.verify(AND, AND_PROOF)).axioms == ()


async def test_verify_rejects_nonstandard_axioms_and_sorry(make_repl):
    env = make_repl("--axioms", "toy_and_chain=propext,sorryAx")
    verdict = await env.verify(AND, AND_PROOF)
    assert not verdict.accepted and "sorryAx" in verdict.reason
    assert not (await env.verify(AND, ["sorry"])).accepted


async def test_a_crashing_checker_accepts_nothing(make_repl):
    env = make_repl("--exit-on-cmd", "#print axioms")
    verdict = await env.verify(AND, AND_PROOF)
    assert not verdict.accepted and "crashed" in verdict.reason


async def test_verify_runs_in_a_warm_verifier_that_imports_the_header_once(make_repl, tmp_path):
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log))
    await env.start(AND)
    for _ in range(3):
        assert (await env.verify(AND, AND_PROOF)).accepted
    entries = log_lines(log)
    search_pid, verify_pid = entries[0]["pid"], entries[-1]["pid"]
    assert verify_pid != search_pid
    verifier = [e["request"] for e in entries if e["pid"] == verify_pid]
    assert [r.get("cmd") for r in verifier].count("import Lean\n") == 1
    checks = [r for r in verifier if r.get("cmd", "").startswith(AND.statement)]
    assert len(checks) == 3 and all(r["env"] == 0 for r in checks)  # each from the header env
    assert checks[0]["cmd"].startswith(AND.statement + " by\n  constructor")
    assert {"cmd": "#print axioms toy_and_chain", "env": 1} in verifier
    # and no search tactic ever runs there
    assert not any("tactic" in r for r in verifier)


async def test_a_statement_that_never_elaborates_is_a_start_error_not_a_hang(make_repl):
    env = make_repl("--hang-on-cmd", "toy_and_chain", start_timeout=0.5)
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


def test_the_fake_needs_nothing_outside_the_repository(tmp_path):
    text = FAKE_REPL.read_text()
    assert "transcripts" not in text and "/shared" not in text and "PROVER_SHARED" not in text
    done = subprocess.run(  # from an unrelated directory, with no shared data anywhere near
        fake_repl_argv(), input='{"cmd": "example : 2 + 2 = 4 := by norm_num"}\n\n', capture_output=True,
        text=True, cwd=tmp_path, env={**os.environ, "PROVER_SHARED": str(tmp_path / "none")},
    )  # fmt: skip
    assert json.loads(done.stdout) == {"env": 0}


async def test_a_check_cancelled_in_the_warm_verifier_does_not_poison_the_next(make_repl):
    """The answer a cancelled check leaves in flight must not be read as the next check's."""
    env = make_repl("--hang-on-cmd", "exact hp\n  skip", verify_timeout=5)
    assert (await env.verify(AND, AND_PROOF)).accepted
    stuck = asyncio.create_task(env.verify(AND, ["constructor", "exact hp", "skip"]))
    await asyncio.sleep(0.5)
    assert not stuck.done()
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    verdict = await env.verify(AND, AND_PROOF)
    assert verdict.accepted, verdict.reason


async def test_importing_the_header_on_another_process_is_not_charged_to_the_tactic(make_repl):
    """A candidate run on a process that has not imported Mathlib yet (or was restarted) imports it
    first, outside the tactic's deadline: a 1 s tactic must not be killed for a 2 s import."""
    env = make_repl("--import-seconds", "2", processes=2)
    env.grace = 0.5
    root = await env.start(THREE)
    with metered() as usage:
        results = await asyncio.gather(*(env.run_tactic(root, "subst h₀", 1) for _ in range(2)))
    assert all(isinstance(r, Progress) for r in results), results
    assert {r.state.handle.slot for r in results} == {0, 1}
    assert usage.restarts == 0 and env.restarts == 0


async def test_a_deadline_cut_short_never_lowers_the_heartbeat_limit(make_repl, tmp_path):
    """Near its time limit a search passes what is left (0.05 s) as the timeout: that must not become
    the heartbeat limit of the next theorems, nor of replays, which would then fail where the search
    succeeded (an `EnvError` that ends the search)."""
    log = tmp_path / "log.jsonl"
    env = make_repl("--log", str(log), processes=2)
    root = await env.start(AND)  # before any tactic: the CLI's default timeout, 10 s
    step = await env.run_tactic(root, "constructor", 2.5)
    assert isinstance(step, Progress)
    await env.run_tactic(step.state, "exact hp", 0.05)  # what was left of a search's time
    async with env._slots[root.handle.slot].lock:  # the other process replays AND's path
        again = await env.run_tactic(step.state, "exact hp", 5)
    assert isinstance(again, Progress) and again.state.handle.slot != root.handle.slot
    await env.start(THREE)
    starts = [(e["pid"], e["request"]["cmd"]) for e in log_lines(log) if "by sorry" in e["request"].get("cmd", "")]
    limits = [(cmd.split("\n")[1].split()[1], cmd.split("\n")[0]) for _, cmd in starts]
    assert limits == [
        ("toy_and_chain", "set_option maxHeartbeats 100000 in"),  # the start
        ("toy_and_chain", "set_option maxHeartbeats 100000 in"),  # its replay: the same limit
        ("toy_three_steps", "set_option maxHeartbeats 25000 in"),  # the search's timeout, not what was left
    ]


async def test_a_replay_that_answers_differently_fails_the_candidate_not_the_env(make_repl):
    """A state whose path no longer replays (here: a forged path) is a failed candidate, the env lives on."""
    env = make_repl()
    root = await env.start(AND)
    forged = dataclasses.replace(root.handle, generation=root.handle.generation + 7, path=("exact no_such_lemma",))
    result = await env.run_tactic(ProofState(root.goals, forged), "constructor", 5)
    assert isinstance(result, Failed) and "replaying step 1 of" in result.message
    assert env.restarts == 0
    assert isinstance(await env.run_tactic(root, "constructor", 5), Progress)


async def test_a_model_continuation_of_three_indented_lines_proves_after_cleaning(make_repl):
    """Models continue an indented proof: the lines keep their columns relative to each other."""
    from prover.generators.postprocess import clean

    env = make_repl()
    root = await env.start(THREE)
    (cleaned,) = clean([Suggestion("  subst h₀\n  subst h₁\n  norm_num\n", -1.0)], "lean4", 1)
    assert cleaned.tactic == "subst h₀\nsubst h₁\nnorm_num"
    assert isinstance(await env.run_tactic(root, cleaned.tactic, 5), Proved)
    assert (await env.verify(THREE, [cleaned.tactic])).accepted
