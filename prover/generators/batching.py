"""Batching across callers: gather the requests of many concurrent searches (or editor requests)
for a few milliseconds (or until `max_batch` items wait) and send them to the backend as one call.

`Batcher` is the mechanism, over any item type; `BatchingGenerator` applies it to a
`TacticGenerator` (the searches), and the suggestion server applies it to editor requests.
Requests with different `n` are sent as separate calls. Errors reach every waiting caller.
A caller that is cancelled while its request waits takes the request out of the queue: only
live requests reach the backend. With `max_pending`, a full queue refuses new work at once
(`QueueFull`) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from envs.types import ProofState, Suggestion, SuggestRequest, TacticGenerator

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(RuntimeError):
    """More items wait than the batcher's `max_pending`: try again later."""


@dataclass
class _Request(Generic[T, R]):
    items: Sequence[T]
    n: int
    future: asyncio.Future[list[R]]


class Batcher(Generic[T, R]):
    """One backend call `call(items, n) -> one result per item` for the requests waiting.

    `max_wait` is how long the first waiting request holds the call open for others; 0 sends
    what has arrived by the next turn of the event loop (requests that arrive while a call runs
    still go together in the next one). `adaptive` is for callers that wait for their answer
    before asking again (editors): a lone caller is sent at once; after calls that served
    several, a free backend waits while callers keep coming back (a short quiet gap ends the
    wait), so callers that return at slightly different times go together again instead of
    splitting into groups that take turns with the backend.
    """

    def __init__(
        self,
        call: Callable[[list[T], int], Awaitable[list[R]]],
        max_batch: int = 32,
        max_wait: float = 0.005,
        max_pending: int | None = None,
        adaptive: bool = False,
    ) -> None:
        self.call = call
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_pending = max_pending
        self.adaptive = adaptive
        self._recent: deque[int] = deque(maxlen=8)  # items per call, latest calls
        self._durations: deque[float] = deque(maxlen=8)  # seconds per call, latest calls
        self._queue: list[_Request[T, R]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.backend_calls = 0

    @property
    def pending(self) -> int:
        """Items waiting for a backend call (not those in one)."""
        return sum(len(r.items) for r in self._queue if not r.future.done())

    async def submit(self, items: Sequence[T], n: int) -> list[R]:
        if self.max_pending is not None and self.pending + len(items) > self.max_pending:
            raise QueueFull(f"{self.pending} requests are waiting (the limit is {self.max_pending})")
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run())
        request: _Request[T, R] = _Request(items, n, loop.create_future())
        self._queue.append(request)
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return await request.future
        except asyncio.CancelledError:
            if request in self._queue:  # still waiting: it never reaches the backend
                self._queue.remove(request)
            raise

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.adaptive:
                await self._gather_returning_callers(loop)
            elif self.max_wait > 0:
                deadline = loop.time() + self.max_wait
                while self.pending < self.max_batch:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                        self._wakeup.clear()
                    except asyncio.TimeoutError:
                        break
            else:
                await asyncio.sleep(0)  # what arrived in this turn of the loop goes together
            batch, self._queue = [r for r in self._queue if not r.future.done()], []
            for n in sorted({r.n for r in batch}):
                chunk: list[_Request[T, R]] = []
                for r in (r for r in batch if r.n == n):
                    if chunk and sum(len(c.items) for c in chunk) + len(r.items) > self.max_batch:
                        await self._send(chunk, n)
                        chunk = []
                    chunk.append(r)
                await self._send(chunk, n)

    async def _gather_returning_callers(self, loop: asyncio.AbstractEventLoop) -> None:
        """Adaptive mode: after calls that served several callers, wait while they keep coming back:
        for the first (a client's round trip), then until none arrives for a tenth of a call; at
        most half a call (or `max_wait`) in all."""
        assert self._wakeup is not None
        if max(self._recent, default=1) <= 1:
            await asyncio.sleep(0)  # one caller at a time: nobody to wait for
            return
        call = max(self._durations, default=0.0)
        deadline = loop.time() + max(self.max_wait, 0.5 * call)
        quiet = max(self.max_wait / 4, 0.1 * call)
        arrived = False
        while self.pending < self.max_batch:
            remaining = deadline - loop.time()
            if arrived:
                remaining = min(remaining, quiet)
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
                self._wakeup.clear()
                arrived = True
            except asyncio.TimeoutError:
                break
        if not arrived:  # nobody came back: stop waiting for them
            self._recent.clear()

    async def _send(self, group: list[_Request[T, R]], n: int) -> None:
        group = [r for r in group if not r.future.done()]  # cancelled while an earlier chunk ran
        if not group:
            return
        items = [s for r in group for s in r.items]
        self._recent.append(len(items))
        try:
            self.backend_calls += 1
            started = time.monotonic()
            results = await self.call(items, n)
            self._durations.append(time.monotonic() - started)
        except Exception as exc:  # every caller learns of the failure
            for r in group:
                if not r.future.done():
                    r.future.set_exception(exc)
            return
        i = 0
        for r in group:
            if not r.future.done():
                r.future.set_result(results[i : i + len(r.items)])
            i += len(r.items)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for r in self._queue:
            if not r.future.done():
                r.future.cancel()
        self._queue = []


class BatchingGenerator:
    """A `TacticGenerator` whose concurrent `generate` calls share backend calls."""

    def __init__(self, inner: TacticGenerator, max_batch: int = 32, max_wait: float = 0.005) -> None:
        self.inner = inner
        self._batcher: Batcher[ProofState, list[Suggestion]] = Batcher(inner.generate, max_batch, max_wait)

    @property
    def backend_calls(self) -> int:
        return self._batcher.backend_calls

    @property
    def max_batch(self) -> int:
        return self._batcher.max_batch

    @property
    def max_wait(self) -> float:
        return self._batcher.max_wait

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
        return await self._batcher.submit(states, n)

    def load(self) -> None:
        self.inner.load()

    async def suggest_many(self, requests: Sequence[SuggestRequest], n: int) -> list[list[Suggestion]]:
        return await self.inner.suggest_many(requests, n)

    def reseed(self, seed: int) -> None:
        self.inner.reseed(seed)

    async def close(self) -> None:
        """Stop batching, then close the wrapped generator."""
        await self._batcher.aclose()
        await self.inner.close()

    async def aclose(self) -> None:
        """Old name of `close`."""
        await self.close()
