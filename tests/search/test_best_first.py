from __future__ import annotations

import asyncio
from collections.abc import Sequence

import networkx as nx
import pytest

from envs.types import EnvError, ProofState, Theorem
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


# ---- restart attribution (issue 11.2)


async def test_a_neighbours_restarts_are_not_charged_to_this_search():
    # A only times out (each timeout restarts a process of the shared env); B walks a chain to a proof
    chain = {f"s{i}": {"step": f"s{i + 1}"} for i in range(10)}
    graph = {"root": {f"slow{i}": "timeout" for i in range(10)} | {"step": "s0"}, **chain, "s10": {"qed": QED}}
    env = ScriptedEnv(graph, delay=0.01)
    timeouts = FixedGenerator({"root": [(f"slow{i}", 0.0) for i in range(10)]})
    steps = FixedGenerator({"root": [("step", 0.0)], "s10": [("qed", 0.0)]}, default=[("step", 0.0)])
    a, b = await asyncio.gather(
        best_first_search(env, timeouts, THM, Budget(max_restarts=100), SearchConfig(samples=10)),
        best_first_search(env, steps, THM, Budget(max_restarts=2), SearchConfig(samples=10)),
    )
    assert env.restarts == 10
    assert a.restarts == 10 and a.to_record()["restarts"] == 10
    assert b.status == "proved" and b.stop_reason == "proved"
    assert b.restarts == 0 and b.to_record()["restarts"] == 0


async def test_verification_time_and_replays_come_from_the_envs_meter():
    env = ScriptedEnv({"root": {"a": "A"}, "A": {"b": QED}}, verify_delay=0.05, replays_per_call=3)
    result = await search(env, FixedGenerator({"root": [("a", 0.0)], "A": [("b", 0.0)]}))
    record = result.to_record()
    assert record["replays"] == 6 and result.replays == 6
    assert record["verify_s"] == 0.05
    assert result.env_s < 0.05  # tactic checking, apart from the fresh check


# ---- parallel candidates (issue 10.5)


async def test_candidates_of_one_expansion_run_at_most_size_at_a_time():
    env = ScriptedEnv({"root": {}}, delay=0.05, size=4)
    result = await search(env, FixedGenerator({"root": [(f"t{i}", 0.0) for i in range(10)]}), config=SearchConfig(10))
    assert env.peak == 4
    assert result.tactic_calls == 10 and result.tree.root.status.value == "failed"
    assert result.env_s < 0.05 * 10 * 0.8  # overlapping calls count once


async def test_outcomes_enter_the_tree_in_candidate_order_whatever_order_they_finish_in():
    graph = {"root": {f"t{i}": f"g{i}" for i in range(6)}}
    env = ScriptedEnv(graph, size=3, delays={f"t{i}": 0.01 * (6 - i) for i in range(6)})
    result = await search(env, FixedGenerator({"root": [(f"t{i}", -0.1 * i) for i in range(6)]}, default=[]))
    assert [t for _, t in env.calls][:3] != ["t0", "t1", "t2"]  # they did finish out of order
    assert env.launched[:3] == ["t0", "t1", "t2"]
    assert [e.tactic for e in result.tree.root.out_edges] == [f"t{i}" for i in range(6)]
    assert [n.state.goals[0] for n in result.tree.nodes[1:]] == [f"g{i}" for i in range(6)]


async def test_no_candidate_starts_after_the_proof_is_verified():
    env = ScriptedEnv({"root": {"quick": QED}}, size=2, delays={"slow": 0.2, "quick": 0.01})
    gen = FixedGenerator({"root": [("slow", 0.0), ("quick", 0.0)] + [(f"later{i}", 0.0) for i in range(5)]})
    result = await search(env, gen)
    assert result.status == "proved" and result.proof == ["quick"]
    assert env.launched == ["slow", "quick"]  # nothing launched once proved; the slow one was let finish
    assert [e.tactic for e in result.tree.root.out_edges] == ["slow", "quick"]
    assert result.tactic_calls == 2


async def test_a_second_proof_found_meanwhile_is_not_rechecked():
    env = ScriptedEnv({"root": {"p1": QED, "p2": QED}}, size=2, verify_delay=0.05)
    result = await search(env, FixedGenerator({"root": [("p1", 0.0), ("p2", 0.0)]}))
    assert result.proof == ["p1"] and env.verified == [("p1",)]


