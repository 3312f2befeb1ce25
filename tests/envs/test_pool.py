"""The pool contract on an in-memory backend: slot choice, deadlines, crashes, attribution."""

from __future__ import annotations

import asyncio
import time

from envs.pool import Handle, ProcessPool, Slot
from envs.process import ProcessDied
from envs.types import Failed, Progress, ProofState, TacticResult, Theorem, TimedOut, metered

THEOREM = Theorem("t", "theorem t : True", "", "lean4")


class _Slot(Slot):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.alive = False
        self.ran: list[str] = []


class Memory(ProcessPool[_Slot]):
    """Tactics are `sleep S`, `crash`, or anything else (instant progress). Replays cost `replay_s` each."""

    def __init__(self, slots: int, replay_s: float = 0.0) -> None:
        super().__init__([_Slot(i) for i in range(slots)], max_restarts_in_a_row=5)
        self.replay_s = replay_s
        self.grace = 0.2
        self.replayed: list[tuple[int, tuple[str, ...]]] = []

    def _check(self, tactic: str) -> str | None:
        return None

    async def _ensure_process(self, slot: _Slot) -> object:
        slot.alive = True
        return slot

    async def _drop_session(self, slot: _Slot) -> None:
        slot.alive = False
        slot.generation += 1

    async def _open(self, slot: _Slot, theorem: Theorem) -> tuple[int, tuple[str, ...]]:
        await self._ensure_process(slot)
        return 0, ("goal",)

    async def _step(self, slot: _Slot, handle: Handle, tactic: str, timeout: float) -> TacticResult:
        if not (handle.slot == slot.index and handle.generation == slot.generation):
            self.replayed.append((slot.index, handle.path))
            for _ in handle.path:
                await asyncio.sleep(self.replay_s)
        if tactic == "crash":
            slot.alive = False
            raise ProcessDied("crashed")
        slot.ran.append(tactic)
        if tactic.startswith("sleep "):
            await asyncio.sleep(float(tactic.split()[1]))
        return Progress(ProofState((tactic,), handle.child(slot.generation, len(slot.ran), tactic)))


async def test_candidates_of_one_state_use_every_free_slot():
    pool = Memory(4)
    root = await pool.start(THEOREM)
    started = time.monotonic()
    with metered() as usage:
        results = await asyncio.gather(*(pool.run_tactic(root, "sleep 0.3", 5) for _ in range(4)))
    assert time.monotonic() - started < 0.6  # four at once, not one after another
    assert sorted(r.state.handle.slot for r in results) == [0, 1, 2, 3]
    assert len(pool.replayed) == 3 and usage.replays == 0  # the backend counts replays, not the pool
    # each child prefers the slot that made it
    for r in results:
        again = await pool.run_tactic(r.state, "next", 5)
        assert isinstance(again, Progress) and again.state.handle.slot == r.state.handle.slot
    assert len(pool.replayed) == 3


async def test_the_home_slot_is_preferred_when_free_and_waited_for_when_all_are_busy():
    pool = Memory(2)
    root = await pool.start(THEOREM)
    for _ in range(3):
        assert (await pool.run_tactic(root, "x", 5)).state.handle.slot == root.handle.slot
    assert pool.replayed == []
    busy = [asyncio.create_task(pool.run_tactic(root, "sleep 0.2", 5)) for _ in range(2)]
    await asyncio.sleep(0.05)
    waited = await pool.run_tactic(root, "x", 5)  # both slots busy: it waits for the first free one
    assert isinstance(waited, Progress)
    await asyncio.gather(*busy)


async def test_replays_count_against_the_deadline():
    pool = Memory(2, replay_s=1.0)
    root = await pool.start(THEOREM)
    step = await pool.run_tactic(root, "a", 5)
    deep = await pool.run_tactic(step.state, "b", 5)
    async with pool._slots[deep.state.handle.slot].lock:  # the other slot must replay (2 s)
        started = time.monotonic()
        result = await pool.run_tactic(deep.state, "c", 0.3)
    assert result == TimedOut(0.3) and time.monotonic() - started < 0.3 + pool.grace + 0.3
    assert pool.restarts == 1


async def test_a_crash_restarts_bumps_the_generation_and_retries_once():
    pool = Memory(1)
    root = await pool.start(THEOREM)
    step = await pool.run_tactic(root, "a", 5)
    result = await pool.run_tactic(step.state, "crash", 5)
    assert isinstance(result, Failed) and "crashed twice" in result.message
    assert pool.restarts == 2 and pool._slots[0].generation == 2
    # the old state's id is not trusted in the new generation: it is replayed
    again = await pool.run_tactic(step.state, "b", 5)
    assert isinstance(again, Progress) and pool.replayed[-1] == (0, ("a",))


async def test_restarts_are_charged_to_the_calling_search():
    pool = Memory(2)

    async def search(tactic: str) -> int:
        with metered() as usage:
            root = await pool.start(THEOREM)
            for _ in range(3):
                await pool.run_tactic(root, tactic, 0.05)
        return usage.restarts

    noisy, quiet = await asyncio.gather(search("sleep 1"), search("x"))
    assert noisy == 3 and quiet == 0 and pool.restarts == 3


async def test_a_step_cancelled_midway_ends_its_session():
    """The answer still in flight must never be read as the next call's answer."""
    pool = Memory(1)
    root = await pool.start(THEOREM)
    busy = asyncio.create_task(pool.run_tactic(root, "sleep 5", 10))
    await asyncio.sleep(0.05)
    busy.cancel()
    await asyncio.gather(busy, return_exceptions=True)
    slot = pool._slots[0]
    assert not slot.alive and slot.generation == 1 and pool.restarts == 0
    again = await pool.run_tactic(root, "x", 5)  # replayed on a fresh session
    assert isinstance(again, Progress) and pool.replayed == [(0, ())]
