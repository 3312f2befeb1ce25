"""A pool of proof-assistant processes with restart and replay: what every process backend shares.

Each state's `Handle` names its slot, the process generation it was made in, the backend's id
for it, and its tactic path from the theorem's root. After a restart (timeout, crash, memory
cap) the generation changes and the backend rebuilds the state by replaying the path.
Recovery lives here, in one place:
- a tactic that times out kills the process; the result is `TimedOut` and the slot restarts;
- a process that dies is restarted and the tactic retried once; twice is a `Failed`;
- a process that dies again right after starting is a setup error;
- more than `max_restarts` restarts in a row, with no successful call between them (a crash
  loop), is an `EnvError`; `restarts` counts them all, for budgets.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Generic, TypeVar

from envs.process import ChildProcess, ProcessDied
from envs.types import (
    EnvError,
    EnvSetupError,
    Failed,
    ProofState,
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


class ProcessPool(Generic[S]):
    """Base of the process-backed `ProofEnv`s. Subclasses implement `_check`, `_open`, `_step`."""

    name = "proof assistant"
    setup_hint = ""

    def __init__(self, slots: list[S], max_restarts: int) -> None:
        self._slots = slots
        self.max_restarts = max_restarts
        self.restarts = 0
        self._in_a_row = 0  # restarts since the last successful call

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
        """Run `tactic` from `handle`'s state (replaying its path if needed)."""
        raise NotImplementedError

    async def _ensure_process(self, slot: S) -> object:
        """Make the slot's session live, (re)starting it first if needed."""
        raise NotImplementedError

    # ---- shared machinery

    async def _drop_session(self, slot: S) -> None:
        """End the slot's session: its process (if any) and every state id it handed out."""
        if slot.process is not None:
            await slot.process.kill()
        slot.process = None
        slot.generation += 1
        slot.reset()

    async def _restart(self, slot: S, why: str) -> None:
        self.restarts += 1
        current_usage().restarts += 1  # charged to the search whose call caused it
        self._in_a_row += 1
        log.info("restarting %s %d: %s", self.name, slot.index, why)
        await self._drop_session(slot)
        if self._in_a_row > self.max_restarts:
            raise EnvError(f"the {self.name} was restarted more than {self.max_restarts} times in a row; last: {why}")

    async def start(self, theorem: Theorem) -> ProofState:
        slot = min(self._slots, key=lambda s: (s.assigned, s.index))
        slot.assigned += 1
        async with slot.lock:
            try:
                ref, goals = await self._open(slot, theorem)
            except (ProcessDied, asyncio.TimeoutError) as exc:
                await self._restart(slot, f"while starting {theorem.name}: {exc or 'timeout'}")
                try:
                    ref, goals = await self._open(slot, theorem)
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
        slot = self._slots[handle.slot]
        async with slot.lock:
            for attempt in (1, 2):
                try:
                    # a process that died since the last call is restarted before ids are trusted
                    await self._ensure_process(slot)
                    result = await self._step(slot, handle, tactic, timeout)
                    self._in_a_row = 0
                    return result
                except asyncio.TimeoutError:
                    await self._restart(slot, f"tactic timed out after {timeout:g}s")
                    return TimedOut(timeout)
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
