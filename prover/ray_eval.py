"""`prover eval --ray`: shard a benchmark over Ray workers.

Each worker is an actor with its own generator engine and proof-assistant pool and its own
event loop; the driver hands out one theorem attempt at a time and appends each record to the
same `results.jsonl` as it arrives, so resume works exactly as in a local run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from envs.types import Theorem
from prover.session import ProveConfig, Session, UsageError


class _Worker:
    """A Ray actor body: opens one session (env and generator) and proves attempts in it.

    Theorems arrive as the objects themselves (they pickle), so subclasses such as
    `LeanDojoTheorem` keep their fields."""

    def __init__(self, config: ProveConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.session = Session(config, concurrency=1)  # one attempt at a time: nothing to batch
        self.loop.run_until_complete(self.session.__aenter__())

    def prove(self, theorem: Theorem, attempt: int) -> dict[str, Any]:
        return self.loop.run_until_complete(self.session.attempt(theorem, attempt))

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.session.close())
        finally:
            self.loop.close()


def run_ray(config: ProveConfig, jobs: Sequence[tuple[Theorem, int]], options: Any, writer: Any, progress: Any) -> None:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise UsageError(f"--ray needs Ray: pip install 'prover[ray]' ({exc})") from exc
    started_here = not ray.is_initialized()
    if started_here:
        if options.ray == "local":
            ray.init(num_cpus=max(2, options.ray_workers), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=options.ray, log_to_driver=False)
    gpus = 1 if config.generator.generator in ("hf", "vllm") and ray.cluster_resources().get("GPU") else 0
    actor: Any = ray.remote(num_cpus=1, num_gpus=gpus)(_Worker)
    workers: list[Any] = [actor.remote(config) for _ in range(max(1, options.ray_workers))]
    pool = ActorPool(workers)
    try:
        for record in pool.map_unordered(lambda w, job: w.prove.remote(job[0], job[1]), list(jobs)):
            writer.write(record)
            if progress is not None:
                progress.update(record)
    finally:
        ray.get([w.close.remote() for w in workers])
        for w in workers:
            ray.kill(w)
        if started_here:
            ray.shutdown()
