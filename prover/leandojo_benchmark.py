"""LeanDojo Benchmark 4: theorems for `--env leandojo` and recorded steps for tactic prediction.

Layout (as published): `DIR/{random,novel_premises}/{train,val,test}.json`, each a JSON list of
theorems with `url`, `commit`, `file_path`, `full_name`, `start`, `end` ([line, column]),
optional `theorem_statement`, and `traced_tactics` (`tactic`, `state_before`, `state_after`).
`--data` may name the benchmark's root or one split strategy's folder. `--split valid` reads
`val.json`, `--split test` `test.json`, no split both.

Traced tactics become tactic-prediction steps (`state`, `tactic`). A step is checkable (it gets
`theorem` and `prefix`) when it lies on the proof's main line: its `state_before` is the state
the previous main-line tactics lead to. Tactics nested inside `·` blocks or `have ... := by`
are predicted but not checked, since no tactic path from the root reaches their state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envs.leandojo import LeanDojoTheorem
from prover.datasets import DatasetError
from prover.options import TheoremOptions

STRATEGIES = ("random", "novel_premises")
SPLIT_FILES = {"valid": "val.json", "test": "test.json"}
REQUIRED = ("url", "commit", "file_path", "full_name")
DOWNLOAD_HINT = "LeanDojo Benchmark 4 is published at https://zenodo.org/records/12740403 (leandojo_benchmark_4)"


def strategy_dir(data: Path | None, strategy: str) -> Path:
    """The folder holding train/val/test.json for `strategy`."""
    if data is None:
        raise DatasetError(f"--benchmark leandojo needs --data DIR: {DOWNLOAD_HINT}")
    if strategy not in STRATEGIES:
        raise DatasetError(f"unknown LeanDojo split strategy {strategy!r} (random or novel_premises)")
    if (data / strategy).is_dir():
        return data / strategy
    if any((data / f).is_file() for f in (*SPLIT_FILES.values(), "train.json")):
        if data.name in STRATEGIES and data.name != strategy:  # records would carry the wrong variant
            raise DatasetError(
                f"--data {data} is the {data.name!r} split, but --leandojo-split {strategy} was asked "
                f"(pass --leandojo-split {data.name}, or --data {data.parent})"
            )
        return data
    raise DatasetError(f"{data} holds no LeanDojo Benchmark 4: expected {strategy}/test.json in it; {DOWNLOAD_HINT}")


def read_records(data: Path | None, split: str | None, strategy: str = "random") -> list[dict[str, Any]]:
    """The benchmark's theorem records of `split` (valid/test; None: both), each tagged with its split."""
    folder = strategy_dir(data, strategy)
    splits = [split] if split else list(SPLIT_FILES)
    records: list[dict[str, Any]] = []
    for s in splits:
        if s not in SPLIT_FILES:
            raise DatasetError(f"LeanDojo Benchmark 4 has no split {s!r} to evaluate (valid or test)")
        path = folder / SPLIT_FILES[s]
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: not JSON: {exc}") from exc
        if not isinstance(items, list):
            raise DatasetError(f"{path}: expected a JSON list of theorems")
        for i, item in enumerate(items):
            missing = [k for k in REQUIRED if not isinstance(item, dict) or not item.get(k)]
            if missing:
                raise DatasetError(f"{path}: theorem {i + 1} lacks {', '.join(missing)}")
            records.append({**item, "split": s})
    return records


def _position(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (value[0], value[1])
    return None


def theorem_of(record: dict[str, Any]) -> LeanDojoTheorem:
    return LeanDojoTheorem(
        name=record["full_name"],
        statement=record.get("theorem_statement") or "",
        language="lean4",
        split=record.get("split"),
        url=record["url"],
        commit=record["commit"],
        file_path=record["file_path"],
        start=_position(record.get("start")),
        end=_position(record.get("end")),
    )


def load_leandojo(data: Path | None, split: str | None, strategy: str = "random") -> list[LeanDojoTheorem]:
    """The theorems of the benchmark's `split`, in file order; duplicates (same theorem) once."""
    seen: set[LeanDojoTheorem] = set()
    out = []
    for record in read_records(data, split, strategy):
        theorem = theorem_of(record)
        if theorem not in seen:
            seen.add(theorem)
            out.append(theorem)
    return out


def traced_steps(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tactic-prediction steps from the records' `traced_tactics` (see the module docstring)."""
    steps: list[dict[str, Any]] = []
    for record in records:
        theorem = theorem_of(record)
        tactics = record.get("traced_tactics") or []
        line: list[str] = []  # the main line so far
        current = tactics[0].get("state_before") if tactics else None
        for i, t in enumerate(tactics):
            if "tactic" not in t or "state_before" not in t:
                raise DatasetError(f"{theorem.name}: traced tactic {i + 1} lacks `tactic` or `state_before`")
            step: dict[str, Any] = {"id": f"{theorem.name}#{i}", "state": t["state_before"], "tactic": t["tactic"]}
            if t["state_before"] == current:
                step.update(theorem=theorem, prefix=list(line))
                line.append(t["tactic"])
                current = t.get("state_after")
            steps.append(step)
    return steps


def leandojo_tactic_steps(
    options: TheoremOptions, names: str | None = None, limit: int | None = None
) -> tuple[Path, list[dict[str, Any]]]:
    """(the split strategy's folder, the steps of the selected theorems) for `--traced-tactics`."""
    if options.benchmark != "leandojo":
        raise DatasetError("--traced-tactics reads LeanDojo Benchmark 4: add --benchmark leandojo --data DIR")
    records = read_records(options.data, options.split, options.leandojo_split)
    if names:
        wanted = {n.strip() for n in names.split(",") if n.strip()}
        missing = sorted(wanted - {r["full_name"] for r in records})
        if missing:
            raise DatasetError(f"unknown theorem names: {', '.join(missing)}")
        records = [r for r in records if r["full_name"] in wanted]
    if limit is not None:
        records = records[:limit]
    steps = traced_steps(records)
    if not steps:
        raise DatasetError("the selected theorems have no traced tactics")
    return strategy_dir(options.data, options.leandojo_split), steps
