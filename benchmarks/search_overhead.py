"""Overhead of the search itself, per node, from 10^3 to 10^5 expansions, against a raw baseline.

The env and the generator answer instantly from a fixed, seeded outcome stream, so what is timed
is the search: frontier, tree, deduplication, status propagation, bookkeeping. The workload is
realistic in kind: the generator's best candidate makes progress to a new state; the others fail
(50%), time out (10%), reach an already-known state (20%) or a new one (20%).

"ours" is `best_first_search`; "baseline" is a minimal heapq best-first loop written here, sharing
none of the project's code (its own states, its own env over the same outcome stream, default
garbage collector). Both make the same tactic calls in the same order and build the same graph.
After a warm-up, `--rounds` rounds each measure every size on both sides, alternating the order
of sizes and of sides. Printed: median and p95 of microseconds per tree node, of the per-round
ratio ours / baseline, and of each size's cost per node over the smallest size's in the same round.
Time is this process's CPU time by default (`--clock wall` for wall time): the search is
single-threaded, and on a machine shared with other jobs CPU time does not count the waits for
a core that wall time does.

    python -m benchmarks.search_overhead [--sizes 1000 10000 100000] [--samples 4] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import os
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

from envs.types import Failed, Language, Progress, ProofState, Theorem, TimedOut, Verdict
from search.best_first import COLLECTOR, Budget, SearchConfig, SearchResult, Suggestion, best_first_search

NEW, KNOWN, FAIL, TIMEOUT = 0, 1, 2, 3
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
CLOCK = CLOCKS["cpu"]


class Outcomes:
    """The i-th tactic call's outcome, shared by both sides. Candidate 0 always makes a new state."""

    def __init__(self, calls: int, samples: int, seed: int) -> None:
        rng = random.Random(seed)
        self.kinds: list[int] = []
        self.picks: list[float] = []
        for i in range(calls):
            r = rng.random()
            if i % samples == 0:
                kind = NEW
            else:
                kind = FAIL if r < 0.5 else TIMEOUT if r < 0.6 else KNOWN if r < 0.8 else NEW
            self.kinds.append(kind)
            self.picks.append(rng.random())


class BenchEnv:
    """Our `ProofEnv` over the outcome stream (one process: candidates run one at a time)."""

    language: Language = "lean4"
    size = 1

    def __init__(self, outcomes: Outcomes) -> None:
        self.outcomes = outcomes
        self.calls = 0
        self.made = 0

    async def start(self, theorem: Theorem) -> ProofState:
        return ProofState(("g0",))

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float) -> Progress | Failed | TimedOut:
        i = self.calls
        self.calls += 1
        kind = self.outcomes.kinds[i]
        if kind == FAIL:
            return Failed("tactic failed")
        if kind == TIMEOUT:
            return TimedOut(timeout)
        if kind == KNOWN:
            return Progress(ProofState((f"g{int(self.outcomes.picks[i] * (self.made + 1))}",)))
        self.made += 1
        return Progress(ProofState((f"g{self.made}",)))

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        return Verdict(False)

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        return ""

    async def check_file(self, text: str) -> list:
        return []

    async def close(self) -> None:
        pass


class FixedSuggestions:
    """The same suggestions, best first, at every state: a generator that costs nothing to ask."""

    def __init__(self, suggestions: Sequence[Suggestion]) -> None:
        self.suggestions = list(suggestions)

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
        return [self.suggestions[:n] for _ in states]

    # the rest of the generator protocol: nothing to load, seed or release
    def load(self) -> None:
        pass

    async def suggest_many(self, requests: Sequence[Any], n: int) -> list[list[Suggestion]]:
        return [self.suggestions[:n] for _ in requests]

    def reseed(self, seed: int) -> None:
        pass

    async def close(self) -> None:
        pass


def run_ours(expansions: int, samples: int, outcomes: Outcomes) -> tuple[float, int, int]:
    env = BenchEnv(outcomes)
    gen = FixedSuggestions([Suggestion(f"t{i}", -0.1 * (i + 1), 2) for i in range(samples)])
    budget = Budget(max_expansions=expansions, time_limit=3600.0)
    config = SearchConfig(samples=samples)

    async def timed() -> tuple[float, SearchResult]:
        started = CLOCK()  # inside the loop: event-loop setup is not the search's cost
        result = await best_first_search(env, gen, Theorem("t", "theorem t : P :="), budget, config)
        return CLOCK() - started, result

    elapsed, result = asyncio.run(timed())
    assert result.expansions == expansions and result.tree is not None, result.stop_reason
    return elapsed, len(result.tree), result.tactic_calls


