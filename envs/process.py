"""A proof-assistant child process: start, kill with its children, cap its memory.

Every backend that talks to a program over stdin/stdout builds on `ChildProcess`.
The process runs in its own session so a kill reaches the whole tree (`lake exe repl`
starts the REPL as a grandchild). Children never outlive us:
- the child asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`, Linux);
- a tiny watchdog (`sh`) holds a pipe from us and kills the child's whole process group when
  that pipe closes, which happens whenever we die, even by SIGKILL: this reaches
  grandchildren, which the parent-death signal does not.
With a memory cap, a watcher samples the tree's RSS while the process lives and kills it at the
cap; the request in flight then fails with `MemoryCapExceeded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from envs.types import EnvError, EnvSetupError

log = logging.getLogger(__name__)

STREAM_LIMIT = 1 << 26  # one REPL answer may be a long pretty-printed JSON line


T = TypeVar("T")
MEMORY_POLL_S = 0.2  # how often a capped process's RSS is sampled
_PR_SET_PDEATHSIG = 1


class ProcessDied(EnvError):
    """The child exited or closed its output."""


class ProtocolError(ProcessDied):
    """The child answered something we cannot read: its session is no longer trusted."""


class MemoryCapExceeded(ProcessDied):
    """The child was killed because its memory (with its descendants) passed the cap."""


def _die_with_parent(parent: int) -> None:
    """In the forked child, before exec: SIGKILL when the parent dies (no-op off Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _child_options() -> dict[str, object]:
    parent = os.getpid()
    return {"start_new_session": True, "preexec_fn": lambda: _die_with_parent(parent)}


class ChildProcess:
    """One running program. Not safe for concurrent requests: callers hold a lock."""

    def __init__(
        self, argv: Sequence[str], cwd: Path | None, setup_hint: str, memory_limit_mb: int | None = None
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.setup_hint = setup_hint
        self.memory_limit_mb = memory_limit_mb
        self.proc: asyncio.subprocess.Process | None = None
        self._stderr_tail: list[str] = []
        self._stderr_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.subprocess.Process | None = None
        self._memory_task: asyncio.Task[None] | None = None
        self.killed_for: str | None = None  # why the memory watcher killed it

    async def start(self) -> None:
        if not self.argv:
            raise EnvSetupError(f"empty command. {self.setup_hint}")
        exe = self.argv[0]
        if shutil.which(exe) is None and not Path(exe).exists():
            raise EnvSetupError(f"`{exe}` was not found on PATH. {self.setup_hint}")
        if self.cwd is not None and not self.cwd.is_dir():
            raise EnvSetupError(f"working directory {self.cwd} does not exist. {self.setup_hint}")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=self.cwd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=STREAM_LIMIT,
                **_child_options(),  # type: ignore[arg-type]
            )
        except OSError as exc:
            raise EnvSetupError(f"cannot run `{' '.join(self.argv)}`: {exc}. {self.setup_hint}") from exc
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        try:
            await self._start_watchdog(self.proc.pid)
        except BaseException:  # cancelled before anyone holds this process: it must not run on
            await self.kill()
            raise
        if self.memory_limit_mb is not None:
            self._memory_task = asyncio.create_task(self._watch_memory(self.memory_limit_mb))

    async def _start_watchdog(self, pgid: int) -> None:
        """`sh` holding a pipe from us: when our end closes (we died), it kills the child's group."""
        sh = shutil.which("sh")
        if sh is None:
            return
        with contextlib.suppress(OSError):
            self._watchdog = await asyncio.create_subprocess_exec(
                sh,
                "-c",
                "read _; kill -9 -$0",
                str(pgid),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                preexec_fn=os.setpgrp,  # not in our group: a Ctrl-C must not kill it before the child
            )

    async def _watch_memory(self, limit_mb: int) -> None:
        while self.alive:
            rss = self.rss_bytes()
            if rss > limit_mb << 20:
                self.killed_for = f"memory {rss >> 20} MiB over the {limit_mb} MiB cap"
                log.info("killing `%s`: %s", " ".join(self.argv), self.killed_for)
                if self.proc is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                return
            await asyncio.sleep(MEMORY_POLL_S)

    async def _drain_stderr(self) -> None:
        proc = self.proc  # `kill` clears self.proc while this task may still be reading
        assert proc is not None and proc.stderr is not None
        while line := await proc.stderr.readline():
            self._stderr_tail.append(line.decode(errors="replace").rstrip())
            del self._stderr_tail[:-20]

    async def _stderr_drained(self) -> None:
        """After an exit, let the stderr reader take the program's last lines (its error message)."""
        task = self._stderr_task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), 1.0)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def write(self, data: bytes) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None or not self.alive:
            raise self._died()
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            # the pipe broke because the program is exiting: wait for its exit code and last words
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 1.0)
            await self._stderr_drained()
            raise self._died() from exc

    async def readline(self) -> bytes:
        proc = self.proc  # `kill` may clear self.proc while we wait: keep our own reference
        if proc is None or proc.stdout is None:
            raise self._died()
        line = await proc.stdout.readline()
        if not line:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 1.0)
            await self._stderr_drained()
            raise self._died()
        return line

    async def read_until(self, marker: bytes) -> bytes:
        proc = self.proc  # `kill` may clear self.proc while we wait: keep our own reference
        if proc is None or proc.stdout is None:
            raise self._died()
        try:
            return await proc.stdout.readuntil(marker)
        except asyncio.IncompleteReadError as exc:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), 1.0)
            await self._stderr_drained()
            raise self._died() from exc

    def _died(self) -> ProcessDied:
        if self.killed_for is not None:
            return MemoryCapExceeded(f"`{' '.join(self.argv)}` was killed: {self.killed_for}")
        return ProcessDied(self._death_message())

    def _death_message(self) -> str:
        code = None if self.proc is None else self.proc.returncode
        tail = self.stderr_tail()
        return f"`{' '.join(self.argv)}` exited (code {code})" + (f": {tail}" if tail else "")

    def rss_bytes(self) -> int:
        """Resident memory of the process and all its descendants."""
        if self.proc is None or not self.alive:
            return 0
        return tree_rss(self.proc.pid)

    async def kill(self) -> None:
        proc, self.proc = self.proc, None
        if self._memory_task is not None:
            self._memory_task.cancel()
            self._memory_task = None
        if proc is not None and proc.returncode is None:  # before any await: a cancelled kill still kills
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await self._stop_watchdog()
        if proc is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 5.0)
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._stderr_task
        # close the transport so no pipe outlives the event loop
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()

    async def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        if watchdog.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                watchdog.kill()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(watchdog.wait(), 5.0)
        if watchdog.stdin is not None:
            with contextlib.suppress(Exception):
                watchdog.stdin.close()
        transport = getattr(watchdog, "_transport", None)
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()


