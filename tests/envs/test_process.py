"""Child processes: they die with their parent, and the memory cap is enforced while a request runs."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from envs.process import ChildProcess, MemoryCapExceeded, ProcessDied
from tests.conftest import ROOT

# A parent that starts children through ChildProcess and prints their pids, then waits forever.
PARENT = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {root!r})
    from envs.process import ChildProcess

    async def main():
        children = []
        for argv in {argvs!r}:
            child = ChildProcess(argv, None, "")
            await child.start()
            children.append(child)
        print(" ".join(str(c.proc.pid) for c in children), flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _descendants(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_children_and_grandchildren_die_with_the_parent(sig):
    loop = [sys.executable, "-c", "while True: pass"]
    # `sh` starts the looping python as a grandchild of the parent, as `lake exe repl` does
    nested = ["sh", "-c", f"{sys.executable} -c 'import time; time.sleep(3600)' & wait"]
    argvs = [loop, nested]
    script = PARENT.format(root=str(ROOT), argvs=argvs)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        deadline = time.monotonic() + 10
        while not _descendants(pids[1]) and time.monotonic() < deadline:
            time.sleep(0.05)
        grandchildren = _descendants(pids[1])
        assert grandchildren, "the nested child did not start its own child"
        parent.send_signal(sig)
        parent.wait(10)
        for pid in (*pids, *grandchildren):
            assert _gone(pid), f"process {pid} outlived its parent ({sig.name})"
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.skipif(shutil.which("coqidetop.opt") is None, reason="needs Coq")
def test_a_looping_coqidetop_dies_with_the_parent():
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        from envs.coq import CoqIde
        from envs.types import Theorem

        async def main():
            env = CoqIde()
            state = await env.start(Theorem("t", "Theorem t : True.", "", "coq"))
            print(env._slots[0].process.proc.pid, flush=True)
            await env.run_tactic(state, "repeat (pose proof I)", 3600)

        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        time.sleep(1.0)  # coqidetop is now looping in the tactic
        assert psutil.Process(pid).cpu_percent(interval=0.5) > 20
        parent.kill()
        parent.wait(10)
        assert _gone(pid), "coqidetop outlived the killed prover"
    finally:
        parent.kill()
        parent.wait()


async def test_memory_cap_is_enforced_while_a_request_runs():
    # reads a line, then grows by 20 MiB every 50 ms without ever answering
    grow = "import sys, time\nsys.stdin.readline()\nx = []\nwhile True:\n    x.append(bytearray(20 << 20))\n"
    grow += "    time.sleep(0.05)\n"
    child = ChildProcess([sys.executable, "-c", grow], None, "", memory_limit_mb=150)
    await child.start()
    try:
        await child.write(b"go\n")
        started = time.monotonic()
        with pytest.raises(MemoryCapExceeded, match="150 MiB cap"):
            await asyncio.wait_for(child.readline(), 30)
        assert time.monotonic() - started < 10
        assert child.killed_for is not None
    finally:
        await child.kill()


async def test_an_uncapped_child_that_exits_is_process_died():
    child = ChildProcess([sys.executable, "-c", "pass"], None, "")
    await child.start()
    try:
        with pytest.raises(ProcessDied) as info:
            await child.readline()
        assert not isinstance(info.value, MemoryCapExceeded)
    finally:
        await child.kill()


async def test_kill_leaves_no_process_behind():
    child = ChildProcess([sys.executable, "-c", "import time; time.sleep(3600)"], None, "")
    await child.start()
    pid = child.proc.pid
    watchdog = child._watchdog
    assert watchdog is not None and watchdog.returncode is None
    await child.kill()
    assert _gone(pid) and _gone(watchdog.pid)


async def test_a_read_interrupted_by_a_kill_is_a_process_death():
    """Another task killing the process while a read waits gives ProcessDied, never an AttributeError."""
    child = ChildProcess([sys.executable, "-c", "import time; time.sleep(60)"], None, "")
    await child.start()
    read = asyncio.create_task(child.read_until(b"</value>"))
    await asyncio.sleep(0.2)
    await child.kill()
    with pytest.raises(ProcessDied):
        await read
    for again in (child.read_until(b"</value>"), child.readline()):
        with pytest.raises(ProcessDied):
            await again


async def test_a_cancelled_run_command_leaves_no_process_behind(tmp_path):
    """A check cancelled while `coqc` runs must not leave it running (for up to the check's timeout)."""
    from envs.process import run_command

    task = asyncio.create_task(run_command(["sleep", "60"], tmp_path, 120, ""))
    pid = None
    for _ in range(100):
        await asyncio.sleep(0.05)
        found = [p for p in psutil.Process().children() if p.name() == "sleep"]
        if found:
            pid = found[0].pid
            break
    assert pid is not None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_start_cancelled_midway_leaves_no_process_behind(monkeypatch):
    """Cancelled after the program started but before `start` returned: nobody holds it, so `start` kills it."""
    child = ChildProcess(["sleep", "60"], None, "")
    original = ChildProcess._start_watchdog
    reached = asyncio.Event()

    async def slow_watchdog(self, pgid):  # type: ignore[no-untyped-def]
        reached.set()
        await asyncio.sleep(5)
        await original(self, pgid)

    monkeypatch.setattr(ChildProcess, "_start_watchdog", slow_watchdog)
    task = asyncio.create_task(child.start())
    await asyncio.wait_for(reached.wait(), 10)
    pid = child.proc.pid
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
