from __future__ import annotations

import asyncio

import networkx as nx
import pytest

from envs.types import EnvError, Theorem
from search.best_first import Budget, SearchConfig, Suggestion, best_first_search, length_normalized, sum_logprob
from tests.fakes.scripted import QED, FixedGenerator, ScriptedEnv

THM = Theorem("t", "theorem t : True :=")


async def search(env, gen, budget=Budget(), config=SearchConfig()):
    result = await best_first_search(env, gen, THM, budget, config)
    result.tree.check_invariants()
    return result


async def test_finds_a_two_step_proof_and_verifies_it():
    env = ScriptedEnv({"root": {"intro": "a", "bad": "b"}, "a": {"simp": QED}})
    gen = FixedGenerator({"root": [("bad", -0.1), ("intro", -0.5)], "a": [("simp", -0.2)]})
    result = await search(env, gen)
    assert result.status == "proved" and result.verified
    assert result.proof == ["intro", "simp"]
    assert env.verified == [("intro", "simp")]
    assert result.proof_text.endswith("  intro\n  simp\n")
    assert result.tree.proof()[-1].tactic == "simp"


async def test_best_first_expands_the_higher_scoring_state_first():
    env = ScriptedEnv({"root": {"x": "a", "y": "b"}, "a": {"done": QED}, "b": {"done": QED}})
    gen = FixedGenerator({"root": [("x", -3.0), ("y", -1.0)]}, default=[("done", -0.1)])
    result = await search(env, gen)
    assert result.proof == ["y", "done"]
    expanded = [goal for goal, _ in env.calls]
    assert "b" in expanded and "a" not in expanded  # the better state was expanded, and sufficed


async def test_scorers_differ_by_length_normalisation():
    long = Suggestion("a b c d", -4.0, 4)
    short = Suggestion("x", -2.0, 1)
    assert sum_logprob(0.0, long) < sum_logprob(0.0, short)
    assert length_normalized(0.0, long) > length_normalized(0.0, short)


async def test_transposition_adds_an_edge_not_a_node():
    env = ScriptedEnv({"root": {"p": "same", "q": "same"}, "same": {}})
    gen = FixedGenerator({"root": [("p", -1.0), ("q", -1.0)]}, default=[])
    result = await search(env, gen)
    assert len(result.tree) == 2
    same = result.tree.nodes[1]
    assert len(same.in_edges) == 2
    assert result.status == "failed" and result.stop_reason == "frontier_exhausted"
    assert result.tree.root.status.value == "failed"


async def test_batch_pops_several_states_in_one_model_call():
    env = ScriptedEnv({"root": {"a": "A", "b": "B", "c": "C"}})
    gen = FixedGenerator({"root": [("a", -1.0), ("b", -1.1), ("c", -1.2)]}, default=[("nothing", 0.0)])
    result = await search(env, gen, config=SearchConfig(samples=4, batch=3))
    assert gen.batches == [1, 3]
    assert result.model_calls == 2 and result.expansions == 4


async def test_expansion_budget_is_a_stop_reason():
    chain = {f"s{i}": {"step": f"s{i + 1}"} for i in range(50)}
    chain["root"] = {"step": "s0"}
    env = ScriptedEnv(chain)
    result = await search(env, FixedGenerator({}, default=[("step", -1.0)]), Budget(max_expansions=5))
    assert result.status == "failed" and result.stop_reason == "expansions" and result.expansions == 5
    assert result.tree.root.status.value == "open"


async def test_time_budget_is_a_stop_reason():
    chain = {f"s{i}": {"step": f"s{i + 1}"} for i in range(1000)}
    chain["root"] = {"step": "s0"}
    env = ScriptedEnv(chain, delay=0.02)
    result = await search(env, FixedGenerator({}, default=[("step", -1.0)]), Budget(time_limit=0.3))
    assert result.stop_reason == "time_limit"
    assert result.wall_s < 2


async def test_proof_rejected_by_the_fresh_check_is_not_reported_and_search_goes_on():
    env = ScriptedEnv({"root": {"cheat": QED, "honest": "a"}, "a": {"fin": QED}}, reject={("cheat",)})
    gen = FixedGenerator({"root": [("cheat", -0.1), ("honest", -0.2)], "a": [("fin", -0.1)]})
    result = await search(env, gen)
    assert result.status == "proved" and result.proof == ["honest", "fin"]
    assert result.verification_failures == 1
    outcomes = {e.tactic: e.outcome.value for e in result.tree.edges()}
    assert outcomes["cheat"] == "verification_failed"


