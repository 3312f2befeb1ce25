"""Tactic-prediction evaluation: `prover eval --tactic-steps STEPS.jsonl` (or `--traced-tactics`).

Each line is a recorded step: `state` (goals as the assistant prints them) and the ground
truth `tactic`; optionally `theorem` ({name, statement, header}) and `prefix` (the tactics
that lead from the theorem to the state). Reports top-1 and top-k exact match (whitespace
normalised) and, with `--check`, the share of suggested tactics the assistant accepts.
Per-step results are appended to RUNDIR/tactic_results.jsonl as they finish (resumable).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from envs.types import Progress, ProofState, Proved, Theorem
from prover.datasets import read_jsonl
from prover.options import to_jsonable
from prover.paths import check_input_file, prepare_output_dir
from prover.records import ResultsWriter, read_results, refuse_other_settings
from prover.session import ProveConfig, Session, UsageError

# What a step's record depends on: a run directory resumes only with the same ones.
TACTIC_FINGERPRINT = (
    "steps",
    "steps_sha256",
    "top_k",
    "check",
    "theorem.data",
    "theorem.split",
    "theorem.leandojo_split",
    "env.env",
    "generator",
    "search.tactic_timeout",
)


def normalize(tactic: str) -> str:
    return re.sub(r"\s+", " ", tactic).strip().rstrip(".")


async def _accepts(
    env: Any, step: dict[str, Any], tactics: list[str], timeout: float, language: str, states: dict[Any, ProofState]
) -> list[bool]:
    """Which suggestions the assistant accepts at the step's state (rebuilt from theorem + prefix).

    `states` caches states by (theorem, prefix), so steps of one proof share their theorem's start.
    """
    spec = step["theorem"]
    theorem = (  # steps built in Python (LeanDojo Benchmark) carry the theorem itself
        spec
        if isinstance(spec, Theorem)
        else Theorem(spec["name"], spec["statement"], spec.get("header", ""), language)  # type: ignore[arg-type]
    )
    prefix = tuple(step.get("prefix", []))
    if (theorem, ()) not in states:
        states[(theorem, ())] = await env.start(theorem)
    for i, t in enumerate(prefix):
        if (theorem, prefix[: i + 1]) in states:
            continue
        result = await env.run_tactic(states[(theorem, prefix[:i])], t, timeout)
        if not isinstance(result, Progress):
            raise UsageError(f"step {step.get('id', '?')}: prefix tactic {t!r} does not replay: {result}")
        states[(theorem, prefix[: i + 1])] = result.state
    state = states[(theorem, prefix)]
    return [isinstance(await env.run_tactic(state, t, timeout), (Progress, Proved)) for t in tactics]


async def _run(
    config: ProveConfig, steps: list[dict[str, Any]], k: int, check: bool, out: Path | None, done: set[int]
) -> list[dict[str, Any]]:
    from tqdm import tqdm

    language = config.language
    sink = ResultsWriter(out / "tactic_results.jsonl") if out else None
    results = []
    started_states: dict[Any, ProofState] = {}
    try:
        async with Session(config, env=check, concurrency=1) as session:
            todo = [(i, s) for i, s in enumerate(steps) if i not in done]
            for i, step in tqdm(todo, unit="step", disable=None):
                started = time.monotonic()
                # the k best: a generator may give more (the automation list gives all of itself)
                suggestions = (await session.generator.generate([ProofState((step["state"],))], k))[0][:k]
                model_s = time.monotonic() - started
                tactics = [s.tactic for s in suggestions]
                truth = normalize(step["tactic"])
                record: dict[str, Any] = {
                    "index": i,
                    "tactic": step["tactic"],
                    "suggestions": tactics,
                    "top1": bool(tactics) and normalize(tactics[0]) == truth,
                    "topk": any(normalize(t) == truth for t in tactics[:k]),
                    "model_s": round(model_s, 3),
                }
                if check and "theorem" in step:
                    started = time.monotonic()
                    record["accepted"] = await _accepts(
                        session.env, step, tactics, config.search.tactic_timeout, language, started_states
                    )
                    record["env_s"] = round(time.monotonic() - started, 3)
                results.append(record)
                if sink:
                    sink.write(record)
    finally:
        if sink:
            sink.close()
    return results


def summarize_tactics(records: list[dict[str, Any]], k: int) -> dict[str, Any]:
    n = len(records)
    checked = [r for r in records if "accepted" in r]
    tried = sum(len(r["accepted"]) for r in checked)
    return {
        "steps": n,
        "top1": round(sum(r["top1"] for r in records) / n, 4) if n else 0.0,
        f"top{k}": round(sum(r["topk"] for r in records) / n, 4) if n else 0.0,
        "checked_steps": len(checked),
        "accept_rate": round(sum(sum(r["accepted"]) for r in checked) / tried, 4) if tried else None,
        "any_accepted": round(sum(any(r["accepted"]) for r in checked) / len(checked), 4) if checked else None,
    }


def run_tactic_eval(config: ProveConfig, path: Path, options: Any, steps: list[dict] | None = None) -> int:
    """Steps from the JSONL file `path`, or `steps` already read from `path` (LeanDojo Benchmark).

    `options` are the run's `EvalOptions`: `top_k`, `check` and `out` come from them."""
    k, check = options.top_k, options.check
    if steps is None:
        check_input_file(path, "--tactic-steps")
        steps = read_jsonl(path)
    for i, s in enumerate(steps):
        if "state" not in s or "tactic" not in s:
            raise UsageError(f"{path} line {i + 1}: a step needs `state` and `tactic`")
    out = options.out
    previous: list[dict[str, Any]] = []
    if out is not None:
        prepare_output_dir(out, "--out")
        eval_options = {name: v for name, v in to_jsonable(options).items() if name != "out"}  # the EvalOptions
        resolved = {**to_jsonable(config), "eval": eval_options, "steps": str(path), "top_k": k, "check": check}
        if path.is_file():  # its content, not its name, says which steps the records are about
            resolved["steps_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        previous = read_results(out / "tactic_results.jsonl")
        if previous and (out / "tactic_config.json").is_file():
            old = json.loads((out / "tactic_config.json").read_text(encoding="utf-8"))
            refuse_other_settings(out, old, resolved, TACTIC_FINGERPRINT)
        (out / "tactic_config.json").write_text(json.dumps(resolved, indent=2, ensure_ascii=False) + "\n")
    done = {r["index"] for r in previous}
    records = previous + asyncio.run(_run(config, steps, k, check, out, done))
    summary = summarize_tactics(records, k)
    if out is not None:
        (out / "tactic_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0
