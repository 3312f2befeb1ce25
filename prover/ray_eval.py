"""`prover eval --ray`: shard a benchmark over Ray workers.

Each worker is an actor with its own generator engine and proof-assistant pool and its own
event loop; the driver hands out one theorem attempt at a time and appends each record to the
same `results.jsonl` as it arrives, so resume works exactly as in a local run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from envs.types import Theorem
from prover.cli import ProveConfig
from prover.wiring import env_language


class _Worker:
    """A Ray actor body: builds its env and generator once, then proves attempts."""

    def __init__(self, config: ProveConfig) -> None:
        from prover.wiring import make_env, make_generator

        self.config = config
        self.loop = asyncio.new_event_loop()
        language = env_language(config.env)
        self.generator = make_generator(config.generator, language)  # type: ignore[arg-type]
        self.env = make_env(config.env)
        self.attempt: int | None = None

    def prove(self, theorem: dict[str, Any], attempt: int) -> dict[str, Any]:
        from prover.evaluate import prove_record, reseed_for

        if attempt != self.attempt:
            self.attempt = attempt
            reseed_for(self.generator, self.config, attempt)
        return self.loop.run_until_complete(
            prove_record(self.env, self.generator, self.config, Theorem(**theorem), attempt)
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.env.close())
        close = getattr(self.generator, "aclose", None)  # model generators hold a client or an engine
        if close is not None:
            self.loop.run_until_complete(close())


def run_ray(config: ProveConfig, jobs: Sequence[tuple[Theorem, int]], options: Any, writer: Any, progress: Any) -> None:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        from prover.cli import UsageError

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
        payload = [(dataclasses.asdict(t), a) for t, a in jobs]
        for record in pool.map_unordered(lambda w, job: w.prove.remote(job[0], job[1]), payload):
            writer.write(record)
            if progress is not None:
                progress.update(record)
    finally:
        ray.get([w.close.remote() for w in workers])
        for w in workers:
            ray.kill(w)
        if started_here:
            ray.shutdown()