async def test_parallel_checks_respect_the_deadline_and_leave_the_node_open():
    env = ScriptedEnv({"root": {}}, delay=0.05, size=4)
    gen = FixedGenerator({"root": [(f"t{i}", 0.0) for i in range(100)]})
    result = await search(env, gen, Budget(time_limit=0.3), SearchConfig(samples=100))
    assert result.stop_reason == "time_limit" and result.wall_s < 1.0
    assert 0 < result.tactic_calls < 100
    assert result.tree.root.status.value == "open" and not result.tree.root.expanded
    assert max(env.timeouts) <= 0.3


async def test_each_candidate_gets_the_tactic_timeout():
    env = ScriptedEnv({"root": {}}, size=3)
    await search(env, FixedGenerator({"root": [(f"t{i}", 0.0) for i in range(5)]}), Budget(tactic_timeout=2.5))
    assert env.timeouts == [2.5] * 5


async def test_a_broken_env_during_parallel_checks_ends_the_search_as_error():
    env = ScriptedEnv({"root": {"ok": "A"}}, size=3, delay=0.02, broken={"bad"})
    gen = FixedGenerator({"root": [("ok", 0.0), ("bad", 0.0)] + [(f"t{i}", 0.0) for i in range(10)]})
    result = await best_first_search(env, gen, THM, config=SearchConfig(samples=12))
    assert result.status == "error" and result.stop_reason == "env_error" and "died" in result.error
    assert len(env.launched) < 12
    assert [e.tactic for e in result.tree.root.out_edges][0] == "ok"
    result.tree.check_invariants()


async def test_cancelling_a_search_leaves_no_check_running():
    env = ScriptedEnv({"root": {}}, delay=0.05, size=4)
    task = asyncio.ensure_future(
        best_first_search(env, FixedGenerator({"root": [(f"t{i}", 0.0) for i in range(40)]}), THM)
    )
    await asyncio.sleep(0.08)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    launched = len(env.launched)
    await asyncio.sleep(0.15)
    assert env.in_flight == 0 and len(env.launched) == launched
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_restart_budget_stops_launching_within_an_expansion():
    env = ScriptedEnv({"root": {f"slow{i}": "timeout" for i in range(20)}}, size=2)
    gen = FixedGenerator({"root": [(f"slow{i}", 0.0) for i in range(20)]})
    result = await search(env, gen, Budget(max_restarts=3), SearchConfig(samples=20))
    assert result.stop_reason == "env_restarts" and 3 < result.restarts <= 5
    assert result.tree.root.status.value == "open"


# ---- overlapping the model with checking


class SlowGenerator(FixedGenerator):
    """A model-like generator: each call takes `delay` seconds; `events` logs calls and their ends."""

    def __init__(self, table, default=(), delay=0.05, events=None):
        super().__init__(table, default)
        self.delay = delay
        self.events = events if events is not None else []

    async def generate(self, states, n):
        names = ",".join(s.goals[0] for s in states)
        self.events.append(f"generate {names}")
        await asyncio.sleep(self.delay)
        self.events.append(f"generated {names}")
        return await super().generate(states, n)


class LoggingEnv(ScriptedEnv):
    events: list = []

    async def run_tactic(self, state, tactic, timeout):
        self.events.append(f"run {state.goals[0]} {tactic}")
        result = await super().run_tactic(state, tactic, timeout)
        self.events.append(f"ran {state.goals[0]} {tactic}")
        return result


async def test_pipeline_asks_for_the_next_states_while_checking() -> None:
    events: list[str] = []
    graph = {"root": {"a": "A", "b": "B"}, "A": {"x": "AX"}, "B": {"y": "BY"}, "AX": {"qed": QED}}
    env = LoggingEnv(graph, delay=0.1)
    env.events = events
    gen = SlowGenerator(
        {"root": [("a", -0.1), ("b", -0.2)], "A": [("x", 0.0)], "B": [("y", 0.0)]}, [("qed", 0.0)], 0.05, events
    )
    result = await search(env, gen, config=SearchConfig(pipeline=True))
    assert result.status == "proved" and result.proof == ["a", "x", "qed"]
    # while A's candidate runs, the generator is already asked about B, the next best open state
    assert events.index("generate B") < events.index("ran A x")
    assert events.index("run A x") < events.index("generated B")
    assert result.model_s + result.env_s > result.wall_s  # the two overlapped


