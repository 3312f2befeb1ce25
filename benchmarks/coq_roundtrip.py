"""Tactic round-trip latency through the Coq backend vs. talking to coqidetop directly.

Both sides send the same sentences to a fresh `coqidetop.opt -main-channel stdfds`: go back
to the theorem's root state, add one tactic, ask for the goals. The direct client is the
minimum (raw bytes, no parsing beyond finding the answer's end); the ratio is the backend's
overhead (guard, XML parsing, goal rendering, bookkeeping). Needs Coq.

    python -m benchmarks.coq_roundtrip [--rounds 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from envs.coq import CoqIde, add_call
from envs.process import ChildProcess
from envs.types import Progress, Theorem

THEOREM = Theorem(
    "add_zero", "Theorem add_zero : forall n m : nat, n + 0 + m = m + n.", "Require Import Arith.\n", "coq"
)
TACTICS = ["intros n m", "intros", "simpl", "intros n"]


class Direct:
    """A minimal raw-bytes client of coqidetop: the floor the backend is measured against."""

    def __init__(self) -> None:
        self.child = ChildProcess(["coqidetop.opt", "-main-channel", "stdfds"], None, "install coq")
        self.root = 0

    async def call(self, data: bytes) -> bytes:
        await self.child.write(data + b"\n")
        return await self.child.read_until(b"</value>")

    async def start(self) -> None:
        await self.child.start()
        await self.call(b'<call val="Init"><option val="none"/></call>')
        sid = 1
        for sentence in ["Require Import Arith.", THEOREM.statement, "Proof."]:
            answer = await self.call(add_call(sentence, sid))
            i = answer.index(b"<state_id val=") + len(b"<state_id val=")
            sid = int(answer[i:].split(b'"', 2)[1])
        self.root = sid

    async def round(self, tactic: str) -> None:
        await self.call(f'<call val="Edit_at"><state_id val="{self.root}"/></call>'.encode())
        await self.call(add_call(tactic + ".", self.root))
        assert b"<goals>" in await self.call(b'<call val="Goal"><unit/></call>')


async def measure(rounds: int) -> tuple[list[float], list[float]]:
    """Alternate the two clients round by round, so both see the same machine."""
    direct, env = Direct(), CoqIde()
    await direct.start()
    try:
        root = await env.start(THEOREM)
        raw, ours = [], []
        for i in range(rounds):
            tactic = TACTICS[i % len(TACTICS)]
            t = time.perf_counter()
            await direct.round(tactic)
            raw.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = await env.run_tactic(root, tactic, 30)
            ours.append(time.perf_counter() - t)
            assert isinstance(result, Progress), result
        return raw, ours
    finally:
        await env.close()
        await direct.child.kill()


def describe(name: str, times: list[float]) -> float:
    mean = statistics.fmean(times)
    p50 = statistics.median(times)
    p95 = sorted(times)[int(0.95 * len(times)) - 1]
    print(
        f"{name:<10} mean {mean * 1e3:7.3f} ms  p50 {p50 * 1e3:7.3f} ms  p95 {p95 * 1e3:7.3f} ms  "
        f"throughput {1 / mean:8.1f} tactics/s"
    )
    return mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1000)
    args = ap.parse_args()
    raw_times, our_times = asyncio.run(measure(args.rounds))
    raw = describe("direct", raw_times)
    ours = describe("backend", our_times)
    print(f"backend / direct latency ratio: {ours / raw:.2f} (rounds alternate between the two clients)")


if __name__ == "__main__":
    main()
