"""A proof-assistant child process: start, kill with its children, measure memory.

Every backend that talks to a program over stdin/stdout builds on `ChildProcess`.
The process runs in its own session so a kill reaches the whole tree (`lake exe repl`
starts the REPL as a grandchild).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

from envs.types import EnvError, EnvSetupError

log = logging.getLogger(__name__)

STREAM_LIMIT = 1 << 26  # one REPL answer may be a long pretty-printed JSON line


class ProcessDied(EnvError):
    """The child exited or closed its output."""


class ChildProcess:
    """One running program. Not safe for concurrent requests: callers hold a lock."""

    def __init__(self, argv: Sequence[str], cwd: Path | None, setup_hint: str) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.setup_hint = setup_hint
        self.proc: asyncio.subprocess.Process | None = None
        self._stderr_tail: list[str] = []
        self._stderr_task: asyncio.Task[None] | None = None

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
                start_new_session=True,
                limit=STREAM_LIMIT,
            )
        except OSError as exc:
            raise EnvSetupError(f"cannot run `{' '.join(self.argv)}`: {exc}. {self.setup_hint}") from exc
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self._stderr_tail.append(line.decode(errors="replace").rstrip())
            del self._stderr_tail[:-20]

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def write(self, data: bytes) -> None:
        if self.proc is None or self.proc.stdin is None or not self.alive:
            raise ProcessDied(self._death_message())
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ProcessDied(self._death_message()) from exc

    async def readline(self) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 1.0)
            raise ProcessDied(self._death_message())
        return line

    async def read_until(self, marker: bytes) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            return await self.proc.stdout.readuntil(marker)
        except asyncio.IncompleteReadError as exc:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 1.0)
            raise ProcessDied(self._death_message()) from exc

    def _death_message(self) -> str:
        code = None if self.proc is None else self.proc.returncode
        tail = self.stderr_tail()
        return f"`{' '.join(self.argv)}` exited (code {code})" + (f": {tail}" if tail else "")

    def rss_bytes(self) -> int:
        """Resident memory of the process and all its descendants."""
        if self.proc is None or not self.alive:
            return 0
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    async def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
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
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return None
    return proc.returncode or 0, out.decode(errors="replace")