async def test_only_unverifiable_proofs_means_failed():
    env = ScriptedEnv({"root": {"cheat": QED}}, reject={("cheat",)})
    result = await search(env, FixedGenerator({"root": [("cheat", 0.0)]}))
    assert result.status == "failed" and not result.verified and result.verification_failures == 1
    assert result.proof == [] and result.proof_text == ""


async def test_timeouts_are_failed_edges():
    env = ScriptedEnv({"root": {"slow": "timeout"}})
    result = await search(env, FixedGenerator({"root": [("slow", 0.0)]}))
    assert [e.outcome.value for e in result.tree.edges()] == ["timed_out"]
    assert result.tree.root.status.value == "failed"


async def test_a_broken_env_ends_the_search_as_error():
    class Broken(ScriptedEnv):
        async def run_tactic(self, state, tactic, timeout):
            raise EnvError("process died and could not restart")

    result = await best_first_search(Broken({}), FixedGenerator({}, default=[("x", 0.0)]), THM)
    assert result.status == "error" and result.stop_reason == "env_error"
    assert "could not restart" in result.error


async def test_record_and_graph():
    env = ScriptedEnv({"root": {"a": "A"}, "A": {"b": QED}})
    result = await search(env, FixedGenerator({"root": [("a", -0.5)], "A": [("b", -0.25)]}))
    record = result.to_record()
    assert record["tactics"] == ["a", "b"] and record["status"] == "proved" and record["nodes"] == 2
    graph = result.graph
    assert isinstance(graph, nx.DiGraph)
    tactics = sorted(d["tactic"] for _, _, d in graph.edges(data=True))
    assert tactics == ["a", "b"]
    assert graph.nodes[0]["status"] == "proved"


def test_budget_must_be_finite():
    with pytest.raises(ValueError):
        Budget(time_limit=float("inf"))
    with pytest.raises(ValueError):
        SearchConfig(scorer="nope")


async def test_concurrent_searches_share_one_env():
    env = ScriptedEnv({"root": {"a": "A"}, "A": {"b": QED}}, delay=0.01)
    gen = FixedGenerator({"root": [("a", 0.0)], "A": [("b", 0.0)]})
    results = await asyncio.gather(*(best_first_search(env, gen, THM) for _ in range(5)))
    assert all(r.status == "proved" for r in results)


async def test_an_interrupted_expansion_leaves_the_node_open_not_failed():
    env = ScriptedEnv({"root": {}}, delay=0.05)
    gen = FixedGenerator({"root": [(f"t{i}", 0.0) for i in range(50)]})
    result = await search(env, gen, Budget(time_limit=0.3))
    assert result.stop_reason == "time_limit"
    assert 0 < result.tactic_calls < 50
    assert result.tree.root.status.value == "open" and not result.tree.root.expanded


async def test_search_stops_at_the_first_verified_proof_in_a_batch():
    env = ScriptedEnv({"root": {"a": "A", "b": "B"}, "A": {"qed": QED}, "B": {"qed": QED}})
    gen = FixedGenerator({"root": [("a", -1.0), ("b", -1.0)]}, default=[("qed", 0.0)])
    result = await search(env, gen, config=SearchConfig(batch=2))
    assert result.status == "proved" and len(env.verified) == 1
    assert ("B", "qed") not in env.calls


async def test_the_first_verified_proof_ends_the_expansion():
    env = ScriptedEnv({"root": {"first": QED, "second": QED, "third": "A"}})
    gen = FixedGenerator({"root": [("first", -1.0), ("second", -0.5), ("third", -0.1)]})
    result = await search(env, gen)
    assert result.proof == ["first"] and env.verified == [("first",)]
    assert [t for _, t in env.calls] == ["first"]
    assert result.tactic_calls == 1


async def test_restart_budget_is_a_stop_reason():
    graph = {
        "root": {f"slow{i}": "timeout" for i in range(5)} | {"step": "a"},
        "a": {f"slow{i}": "timeout" for i in range(5)},
    }
    env = ScriptedEnv(graph)
    gen = FixedGenerator(
        {"root": [("step", 0.0)] + [(f"slow{i}", -1.0) for i in range(5)]},
        default=[(f"slow{i}", -1.0) for i in range(5)],
    )
    result = await search(env, gen, Budget(max_restarts=2))
    assert result.stop_reason == "env_restarts" and result.restarts > 2 and result.status == "failed"
