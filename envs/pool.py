"""A pool of proof-assistant processes with restart and replay: what every process backend shares.

Each state's `Handle` names the slot that made it, that process's generation, the backend's id
for it, and its tactic path from the theorem's root. The contract with backends:
- a state is not tied to its slot: `run_tactic` runs it on a free slot, preferring the one that
  made it, then one that already knows it (`_affinity`), so N concurrent calls on candidates of
  one state use N processes. `_step(slot, handle, ...)` trusts `handle.ref` only when
  `handle.slot == slot.index and handle.generation == slot.generation`; otherwise it rebuilds
  the state by replaying `handle.path` on that slot, charging `current_usage().replays`;
- the slot's process is (re)started once, before the step (`_ensure_process`); the step never
  restarts it midway, so ids of a dead process are never sent to its successor: a death midway
  is a `ProcessDied` and the step is retried from scratch on the new generation;
- the whole step, replays included, runs under the caller's deadline: `timeout` plus `grace`.
  Backends stop a slow tactic inside the assistant at `timeout` (Coq `Timeout`, Lean heartbeats);
  the deadline kill is the backstop for a process that does not answer.
Recovery lives here, in one place:
- a step past its deadline kills the process; the result is `TimedOut` and the slot restarts;
- a process that dies (or answers something unreadable) is restarted and the tactic retried
  once; twice is a `Failed`; a process killed at the memory cap is a `Failed` at once;
- a process that dies again right after starting is a setup error;
- more than `max_restarts_in_a_row` restarts in a row, with no successful call between them (a crash
  loop), is an `EnvError`; `restarts` counts them all, and each is charged to the calling
  search's `current_usage()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from envs.process import ChildProcess, MemoryCapExceeded, ProcessDied
from envs.types import (
    EnvError,
    EnvSetupError,
    Failed,
    Progress,
    ProofState,
    ReplayFailed,
    TacticResult,
    Theorem,
    TheoremStartError,
    TimedOut,
    current_usage,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handle:
    slot: int
    generation: int
    ref: int  # the backend's id for the state in that generation's process
    theorem: Theorem
    path: tuple[str, ...]

    def child(self, generation: int, ref: int, tactic: str) -> Handle:
        return Handle(self.slot, generation, ref, self.theorem, (*self.path, tactic))


class Slot:
    """One process of the pool. Backends add their caches and clear them in `reset`."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: ChildProcess | None = None
        self.generation = 0
        self.lock = asyncio.Lock()
        self.assigned = 0  # theorems started here; new ones go to the least loaded slot

    def reset(self) -> None:
        """Forget what the old process knew."""


S = TypeVar("S", bound=Slot)
T = TypeVar("T")


