"""The Coq backend against a real coqidetop and coqc."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from envs.coq import (
    STANDARD_AXIOMS,
    CoqConfig,
    CoqIde,
    Reply,
    parse_assumptions,
    parse_locate,
    split_sentences,
    tactic_sentences,
)
from envs.process import ProtocolError
from envs.types import (
    CHECKED_FILE,
    Failed,
    Progress,
    Proved,
    TacticResult,
    Theorem,
    TheoremStartError,
    TimedOut,
    metered,
)
from tests.conftest import ROOT

HEADER = "Require Import Arith Lia.\n"
ADD = Theorem("add_zero", "Theorem add_zero : forall n : nat, n + 0 = n.", HEADER, "coq")
REFL = Theorem("refl", "Theorem refl : forall n : nat, n = n.", "", "coq")
SLOW = "do 3000000 idtac"  # about 2 s, and about 250 MB, on the test machine
pytestmark = pytest.mark.usefixtures("coq_available")


async def test_start_progress_failure_and_proof(coq):
    root = await coq.start(ADD)
    assert root.goals == ("============================\nforall n : nat, n + 0 = n",)
    intro = await coq.run_tactic(root, "intros n", 10)
    assert isinstance(intro, Progress) and intro.state.goals[0].startswith("n : nat")
    bad = await coq.run_tactic(intro.state, "exact foo", 10)
    assert isinstance(bad, Failed) and "foo" in bad.message
    assert isinstance(await coq.run_tactic(intro.state, "lia", 10), Proved)


async def test_branching_from_an_earlier_state_after_editing(coq):
    root = await coq.start(ADD)
    ind = await coq.run_tactic(root, "induction n", 10)
    assert isinstance(ind, Progress) and len(ind.state.goals) == 2
    # go back to the root and take another branch, then come back to the first one
    assert isinstance(await coq.run_tactic(root, "intros; lia", 10), Proved)
    again = await coq.run_tactic(ind.state, "simpl", 10)
    assert isinstance(again, Progress) and again.state.goals[0].endswith("0 = 0")


async def test_bullets_and_several_sentences_in_one_step(coq):
    root = await coq.start(Theorem("both", "Theorem both : True /\\ 1 = 1.", "", "coq"))
    split = await coq.run_tactic(root, "split", 10)
    assert isinstance(split, Progress)
    # `- exact I` is a bullet then a tactic: Coq parses one sentence per Add, so both must be sent
    first = await coq.run_tactic(split.state, "- exact I", 10)
    assert isinstance(first, Progress) and first.state.goals[0].startswith("(unfocused)")
    assert isinstance(await coq.run_tactic(first.state, "- reflexivity", 10), Proved)
    assert isinstance(await coq.run_tactic(split.state, "- exact foo", 10), Failed)


async def test_switching_theorems_replays_paths(coq):
    other = Theorem("other", "Theorem other : forall a b : nat, a + b = b + a.", HEADER, "coq")
    root = await coq.start(ADD)
    step = await coq.run_tactic(root, "intros n", 10)
    other_root = await coq.start(other)
    assert isinstance(await coq.run_tactic(other_root, "intros; lia", 10), Proved)
    assert isinstance(await coq.run_tactic(step.state, "lia", 10), Proved)


async def test_no_goals_but_qed_fails_is_not_proved(coq):
    th = Theorem("ex", "Theorem ex : exists n : nat, n = n.", "", "coq")
    root = await coq.start(th)
    step = await coq.run_tactic(root, "eexists", 10)
    assert isinstance(step, Progress) and step.state.goals == ("============================\n?n = ?n",)
    # `reflexivity` leaves no goal but an unresolved ?n: Qed refuses, so it is no proof
    result = await coq.run_tactic(step.state, "reflexivity", 10)
    assert isinstance(result, Failed) and "Qed failed" in result.message


async def test_untrusted_tactics_never_reach_coq(coq):
    root = await coq.start(ADD)
    for bad in (
        "admit",
        "Admitted",
        "intros. Qed",
        "auto. Axiom x : False",
        "Abort",
        "exact_no_check I",
        "(* unterminated",
        "Require Import Classical",
    ):
        result = await coq.run_tactic(root, bad, 10)
        assert isinstance(result, Failed) and result.message.startswith("rejected:"), bad


async def test_a_slow_tactic_is_stopped_by_coq_and_the_process_survives(coq):
    root = await coq.start(REFL)
    step = await coq.run_tactic(root, "intros n", 10)
    pid = coq._slots[0].process.proc.pid
    loop = "let rec f x := f x in f tt"  # a recursive Ltac loop
    for slow in ("do 100000000 idtac", loop, "repeat (pose proof I)"):
        started = time.monotonic()
        with metered() as usage:
            result = await coq.run_tactic(step.state, slow, 1)
        assert result == TimedOut(1) and time.monotonic() - started < 3, slow
        assert usage.restarts == 0 and coq.restarts == 0
    assert coq._slots[0].process.proc.pid == pid
    assert isinstance(await coq.run_tactic(step.state, "reflexivity", 10), Proved)


async def test_timeout_by_kill_restarts_and_replays():
    env = CoqIde(CoqConfig(interrupt="kill"))
    try:
        root = await env.start(REFL)
        step = await env.run_tactic(root, "intros n", 10)
        env.grace = 0.5
        slow = await env.run_tactic(step.state, "repeat (pose proof I)", 0.5)
        assert slow == TimedOut(0.5) and env.restarts == 1
        with metered() as usage:
            assert isinstance(await env.run_tactic(step.state, "reflexivity", 10), Proved)
        assert usage.replays == 1
    finally:
        await env.close()


async def test_a_killed_coqidetop_is_restarted_and_states_replayed(coq):
    root = await coq.start(ADD)
    step = await coq.run_tactic(root, "intros n", 10)
    coq._slots[0].process.proc.kill()
    await coq._slots[0].process.proc.wait()
    assert isinstance(await coq.run_tactic(step.state, "lia", 10), Proved)
    assert coq.restarts == 1


async def test_a_process_dying_between_two_requests_of_one_step(coq):
    """The crash race: no state id of the dead process is sent to its successor."""
    root = await coq.start(ADD)
    step = await coq.run_tactic(root, "intros n", 10)
    await coq.run_tactic(root, "intros", 10)  # step's state left the document: it will be replayed
    exchange, calls = coq._exchange, []

    async def dies_after_the_first_request(slot, requests):
        calls.append(requests)
        if len(calls) == 2:  # the second request of the step: the process is gone
            slot.process.proc.kill()
            await slot.process.proc.wait()
        return await exchange(slot, requests)

    coq._exchange = dies_after_the_first_request
    result = await coq.run_tactic(step.state, "lia", 10)
    assert isinstance(result, Proved) and coq.restarts == 1


async def test_a_hang_while_replaying_counts_against_the_tactic_timeout(coq):
    root = await coq.start(REFL)
    slow = await coq.run_tactic(root, "intros n; do 10000000 idtac", 60)  # well over 1 s, even on an idle machine
    assert isinstance(slow, Progress)
    coq._slots[0].process.proc.kill()  # the state must be replayed, and its step is slow
    await coq._slots[0].process.proc.wait()
    started = time.monotonic()
    result = await coq.run_tactic(slow.state, "reflexivity", 1)
    assert result == TimedOut(1) and time.monotonic() - started < 1 + coq.grace


async def test_memory_cap_kills_the_process_during_the_tactic():
    env = CoqIde(CoqConfig(memory_limit_mb=200))
    try:
        root = await env.start(REFL)
        result = await env.run_tactic(root, SLOW, 60)
        assert isinstance(result, Failed) and "memory" in result.message and "200 MiB" in result.message
        assert env.restarts == 1
        assert isinstance(await env.run_tactic(root, "reflexivity", 10), Proved)
    finally:
        await env.close()


async def test_candidates_of_one_state_run_on_all_processes():
    env = CoqIde(CoqConfig(processes=3))
    try:
        root = await env.start(REFL)
        step = await env.run_tactic(root, "intros n", 10)
        ended: list[float] = []

        async def timed(i: int) -> TacticResult:
            result = await env.run_tactic(step.state, f"{SLOW}; idtac {i}", 60)
            ended.append(time.monotonic())
            return result

        with metered() as usage:
            started = time.monotonic()
            results = await asyncio.gather(*(timed(i) for i in range(3)))
        assert all(isinstance(r, Progress) for r in results)
        assert sorted(r.state.handle.slot for r in results) == [0, 1, 2]
        assert usage.replays == 2  # `intros n` on each of the two other processes
        # each new state prefers the process that made it: no more replays
        with metered() as usage:
            for r in results:
                assert isinstance(await env.run_tactic(r.state, "reflexivity", 10), Proved)
        assert usage.replays == 0
        # at the same time, not one after another: run in turn, the three would end a whole run
        # apart (spread = 2/3 of the time); run together they end close to one another, however
        # loaded the machine is (no comparison with a run timed at another moment)
        total = max(ended) - started
        assert max(ended) - min(ended) < 0.4 * total, (ended, started)
    finally:
        await env.close()


async def test_a_state_of_one_process_runs_on_another():
    env = CoqIde(CoqConfig(processes=2))
    try:
        root = await env.start(ADD)
        step = await env.run_tactic(root, "intros n", 10)
        assert step.state.handle.slot == root.handle.slot
        home = env._slots[step.state.handle.slot]
        async with home.lock:  # busy: the next call goes to the other process
            with metered() as usage:
                result = await env.run_tactic(step.state, "simpl", 10)
        assert isinstance(result, Progress) and result.state.handle.slot != home.index
        assert usage.replays == 1
        assert isinstance(await env.run_tactic(result.state, "lia", 10), Proved)
    finally:
        await env.close()


async def test_a_header_import_on_another_process_is_not_charged_to_the_tactic():
    reals = Theorem("r", "Lemma r : forall x : R, x = x.", "Require Import Reals.\n", "coq")
    env = CoqIde(CoqConfig(processes=2))
    env.grace = 0.05  # the import (0.4 s to 1 s) would not fit in the 0.25 s deadline
    try:
        root = await env.start(reals)
        async with env._slots[root.handle.slot].lock:  # the other process has never seen the header
            started = time.monotonic()
            result = await env.run_tactic(root, "intros x", 0.2)
        assert isinstance(result, Progress) and env.restarts == 0, result
        assert time.monotonic() - started > 0.25  # the import happened, before the tactic's deadline
        assert result.state.handle.path == ("intros x",)  # no Timeout wrapper in a proof's path
    finally:
        await env.close()


async def test_restarts_are_charged_to_the_search_that_caused_them():
    env = CoqIde(CoqConfig(processes=2, interrupt="kill"))
    env.grace = 0.3
    try:

        async def search(slow: bool) -> int:
            with metered() as usage:
                root = await env.start(REFL)
                for _ in range(2):
                    tactic = "repeat (pose proof I)" if slow else "intros n"
                    await env.run_tactic(root, tactic, 0.3)
                    await asyncio.sleep(0)
            return usage.restarts

        noisy, quiet = await asyncio.gather(search(True), search(False))
        assert noisy == 2 and quiet == 0 and env.restarts == 2
    finally:
        await env.close()


async def test_control_characters_in_replies_are_no_traceback(coq):
    root = await coq.start(REFL)
    result = await coq.run_tactic(root, 'idtac "\x01"', 10)
    assert isinstance(result, Progress | Failed)
    assert isinstance(await coq.run_tactic(root, "intros; reflexivity", 10), Proved)
    raw = b'<feedback><feedback_content val="message"><message><message_level val="error"/><option val="none"/>'
    raw += b"<richpp><_><pp>\x01 bad</pp></_></richpp></message></feedback_content></feedback>"
    reply = Reply.of(raw + b'<value val="good"><option val="none"/></value>')
    assert reply.messages("error") == ["? bad"]
    with pytest.raises(ProtocolError):
        Reply.of(b"<feedback>no value at all</feedback>")
    with pytest.raises(ProtocolError):
        Reply.of(b'<value val="good"><unclosed></value>').value()


async def test_name_followed_by_a_colon(coq):
    th = Theorem("t2", "Theorem t2: 1 + 1 = 2.", "", "coq")
    root = await coq.start(th)
    assert isinstance(await coq.run_tactic(root, "reflexivity", 10), Proved)
    assert (await coq.verify(th, ["reflexivity"])).accepted
    example = Theorem("e", "Example e: 2 = 2.", "", "coq")
    assert (await coq.verify(example, ["reflexivity"])).accepted


async def test_coq_writes_nothing_into_our_working_directory(coq, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = await coq.start(ADD)
    assert isinstance(await coq.run_tactic(root, "intros; nia", 10), Proved)
    assert (await coq.verify(ADD, ["intros; nia"])).accepted
    assert (await CoqIde(CoqConfig(warm_verifier=False)).verify(ADD, ["intros; lia"])).accepted
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- verification

CLASSICAL = Theorem("em", "Theorem em : forall P : Prop, P \\/ ~ P.", "Require Import Classical.\n", "coq")
ADMITTED = Theorem("uses", "Theorem uses : 1 = 2.", "Lemma cheat : 1 = 2.\nAdmitted.\n", "coq")
# (theorem, proof, accepted): both verifiers must agree on every one
CASES = [
    (ADD, ["intros n", "lia"], True),
    (ADD, ["intros n"], False),  # incomplete
    (ADD, ["intros n", "lia", "lia"], False),  # a tactic after the proof is done
    (ADD, ["induction n", "- reflexivity", "- simpl", "rewrite IHn", "reflexivity"], True),
    (ADD, ["exact foo"], False),
    (ADD, ['idtac "a. b"', "intros; lia"], True),  # a string: the coqc path
    (ADD, ["induction n", "{ reflexivity }", "{ simpl; rewrite IHn; reflexivity }"], False),  # `}` mid-sentence
    (ADD, ["induction n", "{", "reflexivity", "}", "simpl; rewrite IHn; reflexivity"], True),
    (ADD, ["intros n", "induction n", "all: simpl; auto"], True),
    (ADD, ["intros n", "2: lia"], False),  # no second goal
    (ADD, ["intros n", "lia ", "  "], False),  # an empty step is an empty sentence
    (CLASSICAL, ["intros P", "apply classic"], True),
    (CLASSICAL, ["intros P", "left", "auto"], False),
    (ADMITTED, ["exact cheat"], False),  # an Admitted lemma is an axiom of the file
    (Theorem("cheat", "Theorem cheat : 1 = 2.", "Axiom bad : 1 = 2.\n", "coq"), ["exact bad"], False),
    (Theorem("t2", "Theorem t2: 1 + 1 = 2.", "", "coq"), ["reflexivity"], True),
    (Theorem("r", "Lemma r : (1 + 1 = 2)%R.", "Require Import Reals Lra.\n", "coq"), ["lra"], True),
]


async def test_warm_verifier_and_fresh_coqc_agree():
    warm, fresh = CoqIde(), CoqIde(CoqConfig(warm_verifier=False))
    try:
        for theorem, proof, expected in CASES:
            with metered() as usage:
                ours = await warm.verify(theorem, proof)
            theirs = await fresh.verify(theorem, proof)
            assert ours.accepted == theirs.accepted == expected, (theorem.name, proof, ours, theirs)
            assert ours.axioms == theirs.axioms, (theorem.name, proof)
            assert usage.verify_s > 0
        assert len(warm._verifiers) == 1  # bounded by the number of processes
    finally:
        await warm.close()
        await fresh.close()


async def test_standard_classical_axioms_are_accepted_by_full_path(coq):
    verdict = await coq.verify(CLASSICAL, ["intros P", "apply classic"])
    assert verdict.accepted and verdict.axioms == ("Coq.Logic.Classical_Prop.classic",)
    assert "Coq.Logic.Classical_Prop.classic" in STANDARD_AXIOMS
    # a file's own `classic` is not the standard library's, whatever its name
    own = Theorem("em2", "Theorem em2 : forall P : Prop, P \\/ ~ P.", "Axiom classic : forall P : Prop, P \\/ ~ P.\n")
    own = Theorem(own.name, own.statement, own.header, "coq")
    verdict = await coq.verify(own, ["exact classic"])
    assert not verdict.accepted and "classic" in verdict.reason
    admitted = await coq.verify(ADMITTED, ["exact cheat"])
    assert not admitted.accepted and "cheat" in admitted.reason


async def test_verify_with_fresh_coqc():
    env = CoqIde(CoqConfig(warm_verifier=False))
    try:
        assert (await env.verify(ADD, ["intros n", "lia"])).accepted
        short = await env.verify(ADD, ["intros n"])
        assert not short.accepted and "incomplete proof" in " ".join(short.messages)
        assert not (await env.verify(ADD, ["admit"])).accepted
    finally:
        await env.close()


async def test_verify_rejects_user_axioms(coq):
    th = Theorem("cheat", "Theorem cheat : 1 = 2.", "Axiom bad : 1 = 2.\n", "coq")
    verdict = await coq.verify(th, ["exact bad"])
    assert not verdict.accepted and "bad" in verdict.reason and len(verdict.axioms) == 1
    assert verdict.axioms[0].endswith(".bad")


async def test_check_file_gives_each_theorem_its_own_verdict(coq):
    text = (ROOT / "tests/data/coq_check.v").read_text()
    checks = {c.name: c.verdict for c in await coq.check_file(text)}
    assert list(checks) == ["good", "bad", "after_bad", "uses_bad", "ex", "admitted", "em"]
    assert checks["good"].accepted and checks["after_bad"].accepted and checks["ex"].accepted
    bad = checks["bad"]
    assert not bad.accepted and bad.messages[0].startswith(f'File "{CHECKED_FILE}", line 9,')
    assert not checks["uses_bad"].accepted and "bad" in checks["uses_bad"].reason
    assert not checks["admitted"].accepted and checks["admitted"].axioms == ("Top.admitted",)
    assert checks["em"].accepted and checks["em"].axioms == ("Coq.Logic.Classical_Prop.classic",)


async def test_bad_statement_is_a_start_error(coq):
    with pytest.raises(TheoremStartError):
        await coq.start(Theorem("x", "Theorem x : undefined_thing = 1.", "", "coq"))


def test_sentence_splitting():
    assert split_sentences("Require Import Arith. (* a. b. *) Open Scope nat_scope.\n") == [
        "Require Import Arith.",
        "Open Scope nat_scope.",
    ]
    assert split_sentences('idtac "x. y". - lia. + { auto. } ** now f x.1.') == [
        'idtac "x. y".',
        "-",
        "lia.",
        "+",
        "{",
        "auto.",
        "}",
        "**",
        "now f x.1.",
    ]
    assert tactic_sentences("- lia") == ["-", "lia."]
    assert tactic_sentences("}") == ["}"]
    with pytest.raises(TheoremStartError):
        split_sentences("Require Import Arith")


def test_print_assumptions_and_locate_parsing():
    out = "Axioms:\nbad : 1 = 2\nclassic : forall P : Prop, P \\/ ~ P\n"
    assert parse_assumptions(out) == ["bad", "classic"]
    assert parse_assumptions("Closed under the global context\n") == []
    located = ["Constant Coq.Logic.Classical_Prop.classic", "Constant Top.classic (shorter name ...)"]
    assert parse_locate(located) == "Coq.Logic.Classical_Prop.classic"


async def test_check_file_stops_at_an_error_outside_theorems(coq):
    text = (
        "Theorem first : 1 = 1.\nProof. reflexivity. Qed.\n"
        "Definition broken := undefined_name.\n"
        "Theorem second : 2 = 2.\nProof. reflexivity. Qed.\n"
        "Theorem bad_statement : undefined_too = 1.\nProof. reflexivity. Qed.\n"
    )
    checks = {c.name: c.verdict for c in await coq.check_file(text)}
    assert checks["first"].accepted
    assert not checks["second"].accepted and checks["second"].reason == "the file fails at line 3"
    assert not checks["bad_statement"].accepted
    only_statement = (
        "Theorem ok : 1 = 1.\nProof. reflexivity. Qed.\nTheorem nope : nope = 1.\nProof. reflexivity. Qed.\n"
    )
    checks = {c.name: c.verdict for c in await coq.check_file(only_statement)}
    assert checks["ok"].accepted and not checks["nope"].accepted


async def test_a_step_cancelled_midway_does_not_desynchronise_the_process(coq):
    """A search that gives up on a candidate mid-tactic must not leave Coq's answer to be read by
    the next call (it was read as the next tactic's, then cost a restart charged to someone else)."""
    root = await coq.start(REFL)
    slow = asyncio.create_task(coq.run_tactic(root, "do 10000000 idtac", 30))
    await asyncio.sleep(1.5)  # the tactic is running inside Coq (it takes several seconds)
    assert not slow.done()
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    with metered() as usage:
        bad = await coq.run_tactic(root, "exact foo", 10)
        good = await coq.run_tactic(root, "intros n", 10)
    assert isinstance(bad, Failed) and "foo" in bad.message
    assert isinstance(good, Progress) and good.state.goals[0].startswith("n : nat")
    assert usage.restarts == 0 and coq.restarts == 0


async def test_a_check_cut_short_in_the_warm_verifier_does_not_poison_the_next(monkeypatch):
    """A check that timed out (or was cancelled) leaves Coq's answers in flight; the check queued
    behind it on the shared verifier must get a clean process, not read those answers."""
    env = CoqIde(CoqConfig(verify_timeout=1.5))
    fresh: list[str] = []
    original = env._coqc

    async def coqc(text: str):
        fresh.append(text)
        return await original(text)

    monkeypatch.setattr(env, "_coqc", coqc)
    try:
        assert (await env.verify(REFL, ["reflexivity"])).accepted  # warm: the verifier is up
        assert fresh == []
        slow = asyncio.create_task(env.verify(REFL, ["do 30000000 idtac", "reflexivity"]))
        await asyncio.sleep(0.2)
        queued = await env.verify(REFL, ["intros n", "reflexivity"])
        assert queued.accepted and not any("intros n" in t for t in fresh)  # warm, no fallback to coqc
        await asyncio.gather(slow, return_exceptions=True)
        cancelled = asyncio.create_task(env.verify(REFL, ["do 30000000 idtac", "reflexivity"]))
        await asyncio.sleep(0.5)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        fresh.clear()
        after = await env.verify(REFL, ["intros n", "reflexivity"])
        assert after.accepted and not any("intros n" in t for t in fresh)
    finally:
        await env.close()


LONG_NAME = "a_long_axiom_name_that_coq_prints_on_a_line_of_its_own_because_it_is_longer_than_the_page"
LONG_AXIOM = (
    "Axiom a_long_axiom_name_that_coq_prints_on_a_line_of_its_own_because_it_is_longer_than_the_page"
    " : forall (P Q R S : Prop), (P -> Q) -> (Q -> R) -> (R -> S) -> P -> S /\\ S /\\ S /\\ False.\n"
)


def test_print_assumptions_of_every_layout():
    """Coq puts a long name on a line of its own, and reports an unguarded fixpoint as a sentence."""
    out = (
        "Axioms:\nshort\n  : forall P Q : Prop,\n    P -> Q\nclassic : forall P : Prop, P \\/ ~ P\n"
        "f is assumed to be guarded.\n"
    )
    assert parse_assumptions(out) == ["short", "classic", "f is assumed to be guarded."]


async def test_axioms_printed_on_their_own_line_are_audited(coq):
    lemma = f"Theorem t : False.\nProof.\n  apply ({LONG_NAME} True True True True); auto.\nQed.\n"
    (check,) = await coq.check_file(LONG_AXIOM + lemma)
    assert not check.verdict.accepted and ".a_long_axiom" in check.verdict.reason
    unguarded = "Unset Guard Checking.\nFixpoint f (n : nat) : False := f n.\nSet Guard Checking.\n"
    (check,) = await coq.check_file(unguarded + "Theorem u : False.\nProof. exact (f 0). Qed.\n")
    assert not check.verdict.accepted and "guarded" in check.verdict.reason
    theorem = Theorem("t", "Theorem t : False.", LONG_AXIOM, "coq")
    proof = [f"apply ({LONG_NAME} True True True True); auto"]
    verdict = await coq.verify(theorem, proof)
    assert not verdict.accepted and "Top.a_long_axiom" in verdict.reason
    guarded = Theorem("u", "Theorem u : False.", unguarded, "coq")
    verdict = await coq.verify(guarded, ["exact (f 0)"])
    assert not verdict.accepted and "guarded" in verdict.reason


async def test_an_own_axiom_with_a_long_path_is_not_the_standard_one(coq):
    located = [
        "Constant",
        "  Top.A_long_module_name.Another_long_module_name.classic",
        "Constant Coq.Logic.Classical_Prop.classic",
        "  (shorter name to refer to it in current context is Classical_Prop.classic)",
    ]
    assert parse_locate(located) == "Top.A_long_module_name.Another_long_module_name.classic"
    modules = (
        "Module A_module_with_a_rather_long_name_indeed_to_push_the_path_over_the_page_width.\n"
        "Module Another_long_module_name_for_good_measure.\nAxiom classic : forall P : Prop, P \\/ ~ P.\n"
        "End Another_long_module_name_for_good_measure.\n"
        "End A_module_with_a_rather_long_name_indeed_to_push_the_path_over_the_page_width.\n"
        "Require Import Classical.\nImport A_module_with_a_rather_long_name_indeed_to_push_the_path_over_the_page_width"
        ".Another_long_module_name_for_good_measure.\n"
    )
    own = Theorem("em2", "Theorem em2 : forall P : Prop, P \\/ ~ P.", modules, "coq")
    verdict = await coq.verify(own, ["exact classic"])
    assert not verdict.accepted and "Another_long_module_name_for_good_measure.classic" in verdict.reason
    (check,) = await coq.check_file(modules + "Theorem em2 : forall P : Prop, P \\/ ~ P.\nProof. exact classic. Qed.\n")
    assert not check.verdict.accepted and "Another_long_module_name_for_good_measure.classic" in check.verdict.reason
