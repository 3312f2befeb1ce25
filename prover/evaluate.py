"""`prover eval` and `prover report`: batch evaluation of pass rates.

A run directory holds `config.json` (the resolved config), `results.jsonl` (one record per
theorem attempt, appended and flushed as each finishes), `summary.json` and plots. Rerunning
the same command skips what `results.jsonl` already has, so a killed run loses at most the
theorems in flight. Many searches run at once in one event loop, sharing one batched
generator and a pool of proof-assistant processes; `--ray` spreads them over Ray workers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envs.types import Theorem
from prover.datasets import load_jsonl_benchmark, load_minif2f
from prover.options import add_options, check_ranges, opt, resolve, to_jsonable
from prover.paths import check_input_file, check_output_file, nonempty_path, prepare_output_dir
from prover.records import ResultsWriter, read_results, refuse_other_settings
from prover.session import (
    ProveConfig,
    Session,
    UsageError,
    add_prove_options,
    benchmark_variant,
    make_record,
    minif2f_variant,
    resolve_prove_config,
)

__all__ = ["EvalOptions", "evaluate", "make_record", "summarize"]

log = logging.getLogger(__name__)

RESULTS, CONFIG, SUMMARY = "results.jsonl", "config.json", "summary.json"
# Options that change results: a resumed run must use the same ones.
FINGERPRINT = (
    "theorem.benchmark",
    "theorem.variant",
    "theorem.data",
    "benchmark_sha256",
    "env.env",
    "generator",
    "search",
)


@dataclass(frozen=True)
class EvalOptions:
    out: Path | None = opt(
        None, "run directory, required (results.jsonl, config.json, summary.json, plots; tactic prediction: optional)"
    )
    limit: int | None = opt(None, "evaluate only the first N theorems", at_least=1)
    names: str | None = opt(None, "comma-separated theorem names to evaluate")
    benchmark_file: Path | None = opt(
        None, "a JSONL benchmark (name, split, header, formal_statement) instead of miniF2F"
    )
    concurrency: int | None = opt(None, "searches at once (default: one per proof-assistant process)", at_least=1)
    attempts: int = opt(1, "attempts per theorem with different seeds, for pass@k", at_least=1)
    ray: str | None = opt(
        None, "run on Ray: a cluster ADDRESS, or no value (or `local`) to start a local instance", const="local"
    )
    ray_workers: int = opt(2, "Ray workers (each with its own generator engine and proof-assistant pool)", at_least=1)
    batch_wait_ms: float = opt(5.0, "how long the shared generator gathers requests into one batch", at_least=0)
    tactic_steps: Path | None = opt(
        None,
        "tactic prediction instead of proof search: a JSONL file of recorded steps "
        "(state, tactic; optionally theorem and prefix)",
    )
    traced_tactics: bool = opt(
        False, "tactic prediction on the traced tactics of --benchmark leandojo (state_before -> tactic)"
    )
    top_k: int = opt(8, "tactic prediction: k for top-k exact match", at_least=1)
    check: bool = opt(False, "tactic prediction: run each suggestion in the proof assistant (steps need `theorem`)")

    def __post_init__(self) -> None:
        check_ranges(self)


# --------------------------------------------------------------------------- summary


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n attempts with c successes (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pass rates and budgets from the records alone (so a resumed run summarises everything)."""
    by_theorem: dict[str, list[dict]] = {}
    for r in records:
        by_theorem.setdefault(r["theorem"], []).append(r)
    theorems = len(by_theorem)
    proved = sum(any(r["status"] == "proved" for r in rs) for rs in by_theorem.values())
    attempts = min((len(rs) for rs in by_theorem.values()), default=0)
    pass_k = {}
    for k in range(1, attempts + 1):
        pass_k[f"pass@{k}"] = round(
            statistics.fmean(
                pass_at_k(len(rs), sum(r["status"] == "proved" for r in rs), k) for rs in by_theorem.values()
            ),
            4,
        )
    splits: dict[str, dict[str, int]] = {}
    for rs in by_theorem.values():
        split = rs[0].get("split") or "all"
        entry = splits.setdefault(split, {"theorems": 0, "proved": 0})
        entry["theorems"] += 1
        entry["proved"] += any(r["status"] == "proved" for r in rs)
    for entry in splits.values():
        entry["pass_rate"] = round(entry["proved"] / entry["theorems"], 4)  # type: ignore[assignment]

    def stats(key: str, subset: Iterable[dict]) -> dict[str, float]:
        values = [float(r[key]) for r in subset if r.get(key) is not None]
        if not values:
            return {"mean": 0.0, "median": 0.0}
        return {"mean": round(statistics.fmean(values), 3), "median": round(statistics.median(values), 3)}

    low, high = wilson_interval(proved, theorems)
    successes = [r for r in records if r["status"] == "proved"]
    return {
        "theorems": theorems,
        "attempts": len(records),
        "proved": proved,
        "pass_rate": round(proved / theorems, 4) if theorems else 0.0,
        "pass_rate_ci95": [round(low, 4), round(high, 4)],
        **pass_k,
        "splits": splits,
        "expansions": stats("expansions", records),
        "wall_s": stats("wall_s", records),
        "expansions_proved": stats("expansions", successes),
        "wall_s_proved": stats("wall_s", successes),
        "model_s_total": round(sum(r.get("model_s") or 0 for r in records), 3),
        "env_s_total": round(sum(r.get("env_s") or 0 for r in records), 3),
        "stop_reasons": dict(Counter(r["stop_reason"] for r in records)),
        "statuses": dict(Counter(r["status"] for r in records)),
        "verification_failures": sum(r.get("verification_failures") or 0 for r in records),
        "variants": sorted({r.get("variant") or "" for r in records}),
    }


