"""One search whose first expansion has 12 slow failing candidates and 1 that proves, on real Coq.

The generator offers, at every state, 12 tactics that each run about `--slow` seconds in
`coqidetop` and fail (`do N idtac; fail`, N calibrated on this machine first), then the tactic
that proves the theorem. The search is `best_first_search` over `envs.coq.CoqIde` with 1 process
and with `--processes` processes (default 4): with one, the candidates run one after another;
with several, at most that many at once, each on any free process (the theorem is opened there
when needed, which the search reports as replays). Each measurement is a fresh theorem (a new
statement, so no process already knows it) on warm processes; rounds alternate which pool goes
first. Printed: median and p95 wall time per pool, and the ratio many / one per round.

The slow candidates are CPU-bound (as slow tactics are): N processes cannot beat the number of
free cores. `os.cpu_count()` and the load average are printed beside the figure. Needs Coq.

`--runaway` makes the slow candidates what they usually are in a real search: tactics that never
finish on their own (`do 100000000 idtac`), stopped by Coq's in-assistant timeout after `--slow`
seconds (the search's tactic timeout). Coq's `Timeout` counts wall-clock time, so on a machine
with fewer free cores than processes the candidates still end on time: this measures the
scheduling (every process kept busy, the proof found as soon as its turn comes) rather than the
cores.

`--model-latency L` measures the other overlap instead: a generator that takes L seconds per call
(a model served elsewhere) and, per expansion, two tactics that make progress and N slow failing
ones; 6 expansions with `SearchConfig(pipeline=True)` (the next call overlaps the checks) and
without, alternating.

    python -m benchmarks.parallel_candidates [--processes 4] [--rounds 3] [--slow 1.0] [--runaway] [--model-latency L]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from itertools import count

from benchmarks.search_overhead import FixedSuggestions
from envs.coq import CoqConfig, CoqIde
from envs.types import Failed, ProofState, Theorem
from search.best_first import Budget, SearchConfig, SearchResult, Suggestion, best_first_search

SLOW_CANDIDATES = 12
_fresh = count()


def theorem() -> Theorem:
    """A statement no process has seen: candidates on other processes must open it there."""
    k = next(_fresh)
    return Theorem(f"bench_{k}", f"Theorem bench_{k} : {k} + 2 = 2 + {k}.", "", "coq")


def fixed_list(tactics: Sequence[str]) -> FixedSuggestions:
    """The same ordered tactics at every state (like the automation list), best first."""
    return FixedSuggestions([Suggestion(t, 0.0) for t in tactics])


def slow_tactic(loops: int) -> str:
    return f"do {loops} idtac; fail"


RUNAWAY_LOOPS = 100_000_000  # minutes of work: only the tactic timeout ends it


async def calibrate(env: CoqIde, seconds: float) -> int:
    """The loop count whose failing tactic takes about `seconds` here (median of three)."""
    state = await env.start(theorem())
    loops = 50_000
    for _ in range(4):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            result = await env.run_tactic(state, slow_tactic(loops), 60.0)
            times.append(time.perf_counter() - started)
            assert isinstance(result, Failed), result
        took = statistics.median(times)
        if abs(took - seconds) < 0.15 * seconds:
            break
        loops = max(1000, int(loops * seconds / max(took, 1e-3)))
    return loops


async def one_search(env: CoqIde, loops: int, tactic_timeout: float = 60.0) -> tuple[float, SearchResult]:
    """`loops` per slow candidate; with `RUNAWAY_LOOPS` they end at `tactic_timeout`."""
    tactics = [slow_tactic(loops + i) for i in range(SLOW_CANDIDATES)]  # distinct, equally slow
    generator = fixed_list([*tactics, "reflexivity"])
    started = time.perf_counter()
    result = await best_first_search(
        env,
        generator,
        theorem(),
        Budget(max_expansions=5, time_limit=300.0, tactic_timeout=tactic_timeout),
        SearchConfig(samples=SLOW_CANDIDATES + 1),
    )
    elapsed = time.perf_counter() - started
    assert result.status == "proved" and result.proof == ["reflexivity"], result.to_record()
    assert result.tactic_calls == SLOW_CANDIDATES + 1, result.tactic_calls
    assert result.restarts == 0, f"a slow candidate cost a process restart: {result.to_record()}"
    return elapsed, result


class SlowModel(FixedSuggestions):
    """Stands in for a model served elsewhere (a GPU): each call waits `latency` s, using no CPU here."""

    def __init__(self, tactics: Sequence[str], latency: float) -> None:
        super().__init__([Suggestion(t, 0.0) for t in tactics])
        self.latency = latency

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
        await asyncio.sleep(self.latency)
        return await super().generate(states, n)


PIPELINE_EXPANSIONS = 6


async def model_search(env: CoqIde, loops: int, latency: float, pipeline: bool) -> tuple[float, SearchResult]:
    """Expansions of two tactics that make progress and `env.size` slow failing ones; no proof."""
    progress = ["assert (True) by trivial", "assert (0 = 0) by reflexivity"]
    slow = [slow_tactic(loops + i) for i in range(env.size)]
    k = next(_fresh)
    started = time.perf_counter()
    result = await best_first_search(
        env,
        SlowModel([*progress, *slow], latency),
        Theorem(f"pipe_{k}", f"Theorem pipe_{k} : {k} = {k} + 1.", "", "coq"),
        Budget(max_expansions=PIPELINE_EXPANSIONS, time_limit=300.0, tactic_timeout=60.0),
        SearchConfig(samples=len(progress) + len(slow), pipeline=pipeline),
    )
    elapsed = time.perf_counter() - started
    assert result.stop_reason == "expansions" and result.model_calls == PIPELINE_EXPANSIONS, result.to_record()
    return elapsed, result


async def pipeline_async(processes: int, rounds: int, slow: float, latency: float) -> None:
    env = CoqIde(CoqConfig(processes=processes))
    try:
        loops = await calibrate(env, slow)
        await model_search(env, loops, latency, False)  # warm-up
        walls: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(rounds):
            for pipeline in (False, True) if round_ % 2 == 0 else (True, False):
                walls[pipeline].append((await model_search(env, loops, latency, pipeline))[0])
        print(
            f"{PIPELINE_EXPANSIONS} expansions; model {latency:g}s per call; checks: 2 quick + {processes} slow"
            f" (~{slow:g}s) candidates on {processes} processes"
        )
        for pipeline in (False, True):
            w = walls[pipeline]
            label = "pipelined" if pipeline else "one after another"
            print(f"{label:>18}  wall median {statistics.median(w):6.2f}s  p95 {p95(w):6.2f}s")
        ratios = [on / off for off, on in zip(walls[False], walls[True], strict=True)]
        print(
            f"pipelined / one after another: median {statistics.median(ratios):.2f}  p95 {p95(ratios):.2f}  "
            f"({rounds} rounds, alternating; cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})"
        )
    finally:
        await env.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def main_async(processes: int, rounds: int, slow: float, runaway: bool) -> None:
    one = CoqIde(CoqConfig(processes=1))
    many = CoqIde(CoqConfig(processes=processes))
    try:
        loops = RUNAWAY_LOOPS if runaway else await calibrate(one, slow)
        timeout = slow if runaway else 60.0
        pools = [("1 process", one), (f"{processes} processes", many)]
        for _, env in pools:  # warm-up: every process started, Coq's first-use costs paid
            await one_search(env, loops, timeout)
        walls: dict[str, list[float]] = {name: [] for name, _ in pools}
        replays: dict[str, list[int]] = {name: [] for name, _ in pools}
        for round_ in range(rounds):
            for name, env in pools if round_ % 2 == 0 else pools[::-1]:
                elapsed, result = await one_search(env, loops, timeout)
                walls[name].append(elapsed)
                replays[name].append(result.replays)
        how = f"stopped by the {slow:g}s tactic timeout" if runaway else f"~{slow:g}s alone"
        print(f"slow candidate: `{slow_tactic(loops)}` ({how}) x{SLOW_CANDIDATES}, then the proof")
        for name, _ in pools:
            w = walls[name]
            print(
                f"{name:>12}  wall median {statistics.median(w):6.2f}s  p95 {p95(w):6.2f}s  "
                f"replays per search {statistics.median(replays[name]):.0f}"
            )
        ratios = [m / o for o, m in zip(walls["1 process"], walls[pools[1][0]], strict=True)]
        print(
            f"{processes} processes / 1 process: median {statistics.median(ratios):.2f}  p95 {p95(ratios):.2f}  "
            f"({rounds} rounds, alternating; cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})"
        )
    finally:
        await one.close()
        await many.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=4, help="processes of the parallel pool")
    ap.add_argument("--rounds", type=int, default=3, help="measured searches per pool")
    ap.add_argument("--slow", type=float, default=1.0, help="seconds each failing candidate should take")
    ap.add_argument(
        "--runaway",
        action="store_true",
        help="slow candidates that never finish, stopped by a tactic timeout of --slow seconds",
    )
    ap.add_argument(
        "--model-latency",
        type=float,
        default=0.0,
        help="instead: a model taking this many seconds per call, with and without the search's pipeline",
    )
    args = ap.parse_args()
    if args.processes < 2 or args.rounds < 1 or not args.slow > 0 or args.model_latency < 0:
        ap.error("--processes must be at least 2, --rounds at least 1, --slow positive, --model-latency >= 0")
    if args.model_latency:
        asyncio.run(pipeline_async(args.processes, args.rounds, args.slow, args.model_latency))
    else:
        asyncio.run(main_async(args.processes, args.rounds, args.slow, args.runaway))


if __name__ == "__main__":
    main()