async def raw_search(expansions: int, samples: int, outcomes: Outcomes) -> tuple[float, int, int]:
    """A minimal async best-first loop: heap of (-score, tie, node), goal-text dedup, edge list."""
    started = CLOCK()
    suggestions = [(f"t{i}", -0.1 * (i + 1)) for i in range(samples)]
    goals = ["g0"]
    index = {"g0": 0}
    scores = [0.0]
    edges: list[tuple[int, str, int, int]] = []  # (source, tactic, kind, target or -1)
    frontier = [(-0.0, 0, 0)]
    tie = 1
    calls = made = 0

    async def generate(goal: str) -> list[tuple[str, float]]:
        return suggestions

    async def run(goal: str, tactic: str) -> tuple[int, str]:
        nonlocal calls, made
        i = calls
        calls += 1
        kind = outcomes.kinds[i]
        if kind == KNOWN:
            return kind, f"g{int(outcomes.picks[i] * (made + 1))}"
        if kind == NEW:
            made += 1
            return kind, f"g{made}"
        return kind, ""

    for _ in range(expansions):
        _, _, node = heapq.heappop(frontier)
        for tactic, logprob in await generate(goals[node]):
            kind, goal = await run(goals[node], tactic)
            if not goal:
                edges.append((node, tactic, kind, -1))
                continue
            target = index.get(goal)
            if target is None:
                target = len(goals)
                goals.append(goal)
                index[goal] = target
                scores.append(scores[node] + logprob)
                heapq.heappush(frontier, (-scores[target], tie, target))
                tie += 1
            edges.append((node, tactic, kind, target))
    return CLOCK() - started, len(goals), calls


def run_baseline(expansions: int, samples: int, outcomes: Outcomes) -> tuple[float, int, int]:
    return asyncio.run(raw_search(expansions, samples, outcomes))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(sizes: list[int], samples: int, rounds: int, seed: int, quota: int) -> list[dict[str, float]]:
    """Rounds go through every size, alternating which side runs first, so a machine whose load
    drifts (2 shared cores) weighs on all sizes and both sides alike. One measurement runs enough
    searches of its size to make `quota` expansions and divides their time by their nodes."""
    outcomes = {size: Outcomes(size * samples, samples, seed) for size in sizes}
    warm = Outcomes(1000 * samples, samples, seed + 1)
    for _ in range(3):
        run_ours(1000, samples, warm)
        run_baseline(1000, samples, warm)
    times: dict[tuple[str, int], list[float]] = {(side, size): [] for side in ("ours", "base") for size in sizes}
    graph: dict[int, tuple[int, int]] = {}
    for round_ in range(rounds):
        for size in sizes if round_ % 2 == 0 else sizes[::-1]:
            sides = [("ours", run_ours), ("base", run_baseline)]
            for side, fn in sides if round_ % 2 == 0 else sides[::-1]:
                spent = 0.0
                nodes = 0
                for _ in range(max(1, quota // size)):
                    gc.collect()
                    elapsed, n, c = fn(size, samples, outcomes[size])
                    assert graph.setdefault(size, (n, c)) == (n, c), "both sides must build the same graph"
                    spent += elapsed
                    nodes += n
                times[side, size].append(1e6 * spent / nodes)
    rows = []
    for size in sizes:
        ours, base = times["ours", size], times["base", size]
        ratios = [o / b for o, b in zip(ours, base, strict=True)]
        growth = [o / first for o, first in zip(ours, times["ours", sizes[0]], strict=True)]
        base_growth = [b / first for b, first in zip(base, times["base", sizes[0]], strict=True)]
        rows.append(
            {
                "size": size,
                "nodes": graph[size][0],
                "calls": graph[size][1],
                "ours": statistics.median(ours),
                "ours_p95": p95(ours),
                "base": statistics.median(base),
                "base_p95": p95(base),
                "ratio": statistics.median(ratios),
                "ratio_p95": p95(ratios),
                "growth": statistics.median(growth),
                "growth_p95": p95(growth),
                "base_growth": statistics.median(base_growth),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="expansions per search")
    ap.add_argument("--samples", type=int, default=4, help="candidates per expansion")
    ap.add_argument("--rounds", type=int, default=7, help="measurements per size and side")
    ap.add_argument("--quota", type=int, default=20_000, help="expansions per measurement (several small searches)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--freeze-every",
        type=int,
        default=COLLECTOR.every,
        help="candidates between the search's collector freezes (0: leave the collector alone, as before the fix)",
    )
    ap.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="this process's CPU time (steady on a shared machine)"
    )
    args = ap.parse_args()
    global CLOCK
    CLOCK = CLOCKS[args.clock]
    COLLECTOR.every = args.freeze_every
    if args.samples < 2 or min(args.sizes) < 1 or args.rounds < 1 or args.quota < 1:
        ap.error("--samples must be at least 2; --sizes, --rounds and --quota positive")
    rows = measure(args.sizes, args.samples, args.rounds, args.seed, args.quota)
    print(
        f"{'expansions':>10} {'nodes':>8} {'calls':>8} {'ours us/node':>13} {'p95':>6} "
        f"{'base us/node':>13} {'p95':>6} {'ours/base':>10} {'p95':>6} {'vs first':>9} {'p95':>6} {'base vs first':>14}"
    )
    for m in rows:
        print(
            f"{m['size']:>10} {m['nodes']:>8} {m['calls']:>8} {m['ours']:>13.2f} {m['ours_p95']:>6.2f} "
            f"{m['base']:>13.2f} {m['base_p95']:>6.2f} {m['ratio']:>10.2f} {m['ratio_p95']:>6.2f} "
            f"{m['growth']:>9.2f} {m['growth_p95']:>6.2f} {m['base_growth']:>14.2f}"
        )
    print(
        f"# {args.clock} time; collector frozen every {args.freeze_every} candidates (0: never); {args.rounds} rounds;"
        f" 'vs first': us/node over that of {args.sizes[0]} expansions in the same round;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