def summary_table(summary: dict[str, Any], title: str = "") -> str:
    lines = [title] if title else []
    lines.append(
        f"pass rate   {summary['proved']}/{summary['theorems']} = {summary['pass_rate']:.2%} "
        f"(95% CI {summary['pass_rate_ci95'][0]:.2%}–{summary['pass_rate_ci95'][1]:.2%})"
    )
    for key, value in summary.items():
        if key.startswith("pass@"):
            lines.append(f"{key:<11} {value:.2%}")
    for split, entry in sorted(summary["splits"].items()):
        lines.append(f"  {split:<9} {entry['proved']}/{entry['theorems']} = {entry['pass_rate']:.2%}")
    lines.append(f"expansions  mean {summary['expansions']['mean']}  median {summary['expansions']['median']}")
    lines.append(f"wall s      mean {summary['wall_s']['mean']}  median {summary['wall_s']['median']}")
    lines.append("stop        " + ", ".join(f"{k}: {v}" for k, v in sorted(summary["stop_reasons"].items())))
    if summary["verification_failures"]:
        lines.append(f"WARNING     {summary['verification_failures']} proofs failed the fresh check (backend bug)")
    return "\n".join(lines)


def write_plots(records: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Proved theorems vs wall time and vs expansions (cumulative)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'prover[plots]'); no plots written")
        return []
    best: dict[str, dict] = {}
    for r in records:
        if r["status"] == "proved":
            old = best.get(r["theorem"])
            if old is None or r["wall_s"] < old["wall_s"]:
                best[r["theorem"]] = r
    written = []
    for key, label, name in (
        ("wall_s", "wall time per theorem (s)", "proved_vs_time.png"),
        ("expansions", "expansions", "proved_vs_expansions.png"),
    ):
        xs = sorted(float(r[key]) for r in best.values())
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.step([0, *xs], list(range(len(xs) + 1)), where="post")
        ax.set_xlabel(label)
        ax.set_ylabel("theorems proved")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if key == "expansions":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{len(xs)} proved of {len({r['theorem'] for r in records})}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(out / name)
    return written


# --------------------------------------------------------------------------- running


def select_theorems(config: ProveConfig, options: EvalOptions) -> list[Theorem]:
    t = config.theorem
    if options.benchmark_file:
        check_input_file(options.benchmark_file, "--benchmark-file")
        theorems = load_jsonl_benchmark(options.benchmark_file, config.language, t.split)
    elif t.benchmark == "leandojo":
        from prover.leandojo_benchmark import load_leandojo

        if config.env.env != "leandojo":
            raise UsageError("--benchmark leandojo runs in its traced repository: add --env leandojo")
        theorems = load_leandojo(t.data, t.split, t.leandojo_split)  # type: ignore[assignment]
    else:
        theorems = load_minif2f(minif2f_variant(config), t.split, t.data)
    if options.names:
        wanted = [n.strip() for n in options.names.split(",") if n.strip()]
        known = {th.name for th in theorems}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise UsageError(f"unknown theorem names: {', '.join(missing)}")
        theorems = [th for th in theorems if th.name in wanted]
    if options.limit is not None:
        theorems = theorems[: options.limit]
    return theorems


