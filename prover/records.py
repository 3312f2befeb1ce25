"""Append-only JSONL result files (`results.jsonl`, `tactic_results.jsonl`): one record per line,
flushed as each finishes, so a killed run loses at most what was in flight and resumes from the rest."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prover.options import GeneratorOptions, neutral_fields
from prover.session import UsageError

__all__ = ["ResultsWriter", "read_results", "refuse_other_settings"]

log = logging.getLogger(__name__)


def read_results(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (killed mid-write) is ignored."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("ignoring a torn line in %s", path)
    return records


class ResultsWriter:
    """Appends one JSON line per record and flushes it to disk at once. A torn last line left by
    a killed run is ended first, so the next record starts a line of its own (`read_results`
    skips the torn one) instead of being glued to it and lost."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        if self._file.tell() > 0:
            with path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
            if torn:
                self._file.write("\n")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def refuse_other_settings(out: Path, old: dict[str, Any], new: dict[str, Any], keys: Sequence[str]) -> None:
    """A run directory resumes only the run it holds: refuse `new` when one of the dotted `keys`
    of the configuration differs from `old`'s (results would not be comparable)."""

    def pick(c: Any, dotted: str) -> Any:
        for part in dotted.split("."):
            c = c.get(part, {}) if isinstance(c, dict) else {}
        if dotted == "generator" and isinstance(c, dict):
            # retries, timeouts and keys do not change results (and an old run may hold a key)
            c = {k: v for k, v in c.items() if k not in neutral_fields(GeneratorOptions)}
        return c

    changed = [k for k in keys if pick(old, k) != pick(new, k)]
    if changed:
        raise UsageError(
            f"{out} holds a run with different settings ({', '.join(changed)}); "
            "use another --out to compare, or delete the directory"
        )
