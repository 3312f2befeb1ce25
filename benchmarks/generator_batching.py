"""Suggestions per second with the tiny random Llama on CPU: batched across 16 concurrent
searches vs. one request at a time, in the same run.

Each "search" asks for n candidates for one state, `--requests` times. Batched: the 16
searches share a `BatchingGenerator`, which sends their requests to the model together.
Unbatched: the same requests go to the model one at a time.

    python benchmarks/generator_batching.py [--searches 16] [--requests 4] [--samples 4]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from envs.types import ProofState
from prover.generators.batching import BatchingGenerator
from prover.generators.hf import HFGenerator
from prover.generators.prompts import load_prompt
from prover.options import GeneratorOptions
from tests.fakes.tiny_model import build_tiny_llama


def make(model: Path, tokens: int) -> HFGenerator:
    options = GeneratorOptions(generator="hf", model=str(model), temperature=1.0, max_new_tokens=tokens, device="cpu")
    gen = HFGenerator(str(model), load_prompt("llemma", "lean4"), "lean4", options)
    gen.load()
    return gen


async def one_at_a_time(gen: HFGenerator, states: list[ProofState], requests: int, n: int) -> int:
    done = 0
    for _ in range(requests):
        for s in states:
            done += len((await gen._complete([gen.prompt.render(s.text)], n))[0])
    return done


async def batched(gen: HFGenerator, states: list[ProofState], requests: int, n: int) -> int:
    class Raw:  # the batching layer over raw completions, so both sides count the same suggestions
        async def generate(self, batch, k):
            return await gen._complete([gen.prompt.render(s.text) for s in batch], k)

        async def close(self) -> None:  # the model itself is the benchmark's to keep
            pass

    batcher = BatchingGenerator(Raw(), max_batch=len(states), max_wait=0.01)

    async def search(state: ProofState) -> int:
        return sum([len((await batcher.generate([state], n))[0]) for _ in range(requests)])

    try:
        return sum(await asyncio.gather(*(search(s) for s in states)))
    finally:
        await batcher.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--searches", type=int, default=16)
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gen = make(build_tiny_llama(Path(tmp) / "tiny"), args.tokens)
        states = [ProofState((f"x y : ℕ\nh : x = {i}\n⊢ x + y = y + {i}",)) for i in range(args.searches)]
        asyncio.run(one_at_a_time(gen, states[:2], 1, args.samples))  # warm-up
        rates = {}
        for name, fn in (("one at a time", one_at_a_time), ("batched", batched)):
            started = time.perf_counter()
            count = asyncio.run(fn(gen, states, args.requests, args.samples))
            elapsed = time.perf_counter() - started
            rates[name] = count / elapsed
            print(f"{name:<14} {count} suggestions in {elapsed:6.2f}s = {rates[name]:8.1f} suggestions/s")
        print(
            f"batched / one at a time: {rates['batched'] / rates['one at a time']:.2f}x "
            f"({args.searches} concurrent searches, n={args.samples}, {args.tokens} new tokens)"
        )


if __name__ == "__main__":
    main()
