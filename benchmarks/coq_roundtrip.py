"""Tactic latency through the Coq backend vs. a minimal raw coqidetop client on the same bytes.

Workload: a realistic mix on `Require Import Arith Lia.` — progress, failures (an error leaves a
dirty sentence to edit away), branching back to earlier states, replays (a state whose sentences
left the document is rebuilt), and proofs (`Qed` after no goals). Each repetition starts two fresh
`coqidetop.opt -main-channel stdfds` processes. The backend (`envs.coq.CoqIde`) runs the workload
through `run_tactic`; the raw client (asyncio subprocess streams, no code of ours) sends exactly the
bytes the backend sent for that tactic, in the same batches, and reads the answers with
`readuntil(b"</value>")`, checking only `val="good"`/`val="fail"`. The bytes are recorded in a warm-up
repetition, and every measured repetition checks that the backend sent the same bytes again
(coqidetop numbers states deterministically), so both sides do the same protocol work and the
ratio is the backend's own cost: guard, parsing, goal rendering, bookkeeping, pool, timeouts.
Per tactic the two sides alternate which goes first. Reported: median and p95 per-tactic latency
over all measured repetitions, and their ratios. Needs Coq.

`--interrupts` also times how a slow tactic is stopped: Coq's `Timeout` wrapper (the backend's
choice) vs. SIGINT to coqidetop (CoqIDE's interrupt), on `do 100000000 idtac` with a 1 s budget.

`--verify N` times N verifications of one proof under a miniF2F-rocq-like header: the warm
verifier (first call, then median) vs a fresh `coqc` each time.

    python -m benchmarks.coq_roundtrip [--repetitions 5] [--rounds 40] [--interrupts] [--verify 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import time
from collections.abc import Sequence

from envs.coq import CoqConfig, CoqIde
from envs.types import Failed, Progress, ProofState, Proved, Theorem

CMD = ("coqidetop.opt", "-main-channel", "stdfds")
THEOREM = Theorem(
    "add_zero", "Theorem add_zero : forall n m : nat, n + 0 + m = m + n.", "Require Import Arith Lia.\n", "coq"
)


class Raw:
    """A minimal coqidetop client: write bytes, read answers up to `</value>`, check good/fail."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *CMD, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24
        )

    async def batch(self, calls: Sequence[bytes]) -> int:
        """Send one batch, read its answers; the number of good answers."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"\n".join(calls) + b"\n")
        await self.proc.stdin.drain()
        good = 0
        for _ in calls:
            answer = await self.proc.stdout.readuntil(b"</value>")
            good += b'<value val="good"' in answer
        return good

    async def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            await self.proc.wait()


class Recording:
    """Wraps the backend's `_exchange` to record the batches each `run_tactic` sends."""

    def __init__(self, env: CoqIde) -> None:
        self.env = env
        self.batches: list[list[bytes]] = []
        self._exchange = env._exchange

        async def exchange(slot, calls):  # type: ignore[no-untyped-def]
            self.batches.append(list(calls))
            return await self._exchange(slot, calls)

        env._exchange = exchange  # type: ignore[method-assign]

    def take(self) -> list[list[bytes]]:
        out, self.batches = self.batches, []
        return out


async def repetition(
    rounds: int, script: list[list[list[bytes]]] | None, rep: int
) -> tuple[list[float], list[float], list[list[list[bytes]]]]:
    """One fresh pair of processes; per-tactic latencies (ours, raw) and the per-tactic batches sent."""
    env, raw = CoqIde(), Raw()
    rec = Recording(env)
    await raw.start()
    try:
        root = await env.start(THEOREM)
        start_batches = rec.take()
        for batch in start_batches:
            await raw.batch(batch)
        ours: list[float] = []
        theirs: list[float] = []
        sent: list[list[list[bytes]]] = []
        index = 0

        async def timed(state: ProofState, tactic: str) -> object:
            nonlocal index
            raw_first = (rep + index) % 2 == 1
            expected = script[index] if script is not None else None
            if raw_first and expected is not None:
                t = time.perf_counter()
                for batch in expected:
                    await raw.batch(batch)
                theirs.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = await env.run_tactic(state, tactic, 30)
            ours.append(time.perf_counter() - t)
            batches = rec.take()
            sent.append(batches)
            if expected is not None and batches != expected:
                raise AssertionError(f"the backend sent different bytes in tactic {index}: not comparable")
            if not raw_first or expected is None:
                t = time.perf_counter()
                for batch in batches:
                    await raw.batch(batch)
                theirs.append(time.perf_counter() - t)
            index += 1
            return result

        await _drive(root, rounds, timed)
        return ours, theirs, sent
    finally:
        await env.close()
        await raw.close()


async def _drive(root: ProofState, rounds: int, run) -> None:  # type: ignore[no-untyped-def]
    """The workload, with every call going through `run(state, tactic)`."""
    for i in range(rounds):
        intro = await run(root, "intros n m")
        assert isinstance(intro, Progress), intro
        assert isinstance(await run(intro.state, f"exact foo{i}"), Failed)  # a failure
        simpl = await run(intro.state, "simpl")
        assert isinstance(simpl, Progress)
        ind = await run(root, "induction n")  # back to the root: intro's sentences leave the document
        assert isinstance(ind, Progress)
        assert isinstance(await run(simpl.state, "lia"), Proved)  # replays intros + simpl, then Qed
        assert isinstance(await run(ind.state, "- intros m"), Progress)  # a bullet then a tactic
        assert isinstance(await run(root, "intros; lia"), Proved)