def tree_rss(pid: int) -> int:
    """Resident memory of process `pid` and all its descendants (0 if it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def listening_pid(port: int) -> int | None:
    """The local process listening on TCP `port`, if we may see it."""
    import psutil

    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    return None


async def capped(coro: Coroutine[Any, Any, T], pid: int, limit_mb: int, what: str) -> T:
    """`await coro` while sampling the RSS of `pid`'s tree; past `limit_mb`, cancel it and raise
    `MemoryCapExceeded` (for a process we did not start and cannot kill, e.g. a PISA server)."""
    task = asyncio.ensure_future(coro)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=MEMORY_POLL_S)
            if done:
                return task.result()
            rss = tree_rss(pid)
            if rss > limit_mb << 20:
                raise MemoryCapExceeded(f"{what} used {rss >> 20} MiB, over the {limit_mb} MiB cap")
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def run_command(argv: Sequence[str], cwd: Path | None, timeout: float, setup_hint: str) -> tuple[int, str] | None:
    """Run a program to completion: (exit code, stdout+stderr), or None on timeout (it is killed)."""
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        raise EnvSetupError(f"`{argv[0]}` was not found on PATH. {setup_hint}")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        **_child_options(),  # type: ignore[arg-type]
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return None
    except BaseException:  # cancelled: the program must not run on for the rest of its timeout
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode or 0, out.decode(errors="replace")
