"""Per-tactic overhead of `envs.leandojo.LeanDojoEnv` over calling `lean_dojo.Dojo.run_tac` directly.

Both sides drive the same scripted Dojo (tests/fakes/fake_dojo.py: lean_dojo's real `Dojo`
subclass and result types, answering at once), so the difference is what the env adds per
tactic: the untrusted-tactic guard, the hop to a worker thread (LeanDojo blocks in pexpect),
result mapping and state bookkeeping. "direct" is a plain loop over `dojo.run_tac` (none of our
code). Rounds alternate between the two after a warm-up; latencies are per tactic.

    python -m benchmarks.leandojo_overhead [--rounds 20] [--tactics 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import pytest

from envs.leandojo import LeanDojoEnv, LeanDojoTheorem
from envs.types import Progress
from tests.fakes.fake_dojo import FakeLean, fake_lake, isolated_import, make_fake_dojo, traced_repo

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "leandojo" / "repo"
ROOT = "a b : ℕ\nh : a = b\n⊢ b = a"
TACTIC = "subst h"


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return (
        f"{name:<7} mean {statistics.fmean(ms):8.4f} ms  p50 {statistics.median(ms):8.4f} ms  "
        f"p95 {p95:8.4f} ms  throughput {len(ms) / (sum(ms) / 1000):9.0f} tactics/s"
    )


async def measure(rounds: int, tactics: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        traced = traced_repo(DATA, Path(tmp))
        with isolated_import(traced.cache) as lean_dojo:
            lean = FakeLean(roots={"Demo.eq_symm'": ROOT}, steps={(ROOT, TACTIC): "a : ℕ\n⊢ a = a"})
            mp.setattr(lean_dojo, "Dojo", make_fake_dojo(lean_dojo, lean))
            fake_lake(mp, Path(tmp) / "bin")
            target = lean_dojo.Theorem(
                lean_dojo.LeanGitRepo(traced.url, traced.commit), Path("Demo/Basic.lean"), "Demo.eq_symm'"
            )
            dojo, root = lean_dojo.Dojo(target).__enter__()
            env = LeanDojoEnv()
            theorem = LeanDojoTheorem(
                "Demo.eq_symm'", "", url=traced.url, commit=traced.commit, file_path="Demo/Basic.lean", start=(5, 1)
            )
            state = await env.start(theorem)

            def direct_round(out: list[float]) -> None:
                for _ in range(tactics):
                    t = time.perf_counter()
                    dojo.run_tac(root, TACTIC)
                    out.append(time.perf_counter() - t)

            async def env_round(out: list[float]) -> None:
                for _ in range(tactics):
                    t = time.perf_counter()
                    result = await env.run_tactic(state, TACTIC, 10.0)
                    out.append(time.perf_counter() - t)
                    assert isinstance(result, Progress)

            direct_round([])  # warm-up
            await env_round([])
            direct: list[float] = []
            ours: list[float] = []
            for _ in range(rounds):
                direct_round(direct)
                await env_round(ours)
            await env.close()
            dojo.__exit__(None, None, None)
    return direct, ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tactics", type=int, default=200, help="tactics per round and side")
    args = parser.parse_args()
    direct, ours = asyncio.run(measure(args.rounds, args.tactics))
    print(summary("direct", direct))
    print(summary("env", ours))
    extra = statistics.median(ours) - statistics.median(direct)
    print(f"env - direct, median: {extra * 1e6:.0f} us per tactic (rounds alternate between the two)")


if __name__ == "__main__":
    main()
