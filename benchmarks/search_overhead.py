"""Overhead of the search itself: an env and a generator that answer instantly.

Prints nodes per second, microseconds per node and peak traced memory at 10^3, 10^4 and 10^5
expansions, so one can see that the cost per node stays flat as the tree grows.

    python benchmarks/search_overhead.py [--sizes 1000 10000 100000] [--samples 4]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
from collections.abc import Sequence

from envs.types import Progress, ProofState, Theorem, Verdict
from search.best_first import Budget, SearchConfig, Suggestion, best_first_search


class InstantEnv:
    """Every tactic makes progress to a new state; nothing is ever proved."""

    language = "lean4"
    size = 1

    def __init__(self) -> None:
        self.counter = 0

    async def start(self, theorem: Theorem) -> ProofState:
        return ProofState(("root",))

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float) -> Progress:
        self.counter += 1
        return Progress(ProofState((f"g{self.counter}",)))

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        return Verdict(False)

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        return ""

    async def check_file(self, text: str) -> list:
        return []

    async def close(self) -> None:
        pass


class InstantGenerator:
    def __init__(self, samples: int) -> None:
        self.suggestions = [Suggestion(f"t{i}", -0.1 * (i + 1), 2) for i in range(samples)]

    async def generate(self, states, n):
        return [self.suggestions[:n] for _ in states]


def search_once(expansions: int, samples: int) -> tuple[float, int]:
    env, gen = InstantEnv(), InstantGenerator(samples)
    budget = Budget(max_expansions=expansions, time_limit=3600.0)
    started = time.perf_counter()
    result = asyncio.run(
        best_first_search(env, gen, Theorem("t", "theorem t : P :="), budget, SearchConfig(samples=samples))
    )
    elapsed = time.perf_counter() - started
    assert result.expansions == expansions and result.tree is not None
    return elapsed, len(result.tree)


def run(expansions: int, samples: int) -> tuple[float, int, int]:
    """Time an untraced search, then measure peak memory in a second, traced one."""
    elapsed, nodes = search_once(expansions, samples)
    tracemalloc.start()
    search_once(expansions, samples)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, nodes, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    print(f"{'expansions':>10} {'nodes':>9} {'seconds':>8} {'nodes/s':>9} {'us/node':>8} {'peak MiB':>9} {'B/node':>7}")
    for size in args.sizes:
        elapsed, nodes, peak = run(size, args.samples)
        print(
            f"{size:>10} {nodes:>9} {elapsed:>8.2f} {nodes / elapsed:>9.0f} {1e6 * elapsed / nodes:>8.1f} "
            f"{peak / 2**20:>9.1f} {peak / nodes:>7.0f}"
        )


if __name__ == "__main__":
    main()
