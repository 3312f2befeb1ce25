"""The CoqHammer baseline for miniF2F in Rocq: `hammer` called once per theorem, nothing else.

For each statement of `minif2f_rocq.jsonl` a fresh `coqc` compiles

    <header>
    From Hammer Require Import Hammer.
    <statement>
    Proof. hammer. Qed.

under a wall-clock limit (default 30 s, the budget `prover eval --time-limit 30` gives a search),
N files at a time (default 2, like `--processes 2`). CoqHammer keeps its own defaults (premise
selection, E prover, reconstruction). It shares no code with the prover: it reads the JSONL,
writes files and runs `coqc`. A statement whose file fails before `hammer` runs (the header or
the statement itself) is `start_error`, reported apart like the prover's statements that do not
elaborate. Results are appended to OUT (one JSON line per theorem), so a rerun resumes.

    python -m benchmarks.hammer_baseline /work/shared/benchmarks/minif2f/minif2f_rocq.jsonl \\
        --split test --out /work/runs/hammer_test.jsonl [--limit N] [--jobs 2] [--time-limit 30]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

IMPORT = "From Hammer Require Import Hammer."


def check(record: dict, time_limit: float) -> dict:
    """Compile the statement with `hammer` as its whole proof: proved, failed, timeout or start_error."""
    header = record.get("header") or ""
    if header and not header.endswith("\n"):
        header += "\n"
    statement = record["formal_statement"].strip()
    with tempfile.TemporaryDirectory(prefix="hammer-") as tmp:
        # the statement alone first (cheap, no hammer): a file that fails here does not elaborate
        stub = Path(tmp) / "Stub.v"
        stub.write_text(f"{header}{statement}\nProof.\nAdmitted.\n", encoding="utf-8")
        elaborate = subprocess.run(["coqc", "-q", stub.name], cwd=tmp, capture_output=True, text=True, timeout=300)
        if elaborate.returncode != 0:
            message = (elaborate.stdout + elaborate.stderr).strip()
            return {"theorem": record["name"], "status": "start_error", "seconds": 0.0, "message": message[-500:]}
        path = Path(tmp) / "Hammer.v"
        path.write_text(f"{header}{IMPORT}\n{statement}\nProof. hammer. Qed.\n", encoding="utf-8")
        started = time.monotonic()
        # its own process group: a timeout kills coqc and the provers it started
        child = subprocess.Popen(
            ["coqc", "-q", path.name], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            output, _ = child.communicate(timeout=time_limit)
            status = "proved" if child.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            status = "timeout"
        seconds = time.monotonic() - started
    return {"theorem": record["name"], "status": status, "seconds": round(seconds, 3), "message": output[-500:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("jsonl", type=Path, help="minif2f_rocq.jsonl")
    parser.add_argument("--out", type=Path, required=True, help="results JSONL (appended; a rerun resumes)")
    parser.add_argument("--split", choices=("valid", "test"))
    parser.add_argument("--limit", type=int, help="only the first N statements of the split")
    parser.add_argument("--names", help="comma-separated names (instead of --limit)")
    parser.add_argument("--jobs", type=int, default=2, help="coqc processes at once (default: 2)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per theorem (default: 30)")
    args = parser.parse_args()

    records = [json.loads(line) for line in args.jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [r for r in records if args.split is None or r["split"] == args.split]
    if args.names:
        wanted = set(args.names.split(","))
        records = [r for r in records if r["name"] in wanted]
    if args.limit is not None:
        records = records[: args.limit]
    done = set()
    if args.out.exists():
        done = {json.loads(line)["theorem"] for line in args.out.read_text().splitlines() if line.strip()}
    todo = [r for r in records if r["name"] not in done]
    started = time.monotonic()
    with args.out.open("a", encoding="utf-8") as out, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda r: check(r, args.time_limit), todo):
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
            out.flush()
            print(f"{result['theorem']}: {result['status']} ({result['seconds']} s)", flush=True)
    wall = time.monotonic() - started
    names = {r["name"] for r in records}
    results = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    results = [r for r in results if r["theorem"] in names]
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    proved = counts.get("proved", 0)
    print(
        f"hammer once per theorem: proved {proved}/{len(results)} "
        f"({proved / max(1, len(results)):.1%}); {counts}; this run {wall:.0f} s wall for {len(todo)} theorems"
    )


if __name__ == "__main__":
    main()
