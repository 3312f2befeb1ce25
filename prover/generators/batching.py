"""Batching across searches: gather the requests of many concurrent searches for a few
milliseconds (or until `max_batch` states wait) and send them to the backend as one call.

Requests with different `n` are sent as separate calls. Errors reach every waiting caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from envs.types import ProofState
from search.best_first import Suggestion, TacticGenerator


@dataclass
class _Request:
    states: Sequence[ProofState]
    n: int
    future: asyncio.Future[list[list[Suggestion]]]


class BatchingGenerator:
    def __init__(self, inner: TacticGenerator, max_batch: int = 32, max_wait: float = 0.005) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: list[_Request] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.backend_calls = 0

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run())
        request = _Request(states, n, loop.create_future())
        self._queue.append(request)
        assert self._wakeup is not None
        self._wakeup.set()
        return await request.future

    def _waiting(self) -> int:
        return sum(len(r.states) for r in self._queue)

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while self._waiting() < self.max_batch:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                    self._wakeup.clear()
                except asyncio.TimeoutError:
                    break
            batch, self._queue = self._queue, []
            for n in sorted({r.n for r in batch}):
                chunk: list[_Request] = []
                for r in (r for r in batch if r.n == n):
                    if chunk and sum(len(c.states) for c in chunk) + len(r.states) > self.max_batch:
                        await self._send(chunk, n)
                        chunk = []
                    chunk.append(r)
                await self._send(chunk, n)

    async def _send(self, group: list[_Request], n: int) -> None:
        states = [s for r in group for s in r.states]
        try:
            self.backend_calls += 1
            results = await self.inner.generate(states, n)
        except Exception as exc:  # every caller learns of the failure
            for r in group:
                if not r.future.done():
                    r.future.set_exception(exc)
            return
        i = 0
        for r in group:
            if not r.future.done():
                r.future.set_result(results[i : i + len(r.states)])
            i += len(r.states)

    def reseed(self, seed: int) -> None:
        reseed = getattr(self.inner, "reseed", None)
        if reseed is not None:
            reseed(seed)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()
