"""The Coq backend against a real coqidetop and coqc."""

from __future__ import annotations

import pytest

from envs.coq import CoqConfig, CoqIde, parse_assumptions, split_sentences
from envs.types import Failed, Progress, Proved, Theorem, TheoremStartError, TimedOut

HEADER = "Require Import Arith Lia.\n"
ADD = Theorem("add_zero", "Theorem add_zero : forall n : nat, n + 0 = n.", HEADER, "coq")
pytestmark = pytest.mark.usefixtures("coq_available")


@pytest.fixture
async def coq():
    env = CoqIde()
    yield env
    await env.close()


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


async def test_timeout_kills_restarts_and_replays():
    env = CoqIde(CoqConfig())
    try:
        th = Theorem("loop", "Theorem loop : forall n : nat, n = n.", "", "coq")
        root = await env.start(th)
        step = await env.run_tactic(root, "intros n", 10)
        slow = await env.run_tactic(step.state, "repeat (pose proof I)", 0.5)
        assert slow == TimedOut(0.5) and env.restarts == 1
        assert isinstance(await env.run_tactic(step.state, "reflexivity", 10), Proved)
    finally:
        await env.close()


async def test_a_killed_coqidetop_is_restarted_and_states_replayed(coq):
    root = await coq.start(ADD)
    step = await coq.run_tactic(root, "intros n", 10)
    coq._slots[0].process.proc.kill()
    await coq._slots[0].process.proc.wait()
    assert isinstance(await coq.run_tactic(step.state, "lia", 10), Proved)
    assert coq.restarts == 1


async def test_verify_with_fresh_coqc(coq):
    assert (await coq.verify(ADD, ["intros n", "lia"])).accepted
    short = await coq.verify(ADD, ["intros n"])
    assert not short.accepted and "incomplete proof" in " ".join(short.messages)
    assert not (await coq.verify(ADD, ["admit"])).accepted


async def test_verify_rejects_user_axioms(coq):
    th = Theorem("cheat", "Theorem cheat : 1 = 2.", "Axiom bad : 1 = 2.\n", "coq")
    verdict = await coq.verify(th, ["exact bad"])
    assert not verdict.accepted and "bad" in verdict.reason and verdict.axioms == ("bad",)


async def test_bad_statement_is_a_start_error(coq):
    with pytest.raises(TheoremStartError):
        await coq.start(Theorem("x", "Theorem x : undefined_thing = 1.", "", "coq"))


def test_sentence_splitting():
    assert split_sentences("Require Import Arith. (* a. b. *) Open Scope nat_scope.\n") == [
        "Require Import Arith.",
        "(* a. b. *) Open Scope nat_scope.",
    ]
    with pytest.raises(TheoremStartError):
        split_sentences("Require Import Arith")


def test_print_assumptions_parsing():
    out = "Axioms:\nbad : 1 = 2\nclassic : forall P : Prop, P \\/ ~ P\n"
    assert parse_assumptions(out) == ["bad", "classic"]
    assert parse_assumptions("Closed under the global context\n") == []