async def test_without_pipeline_the_model_waits_for_the_checks() -> None:
    events: list[str] = []
    graph = {"root": {"a": "A", "b": "B"}, "A": {"x": "AX"}, "B": {"y": "BY"}, "AX": {"qed": QED}}
    env = LoggingEnv(graph, delay=0.02)
    env.events = events
    gen = SlowGenerator(
        {"root": [("a", -0.1), ("b", -0.2)], "A": [("x", 0.0)], "B": [("y", 0.0)]}, [("qed", 0.0)], 0.01, events
    )
    result = await search(env, gen)
    assert result.proof == ["a", "x", "qed"] and "generate B" not in events  # strict best-first: AX came first


async def test_pipeline_keeps_the_expansion_budget_and_checks_every_generated_batch():
    chain = {f"s{i}": {"step": f"s{i + 1}", "alt": f"t{i}"} for i in range(50)}
    chain["root"] = {"step": "s0", "alt": "t"}
    env = ScriptedEnv(chain, delay=0.01)
    gen = SlowGenerator({}, [("step", -1.0), ("alt", -1.5)], 0.01)
    result = await search(env, gen, Budget(max_expansions=6), SearchConfig(pipeline=True))
    assert result.stop_reason == "expansions" and result.expansions == 6 and gen.batches == [1] * 6
    assert sum(n.expanded for n in result.tree.nodes) == 6  # no generated batch was dropped unchecked


async def test_pipeline_generator_error_cancels_the_checks():
    class Failing(SlowGenerator):
        async def generate(self, states, n):
            if states[0].goals[0] != "root":
                raise RuntimeError("model server down")
            return await super().generate(states, n)

    env = ScriptedEnv({"root": {"a": "A", "b": "B"}, "A": {}, "B": {}}, delay=0.05)
    with pytest.raises(RuntimeError, match="model server down"):
        await best_first_search(
            env, Failing({"root": [("a", 0.0), ("b", 0.0)]}, [("z", 0.0)], 0.0), THM, config=SearchConfig(pipeline=True)
        )
    await asyncio.sleep(0.1)
    assert env.in_flight == 0 and asyncio.all_tasks() == {asyncio.current_task()}


# ---- garbage collection


async def test_survivors_are_frozen_during_searches_and_released_when_one_ends(monkeypatch) -> None:
    import gc
    import weakref

    from search import best_first

    monkeypatch.setattr(best_first.COLLECTOR, "every", 1)  # freeze after every expansion
    monkeypatch.setattr(best_first.COLLECTOR, "release_every", 0.0)  # release at every search's end
    assert gc.get_freeze_count() == 0

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    class HoldingCycles(FixedGenerator):
        """Holds a cycle from one call to the next: alive when frozen, garbage afterwards."""

        def __init__(self, table: dict, default: list | tuple = ()) -> None:
            super().__init__(table, default)
            self.frozen: list[int] = []
            self.cycles: list[weakref.ref] = []
            self.held: Cycle | None = None

        async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
            self.frozen.append(gc.get_freeze_count())
            self.held = Cycle()
            self.cycles.append(weakref.ref(self.held))
            await asyncio.sleep(0.01)
            return await super().generate(states, n)

    chain = {f"s{i}": {"step": f"s{i + 1}"} for i in range(10)} | {"root": {"step": "s0"}, "s10": {"qed": QED}}
    fast_gen = HoldingCycles({"s10": [("qed", 0.0)]}, [("step", 0.0)])
    slow_gen = HoldingCycles({"root": [("a", 0.0)], "A": [("b", 0.0)]})
    go_on = asyncio.Event()

    class GatedEnv(ScriptedEnv):
        """Its tactics wait until the fast search has finished, however slow the machine is."""

        async def run_tactic(self, state, tactic, timeout):  # type: ignore[no-untyped-def]
            await go_on.wait()
            return await super().run_tactic(state, tactic, timeout)

    slow_env = GatedEnv({"root": {"a": "A"}, "A": {"b": QED}})
    slow = asyncio.ensure_future(best_first_search(slow_env, slow_gen, THM))
    assert (await best_first_search(ScriptedEnv(chain), fast_gen, THM)).status == "proved"
    assert all(count > 0 for count in fast_gen.frozen)  # the tree so far was out of the collector's way
    assert not slow.done()
    go_on.set()
    # the finished search's frozen garbage is freed now (`release_every` passed), not when the other search ends
    assert len(fast_gen.cycles) == 12 and all(ref() is None for ref in fast_gen.cycles[:-1])
    assert (await slow).status == "proved"
    assert gc.get_freeze_count() == 0  # the last search released everything


