from __future__ import annotations

import pytest

from envs.types import ProofState
from search.tree import NodeStatus, Outcome, SearchTree


def st(goal: str) -> ProofState:
    return ProofState((goal,), handle=object())


def test_state_identity_is_goal_text():
    assert st("g") == st("g") and hash(st("g")) == hash(st("g"))


def test_proved_propagates_up_and_never_reverts():
    tree = SearchTree(st("root"))
    a = tree.add_edge(tree.root, "a", -1.0, Outcome.PROGRESS, state=st("A"))
    tree.mark_expanded(tree.root)
    tree.propagate(tree.root)
    tree.mark_expanded(a)
    tree.add_edge(a, "done", 0.0, Outcome.PROVED)
    tree.propagate(a)
    assert a.status is NodeStatus.PROVED and tree.root.status is NodeStatus.PROVED
    tree.add_edge(tree.root, "x", 0.0, Outcome.FAILED)
    tree.propagate(tree.root)
    assert tree.root.status is NodeStatus.PROVED
    tree.check_invariants()
    assert [e.tactic for e in tree.proof()] == ["a", "done"]


def test_failed_when_all_children_failed():
    tree = SearchTree(st("root"))
    a = tree.add_edge(tree.root, "a", -1.0, Outcome.PROGRESS, state=st("A"))
    tree.add_edge(tree.root, "b", -1.0, Outcome.TIMED_OUT)
    tree.mark_expanded(tree.root)
    tree.propagate(tree.root)
    assert tree.root.status is NodeStatus.OPEN
    tree.mark_expanded(a)
    tree.add_edge(a, "c", 0.0, Outcome.FAILED)
    tree.propagate(a)
    assert a.status is NodeStatus.FAILED and tree.root.status is NodeStatus.FAILED
    tree.check_invariants()


def test_invariant_check_catches_a_wrong_status():
    tree = SearchTree(st("root"))
    tree.root.status = NodeStatus.PROVED
    with pytest.raises(AssertionError):
        tree.check_invariants()


def test_cycle_does_not_hang_path_or_propagation():
    tree = SearchTree(st("root"))
    a = tree.add_edge(tree.root, "a", 0.0, Outcome.PROGRESS, state=st("A"))
    assert tree.add_edge(a, "back", 0.0, Outcome.PROGRESS, state=st("root")) is None
    assert tree.add_edge(a, "noop", 0.0, Outcome.PROGRESS, state=st("A")) is None
    tree.mark_expanded(tree.root)
    tree.mark_expanded(a)
    tree.propagate(a)
    assert [e.tactic for e in tree.path_to(a)] == ["a"]
    tree.check_invariants()