def prepare_run_dir(out: Path, config: dict[str, Any]) -> None:
    prepare_output_dir(out, "--out")
    path = out / CONFIG
    if path.exists():
        refuse_other_settings(out, json.loads(path.read_text()), config, FINGERPRINT)
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def pending_jobs(theorems: Sequence[Theorem], attempts: int, done: Sequence[dict]) -> list[tuple[Theorem, int]]:
    finished = {(r["theorem"], r["attempt"]) for r in done}
    return [(t, a) for a in range(attempts) for t in theorems if (t.name, a) not in finished]


class EvalProgress:
    def __init__(self, total: int, proved: int, attempted: int) -> None:
        from tqdm import tqdm

        self.proved = proved
        # in a log file (not a terminal) print a line every 30 s instead of redrawing
        interval = 0.1 if sys.stderr.isatty() else 30.0
        self.bar = tqdm(
            total=total, initial=attempted, unit="thm", file=sys.stderr, dynamic_ncols=True, mininterval=interval
        )
        self.bar.set_postfix(proved=f"{proved}/{attempted}")

    def update(self, record: dict[str, Any]) -> None:
        self.proved += record["status"] == "proved"
        self.bar.set_postfix(proved=f"{self.proved}/{self.bar.n + 1}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


async def run_local(
    config: ProveConfig,
    jobs: Sequence[tuple[Theorem, int]],
    options: EvalOptions,
    writer: ResultsWriter,
    progress: EvalProgress | None,
) -> None:
    """Many searches in one event loop, sharing the session's env and (batched) generator."""
    queue: asyncio.Queue[tuple[Theorem, int]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    async with Session(config, concurrency=options.concurrency, batch_wait_ms=options.batch_wait_ms) as session:

        async def worker() -> None:
            while not queue.empty():
                theorem, attempt = queue.get_nowait()
                record = await session.attempt(theorem, attempt)
                writer.write(record)
                if progress is not None:
                    progress.update(record)

        await asyncio.gather(*(worker() for _ in range(max(1, session.concurrency))))


def evaluate(config: ProveConfig, options: EvalOptions, show_progress: bool = True) -> dict[str, Any]:
    if options.out is None:
        raise UsageError("--out RUNDIR is required")
    prepare_output_dir(options.out, "--out")  # before loading anything: a bad --out is found at once
    theorems = select_theorems(config, options)
    if not theorems:
        raise UsageError("no theorems selected")
    out = options.out
    # records and the fingerprint name what was actually loaded
    variant = f"file:{options.benchmark_file.name}" if options.benchmark_file else benchmark_variant(config)
    config = replace(config, theorem=replace(config.theorem, variant=variant))
    resolved = {**to_jsonable(config), "eval": to_jsonable(replace(options, out=None))}
    if options.benchmark_file:  # its content, not its name, says which statements the records are about
        resolved["benchmark_sha256"] = hashlib.sha256(options.benchmark_file.read_bytes()).hexdigest()
    prepare_run_dir(out, resolved)
    done = read_results(out / RESULTS)
    jobs = pending_jobs(theorems, options.attempts, done)
    total = len(theorems) * options.attempts
    log.info("%d of %d attempts already done; %d to run", total - len(jobs), total, len(jobs))
    selected = {t.name for t in theorems}
    relevant = [r for r in done if r["theorem"] in selected]
    progress = (
        EvalProgress(total, sum(r["status"] == "proved" for r in relevant), len(relevant)) if show_progress else None
    )
    writer = ResultsWriter(out / RESULTS)
    started = time.monotonic()
    try:
        if jobs and options.ray:
            from prover.ray_eval import run_ray

            run_ray(config, jobs, options, writer, progress)
        elif jobs:
            asyncio.run(run_local(config, jobs, options, writer, progress))
    finally:
        writer.close()
        if progress is not None:
            progress.close()
    records = [r for r in read_results(out / RESULTS) if r["theorem"] in selected]
    summary = summarize(records)
    summary["run_wall_s"] = round(time.monotonic() - started, 3)
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    write_plots(records, out)
    return summary


# --------------------------------------------------------------------------- CLI


def cmd_eval(args: argparse.Namespace) -> int:
    config = resolve_prove_config(args)
    options = resolve(EvalOptions, args)
    if config.generator.tactics is not None and config.generator.tactics.suffix == ".jsonl":
        raise UsageError(
            f"--tactics {config.generator.tactics} is an automation tactic list (one tactic per line); "
            f"to measure tactic prediction on recorded steps use --tactic-steps {config.generator.tactics}"
        )
    if options.tactic_steps is not None and options.traced_tactics:
        raise UsageError("--tactic-steps and --traced-tactics both choose the steps: give one")
    if options.traced_tactics:
        from prover.leandojo_benchmark import leandojo_tactic_steps
        from prover.tactic_eval import run_tactic_eval

        if options.check and config.env.env != "leandojo":
            raise UsageError("--traced-tactics --check runs the steps in LeanDojo: add --env leandojo")
        folder, traced = leandojo_tactic_steps(config.theorem, options.names, options.limit)
        return run_tactic_eval(config, folder, options, steps=traced)
    if options.tactic_steps is not None:
        from prover.tactic_eval import run_tactic_eval

        return run_tactic_eval(config, options.tactic_steps, options)
    summary = evaluate(config, options, show_progress=True)
    print(summary_table(summary, f"run {options.out}"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.plot:
        check_output_file(args.plot, "--plot")
    rows = []
    for run in args.runs:
        records = read_results(run / RESULTS)
        if not records:
            raise UsageError(f"{run} has no {RESULTS}")
        rows.append((run, summarize(records)))
    width = max(len(str(r)) for r, _ in rows)
    ks = sorted({k for _, s in rows for k in s if k.startswith("pass@")}, key=lambda k: int(k[5:]))
    header = f"{'run':<{width}}  {'proved':>9}  {'pass rate':>9}  {'95% CI':>15}  " + "  ".join(f"{k:>7}" for k in ks)
    print(header)
    for run, s in rows:
        ci = f"{s['pass_rate_ci95'][0]:.1%}–{s['pass_rate_ci95'][1]:.1%}"
        passes = "  ".join(f"{s[k]:>7.1%}" if k in s else f"{'—':>7}" for k in ks)  # pass@k needs k attempts
        print(f"{str(run):<{width}}  {s['proved']:>4}/{s['theorems']:<4}  {s['pass_rate']:>9.1%}  {ci:>15}  {passes}")
    variants = {tuple(s["variants"]) for _, s in rows}
    if len(variants) > 1:
        print("warning: the runs used different benchmark variants; their numbers are not comparable")
    if args.plot:
        write_comparison_plot([(run, read_results(run / RESULTS)) for run, _ in rows], args.plot)
        print(f"plot written to {args.plot}")
    return 0


def write_comparison_plot(runs: Sequence[tuple[Path, list[dict]]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise UsageError("plots need matplotlib: pip install 'prover[plots]'") from exc
    fig, ax = plt.subplots(figsize=(6, 4))
    for run, records in runs:
        times = sorted(
            min(r["wall_s"] for r in records if r["theorem"] == t and r["status"] == "proved")
            for t in {r["theorem"] for r in records if r["status"] == "proved"}
        )
        ax.step([0, *times], list(range(len(times) + 1)), where="post", label=str(run))
    ax.set_xlabel("wall time per theorem (s)")
    ax.set_ylabel("theorems proved")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate pass rates on a benchmark (resumable, parallel, Ray)",
        description="Run the search on every theorem of a benchmark. Results are appended to RUNDIR/results.jsonl "
        "as each theorem finishes; rerunning the command resumes. With --tactic-steps FILE.jsonl (recorded "
        "steps: state, tactic) or --traced-tactics, measures tactic prediction instead.",
    )
    add_prove_options(p, one_theorem=False)
    add_options_eval(p)
    p.set_defaults(func=cmd_eval)

    r = sub.add_parser(
        "report",
        help="compare evaluation runs side by side",
        description="Print pass rates of one or more run directories side by side.",
    )
    r.add_argument("runs", nargs="+", type=nonempty_path, help="run directories written by `prover eval`")
    r.add_argument("--plot", type=nonempty_path, help="write a PNG comparing proved theorems vs wall time")
    r.set_defaults(func=cmd_report)


def add_options_eval(p: argparse.ArgumentParser) -> None:
    add_options(p, EvalOptions, "evaluation")
