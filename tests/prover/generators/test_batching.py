from __future__ import annotations

import asyncio

import pytest

from envs.types import ProofState
from prover.generators.batching import Batcher, BatchingGenerator, QueueFull
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

    def reseed(self, seed: int) -> None:
        self.seed = seed

    async def close(self) -> None:
        self.closed = True


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


async def test_a_cancelled_caller_takes_its_request_out_of_the_queue():
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def call(items, n):
        calls.append(list(items))
        await release.wait()
        return [x.upper() for x in items]

    batcher = Batcher(call, max_batch=64, max_wait=0)
    first = asyncio.create_task(batcher.submit(["a"], 1))
    await asyncio.sleep(0.01)  # "a" is in the backend; the next ones wait for it
    abandoned = [asyncio.create_task(batcher.submit([f"x{i}"], 1)) for i in range(10)]
    kept = asyncio.create_task(batcher.submit(["b"], 1))
    await asyncio.sleep(0.01)
    assert batcher.pending == 11
    for t in abandoned:
        t.cancel()
    await asyncio.sleep(0)
    assert batcher.pending == 1
    release.set()
    assert await first == ["A"] and await kept == ["B"]
    assert calls == [["a"], ["b"]]  # the abandoned requests never ran the model
    await batcher.aclose()


async def test_a_full_queue_refuses_at_once():
    release = asyncio.Event()

    async def call(items, n):
        await release.wait()
        return list(items)

    batcher = Batcher(call, max_batch=64, max_wait=0, max_pending=2)
    running = asyncio.create_task(batcher.submit(["in flight"], 1))
    await asyncio.sleep(0.01)
    waiting = [asyncio.create_task(batcher.submit([i], 1)) for i in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await batcher.submit(["one too many"], 1)
    release.set()
    assert await running == ["in flight"] and [await w for w in waiting] == [[0], [1]]
    await batcher.aclose()


async def test_zero_wait_sends_what_arrived_while_the_backend_was_busy_as_one_call():
    sizes: list[int] = []

    async def call(items, n):
        sizes.append(len(items))
        await asyncio.sleep(0.02)
        return list(items)

    batcher = Batcher(call, max_batch=64, max_wait=0)
    await asyncio.gather(*(batcher.submit([i], 1) for i in range(16)))
    assert sizes == [16]
    first = asyncio.create_task(batcher.submit(["alone"], 1))
    await asyncio.sleep(0.005)
    rest = await asyncio.gather(*(batcher.submit([i], 1) for i in range(16)))
    assert await first == ["alone"] and rest == [[i] for i in range(16)]
    assert sizes == [16, 1, 16]
    await batcher.aclose()


async def test_adaptive_batching_sends_a_lone_caller_at_once_and_regroups_returning_callers():
    import random
    import time

    sizes: list[int] = []

    async def call(items, n):
        sizes.append(len(items))
        await asyncio.sleep(0.1)
        return list(items)

    batcher = Batcher(call, max_batch=64, max_wait=5.0, adaptive=True)
    started = time.monotonic()
    assert await batcher.submit(["alone"], 1) == ["alone"]
    assert time.monotonic() - started < 1.0  # no waiting for callers that never were

    batcher = Batcher(call, max_batch=64, max_wait=0.001, adaptive=True)
    sizes.clear()
    rng = random.Random(0)

    async def client(c: int) -> None:
        if c:
            await asyncio.sleep(0.01)  # the first editor's request goes alone, the others wait for it
        for i in range(4):
            assert await batcher.submit([(c, i)], 1) == [(c, i)]
            await asyncio.sleep(rng.uniform(0, 0.004))  # editors come back at slightly different times

    await asyncio.gather(*(client(c) for c in range(16)))
    # without regrouping, the lone caller and the other 15 would take turns with the backend
    assert sizes == [1, 15, 16, 16, 16], sizes

    started = time.monotonic()
    for i in range(3):  # one editor left: one regrouping wait at most, then straight through
        await batcher.submit([i], 1)
    assert time.monotonic() - started < 3 * 0.1 + 0.05 + 0.05  # one wait of at most half a call
    await batcher.aclose()
