"""Tactic round-trip latency through the Coq backend vs. talking to coqidetop directly.

Both sides send the same sentences to a fresh `coqidetop.opt -main-channel stdfds`: go back
to the theorem's root state, add one tactic, ask for the goals. The direct client is the
minimum (raw bytes, no parsing beyond finding the answer's end); the ratio is the backend's
overhead (guard, XML parsing, goal rendering, bookkeeping). Needs Coq.

    python benchmarks/coq_roundtrip.py [--rounds 300]
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


async def through_backend(rounds: int) -> list[float]:
    env = CoqIde()
    try:
        root = await env.start(THEOREM)
        times = []
        for i in range(rounds):
            t = time.perf_counter()
            result = await env.run_tactic(root, TACTICS[i % len(TACTICS)], 30)
            times.append(time.perf_counter() - t)
            assert isinstance(result, Progress), result
        return times
    finally:
        await env.close()


async def direct(rounds: int) -> list[float]:
    child = ChildProcess(["coqidetop.opt", "-main-channel", "stdfds"], None, "install coq")
    await child.start()

    async def call(data: bytes) -> bytes:
        await child.write(data + b"\n")
        return await child.read_until(b"</value>")

    def state_id(answer: bytes, after: bytes) -> int:
        i = answer.index(after) + len(after)
        return int(answer[i:].split(b'"', 2)[1])

    try:
        await call(b'<call val="Init"><option val="none"/></call>')
        sid = 1
        for sentence in ["Require Import Arith.", THEOREM.statement, "Proof."]:
            sid = state_id(await call(add_call(sentence, sid)), b"<state_id val=")
        root = sid
        times = []
        for i in range(rounds):
            t = time.perf_counter()
            await call(f'<call val="Edit_at"><state_id val="{root}"/></call>'.encode())
            await call(add_call(TACTICS[i % len(TACTICS)] + ".", root))
            answer = await call(b'<call val="Goal"><unit/></call>')
            times.append(time.perf_counter() - t)
            assert b"<goals>" in answer
        return times
    finally:
        await child.kill()


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
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    raw = describe("direct", asyncio.run(direct(args.rounds)))
    ours = describe("backend", asyncio.run(through_backend(args.rounds)))
    print(f"backend / direct latency ratio: {ours / raw:.2f}")


if __name__ == "__main__":
    main()