async def within(seconds: float, coro: Coroutine[Any, Any, T]) -> T:
    """`await coro`, raising `asyncio.TimeoutError` after `seconds` (no extra task on 3.11+)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, seconds)


class ProcessPool(Generic[S]):
    """Base of the process-backed `ProofEnv`s. Subclasses implement `_check`, `_open`, `_step`."""

    name = "proof assistant"
    setup_hint = ""
    grace = 5.0  # seconds past a tactic's timeout before the process is killed

    def __init__(self, slots: list[S], max_restarts_in_a_row: int) -> None:
        self._slots = slots
        self.max_restarts_in_a_row = max_restarts_in_a_row
        self.restarts = 0
        self._in_a_row = 0  # restarts since the last successful call
        self._released = asyncio.Event()  # set whenever a slot is let go

    @property
    def size(self) -> int:
        """Processes (or server sessions) in the pool."""
        return len(self._slots)

    # ---- backend hooks

    def _check(self, tactic: str) -> str | None:
        """Why `tactic` must not reach the assistant, or None."""
        raise NotImplementedError

    async def _open(self, slot: S, theorem: Theorem) -> tuple[int, tuple[str, ...]]:
        """Start `theorem` in the slot's process: (state id, goals)."""
        raise NotImplementedError

    async def _step(self, slot: S, handle: Handle, tactic: str, timeout: float) -> TacticResult:
        """Run `tactic` from `handle`'s state on `slot`, which need not be `handle.slot`: trust
        `handle.ref` only if `handle.slot == slot.index and handle.generation == slot.generation`,
        else replay `handle.path` here. Never restarts the process (raise `ProcessDied` instead)."""
        raise NotImplementedError

    async def _ensure_process(self, slot: S) -> object:
        """Make the slot's session live, (re)starting it first if needed."""
        raise NotImplementedError

    async def _prepare(self, slot: S, handle: Handle) -> None:
        """Set the live session up for `handle`'s theorem before the step's deadline starts
        (e.g. load its header); replays of the state itself belong to the step."""

    def _affinity(self, slot: S, handle: Handle) -> int:
        """How cheaply `slot` can run `handle`'s state: 2 knows it, 1 knows part of its path, 0 replays it."""
        return 2 if handle.slot == slot.index and handle.generation == slot.generation else 0

    # ---- slots

    def _choose(self, handle: Handle) -> S | None:
        """The best free slot for `handle`'s state, or None when all are busy."""
        free = [s for s in self._slots if not s.lock.locked()]
        if not free:
            return None
        return max(free, key=lambda s: (self._affinity(s, handle), s.index == handle.slot, -s.assigned, -s.index))

    @contextlib.asynccontextmanager
    async def _using(self, slot: S) -> AsyncIterator[S]:
        """Hold `slot` (waiting for it), and tell waiters when it is free again."""
        async with slot.lock:
            try:
                yield slot
            finally:
                self._released.set()

    @contextlib.asynccontextmanager
    async def _any_slot(self, handle: Handle) -> AsyncIterator[S]:
        """Hold the best free slot for `handle`'s state, waiting until one is free."""
        while (slot := self._choose(handle)) is None:
            self._released.clear()
            await self._released.wait()
        async with self._using(slot):
            yield slot

    # ---- shared machinery

    async def _drop_session(self, slot: S) -> None:
        """End the slot's session: its process (if any) and every state id it handed out.
        The slot forgets the process before the first await, so a cancelled drop leaves no stale ids."""
        process, slot.process = slot.process, None
        slot.generation += 1
        slot.reset()
        if process is not None:
            await process.kill()

    async def _restart(self, slot: S, why: str) -> None:
        self.restarts += 1
        current_usage().restarts += 1  # charged to the search whose call caused it
        self._in_a_row += 1
        log.info("restarting %s %d: %s", self.name, slot.index, why)
        await self._drop_session(slot)
        if self._in_a_row > self.max_restarts_in_a_row:
            limit = self.max_restarts_in_a_row
            raise EnvError(f"the {self.name} was restarted more than {limit} times in a row; last: {why}")

    async def start(self, theorem: Theorem) -> ProofState:
        slot = min(self._slots, key=lambda s: (s.assigned, s.lock.locked(), s.index))
        slot.assigned += 1
        async with self._using(slot):
            try:
                ref, goals = await self._open(slot, theorem)
            except asyncio.CancelledError:
                await self._drop_session(slot)  # its answer in flight would be read by the next call
                raise
            except (ProcessDied, asyncio.TimeoutError) as exc:
                await self._restart(slot, f"while starting {theorem.name}: {exc or 'timeout'}")
                try:
                    ref, goals = await self._open(slot, theorem)
                except MemoryCapExceeded as again:  # installed fine: the cap is too low for it
                    raise EnvSetupError(
                        f"the {self.name} needs more memory than --memory-limit-mb allows to start: {again}"
                    ) from again
                except ProcessDied as again:
                    raise EnvSetupError(
                        f"the {self.name} exits right after starting: {again}. {self.setup_hint}"
                    ) from again
                except asyncio.TimeoutError as again:
                    await self._restart(slot, f"starting {theorem.name} timed out twice")
                    raise TheoremStartError(f"{theorem.name}: the {self.name} did not start it in time") from again
        self._in_a_row = 0
        return ProofState(goals, Handle(slot.index, slot.generation, ref, theorem, ()))

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float) -> TacticResult:
        reason = self._check(tactic)
        if reason is not None:
            return Failed(f"rejected: {reason}")
        handle = state.handle
        if not isinstance(handle, Handle) or not 0 <= handle.slot < len(self._slots):
            raise EnvError(f"this proof state does not belong to this {self.name} env")
        async with self._any_slot(handle) as slot:
            for attempt in (1, 2):
                try:
                    # a process that died since the last call is restarted before ids are trusted;
                    # from here on the generation is fixed: a death midway raises, never restarts
                    await self._ensure_process(slot)
                    await self._prepare(slot, handle)
                    result = await within(timeout + self.grace, self._step(slot, handle, tactic, timeout))
                    self._in_a_row = 0
                    if isinstance(result, Progress) and result.state.handle.slot != slot.index:
                        made = dataclasses.replace(result.state.handle, slot=slot.index)
                        result = Progress(ProofState(result.state.goals, made))
                    return result
                except asyncio.CancelledError:
                    # the caller gave up midway: the answer in flight would be read by the next call
                    await self._drop_session(slot)
                    raise
                except asyncio.TimeoutError:
                    await self._restart(slot, f"no answer {timeout + self.grace:g}s into a {timeout:g}s tactic")
                    return TimedOut(timeout)
                except ReplayFailed as exc:
                    log.warning("%s", exc)
                    return Failed(str(exc))
                except MemoryCapExceeded as exc:
                    await self._restart(slot, str(exc))
                    return Failed(f"the {self.name} ran out of memory on this tactic: {exc}")
                except ProcessDied as exc:
                    await self._restart(slot, str(exc))
                    if attempt == 2:
                        return Failed(f"the {self.name} crashed twice running this tactic: {exc}")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for slot in self._slots:
            if slot.process is not None:
                await slot.process.kill()
                slot.process = None