def p95(xs: Sequence[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.95 * len(s)))]


async def measure(repetitions: int, rounds: int) -> tuple[list[float], list[float], list[float]]:
    _, _, script = await repetition(rounds, None, 0)  # warm-up: also records the bytes to replay
    ours_all: list[float] = []
    raw_all: list[float] = []
    per_rep: list[float] = []
    for rep in range(repetitions):
        ours, theirs, _ = await repetition(rounds, script, rep)
        ours_all += ours
        raw_all += theirs
        per_rep.append(statistics.median(ours) / statistics.median(theirs))
    return ours_all, raw_all, per_rep


async def interrupts(trials: int) -> None:
    """Time from the 1 s budget to the answer: Coq's `Timeout` (backend) vs SIGINT (raw client)."""
    theorem = Theorem("t", "Theorem t : True.", "", "coq")
    env = CoqIde()
    try:
        root = await env.start(theorem)
        late = []
        for _ in range(trials):
            t = time.perf_counter()
            await env.run_tactic(root, "do 100000000 idtac", 1)
            late.append(time.perf_counter() - t - 1)
        alive = env._slots[0].process is not None and env._slots[0].process.alive
        print(f"Timeout wrapper: answer {statistics.median(late) * 1e3:6.1f} ms after the budget (median of {trials}), "
              f"restarts {env.restarts}, process alive {alive}")  # fmt: skip
    finally:
        await env.close()
    raw = Raw()
    await raw.start()
    try:
        from envs.coq import GOAL_CALL, INIT_CALL, add_call, edit_at_call

        await raw.batch([INIT_CALL])
        sids = [1]
        for sentence in ("Theorem t : True.", "Proof."):
            assert raw.proc is not None and raw.proc.stdin is not None and raw.proc.stdout is not None
            raw.proc.stdin.write(add_call(sentence, sids[-1]) + b"\n")
            answer = await raw.proc.stdout.readuntil(b"</value>")
            sids.append(int(answer.split(b'<state_id val="')[-1].split(b'"')[0]))
            await raw.batch([GOAL_CALL])
        late = []
        for _ in range(trials):
            assert raw.proc is not None and raw.proc.stdin is not None and raw.proc.stdout is not None
            raw.proc.stdin.write(edit_at_call(sids[-1]) + b"\n" + add_call("do 100000000 idtac.", sids[-1]) + b"\n")
            raw.proc.stdin.write(GOAL_CALL + b"\n")
            await raw.proc.stdin.drain()
            await raw.proc.stdout.readuntil(b"</value>")
            await raw.proc.stdout.readuntil(b"</value>")
            t = time.perf_counter()
            await asyncio.sleep(1.0)
            sent = time.perf_counter()
            os.kill(raw.proc.pid, signal.SIGINT)
            answer = await raw.proc.stdout.readuntil(b"</value>")
            late.append(time.perf_counter() - sent + (sent - t - 1))
            assert b"interrupt" in answer, answer[-200:]
        alive = raw.proc is not None and raw.proc.returncode is None
        median = statistics.median(late) * 1e3
        print(f"SIGINT (CoqIDE):  answer {median:6.1f} ms after the budget (median of {trials}), process alive {alive}")
    finally:
        await raw.close()


async def verifications(n: int) -> None:
    header = "Require Import Arith Lia Reals Lra Psatz.\n"
    theorem = Theorem("add_zero", "Theorem add_zero : forall n : nat, n + 0 = n.", header, "coq")
    for warm in (True, False):
        env = CoqIde(CoqConfig(warm_verifier=warm))
        times = []
        try:
            for _ in range(n):
                t = time.perf_counter()
                assert (await env.verify(theorem, ["intros n", "lia"])).accepted
                times.append(time.perf_counter() - t)
        finally:
            await env.close()
        name = "warm verifier" if warm else "fresh coqc"
        print(f"{name:<14} first {times[0]:6.3f} s  then median {statistics.median(times[1:]):6.3f} s  ({n} calls)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=40, help="workload cycles per repetition (7 tactics each)")
    ap.add_argument("--interrupts", action="store_true", help="also time Timeout vs SIGINT on a slow tactic")
    ap.add_argument("--verify", type=int, default=0, help="also time N verifications, warm vs coqc")
    args = ap.parse_args()
    ours, raw, per_rep = asyncio.run(measure(args.repetitions, args.rounds))
    for name, xs in (("direct", raw), ("backend", ours)):
        print(f"{name:<8} median {statistics.median(xs) * 1e3:7.3f} ms  p95 {p95(xs) * 1e3:7.3f} ms  "
              f"mean {statistics.fmean(xs) * 1e3:7.3f} ms  ({len(xs)} tactics)")  # fmt: skip
    print(
        f"backend / direct latency ratio: median {statistics.median(ours) / statistics.median(raw):.2f}  "
        f"p95 {p95(ours) / p95(raw):.2f}  per-repetition median ratios " + " ".join(f"{r:.2f}" for r in per_rep)
    )
    if args.interrupts:
        asyncio.run(interrupts(3))
    if args.verify > 1:
        asyncio.run(verifications(args.verify))


if __name__ == "__main__":
    main()
