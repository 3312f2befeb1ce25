from __future__ import annotations

import asyncio

from envs.types import ProofState
from prover.generators.batching import BatchingGenerator
from search.best_first import Suggestion


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, int]] = []
        self.fail = fail

    async def generate(self, states, n):
        self.calls.append((len(states), n))
        await asyncio.sleep(0.001)
        if self.fail:
            raise RuntimeError("engine down")
        return [[Suggestion(f"{s.goals[0]}#{i}") for i in range(n)] for s in states]


async def test_concurrent_requests_are_sent_as_one_batch_and_answered_in_order():
    inner = Recorder()
    gen = BatchingGenerator(inner, max_batch=64, max_wait=0.02)
    states = [ProofState((f"g{i}",)) for i in range(16)]
    results = await asyncio.gather(*(gen.generate([s], 2) for s in states))
    assert inner.calls == [(16, 2)]
    for i, r in enumerate(results):
        assert [s.tactic for s in r[0]] == [f"g{i}#0", f"g{i}#1"]
    await gen.aclose()


async def test_batch_size_cap_and_separate_n():
    inner = Recorder()
    gen = BatchingGenerator(inner, max_batch=4, max_wait=0.02)
    await asyncio.gather(*(gen.generate([ProofState((f"g{i}",))], 1 + i % 2) for i in range(10)))
    assert sum(c[0] for c in inner.calls) == 10
    assert all(size <= 4 for size, _ in inner.calls)
    assert {n for _, n in inner.calls} == {1, 2}
    await gen.aclose()


async def test_errors_reach_every_caller():
    gen = BatchingGenerator(Recorder(fail=True), max_wait=0.01)
    results = await asyncio.gather(*(gen.generate([ProofState(("g",))], 1) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await gen.aclose()