async def test_pipeline_with_parallel_candidates_keeps_the_tree_consistent():
    graph = {"root": {f"t{i}": f"a{i}" for i in range(4)}} | {f"a{i}": {"u": f"b{i}"} for i in range(4)}
    graph["b2"] = {"qed": QED}
    env = ScriptedEnv(graph, size=3, delay=0.01)
    gen = SlowGenerator({"root": [(f"t{i}", -0.1 * i) for i in range(4)]}, [("u", -0.5), ("qed", -0.1)], 0.005)
    result = await search(env, gen, config=SearchConfig(samples=4, batch=2, pipeline=True))
    assert result.status == "proved" and result.proof == ["t2", "u", "qed"]
    assert env.peak <= 3


async def test_collector_knob_zero_leaves_the_collector_alone(monkeypatch) -> None:
    import gc

    from search import best_first

    monkeypatch.setattr(best_first.COLLECTOR, "every", 0)
    counts: list[int] = []

    class CountingFreezes(FixedGenerator):
        async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
            counts.append(gc.get_freeze_count())
            return await super().generate(states, n)

    await search(ScriptedEnv({"root": {"a": QED}}), CountingFreezes({"root": [("a", 0.0)]}))
    assert counts == [0]


async def test_no_candidate_starts_while_a_closed_proof_is_re_checked():
    others = [(t, 0.0) for t in "abcde"]
    env = ScriptedEnv({"root": {"p": QED}}, size=2, delay=0.05, delays={"p": 0.01}, verify_delay=0.2)
    result = await search(env, FixedGenerator({"root": [("p", 0.0), *others]}), config=SearchConfig(samples=6))
    assert result.proof == ["p"] and env.launched == ["p", "a"]  # `a` was already running; it finished


async def test_a_rejected_proof_lets_the_other_candidates_start_again():
    others = [(t, 0.0) for t in "abcde"]
    env = ScriptedEnv({"root": {"p": QED}}, size=2, delay=0.05, delays={"p": 0.01}, verify_delay=0.1, reject={("p",)})
    result = await search(env, FixedGenerator({"root": [("p", 0.0), *others]}), config=SearchConfig(samples=6))
    assert result.status == "failed" and env.launched == ["p", *"abcde"]
    assert result.tree.root.status.value == "failed" and result.verification_failures == 1


async def test_the_callers_meter_also_gets_the_searchs_charges():
    from envs.types import metered

    env = ScriptedEnv({"root": {"slow": "timeout", "a": QED}}, replays_per_call=1, verify_delay=0.01)
    with metered() as outer:
        result = await search(env, FixedGenerator({"root": [("slow", 0.0), ("a", 0.0)]}))
    assert result.status == "proved" and result.restarts == 1 and result.replays == 2
    assert (outer.restarts, outer.replays, outer.verify_s) == (1, 2, 0.01)


async def test_a_search_ending_beside_others_releases_the_frozen_at_most_every_release_every(monkeypatch) -> None:
    import gc

    from search import best_first

    monkeypatch.setattr(best_first.COLLECTOR, "release_every", 3600.0)
    graph = {"root": {"a": QED}}
    gen = FixedGenerator({"root": [("a", 0.0)]})
    slow = asyncio.ensure_future(best_first_search(ScriptedEnv(graph, delay=0.3), gen, THM))
    await asyncio.sleep(0.05)
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert (await best_first_search(ScriptedEnv(graph), gen, THM)).status == "proved"
    assert gc.get_freeze_count() >= frozen  # no full collection while the other search runs: too soon
    assert (await slow).status == "proved"
    assert gc.get_freeze_count() == 0
