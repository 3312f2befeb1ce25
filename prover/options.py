"""Command-line options come from dataclasses; the resolved values go into every results file.

Each field carries its `--help` text and its valid range. `add_options` turns a dataclass into
argparse flags; `resolve` builds the dataclass from (defaults < preset < flags given); every
dataclass checks its ranges when built (`check_ranges`), so nonsense such as `--limit -1` is
refused in one place. Secret fields (`--api-key`) are never written anywhere: `to_jsonable`
leaves them out and their `repr` hides them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from prover.paths import nonempty_path
from search.best_first import Budget, SearchConfig

T = TypeVar("T")


def opt(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple[str, ...] | None = None,
    short: str | None = None,
    const: Any = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    secret: bool = False,
    neutral: bool = False,
) -> Any:
    """A dataclass field that is also a flag. `const` makes the flag's value optional.

    `at_least`/`above`/`at_most` bound a number (None stays allowed: it means "not set"; a bounded
    number must be finite); a `secret`
    never reaches config.json, results or logs; a `neutral` option (and a secret) does not change
    results, so a resumed run may change it.
    """
    return field(
        default=default,
        repr=not secret,
        metadata={
            "help": help,
            "flag": flag,
            "choices": choices,
            "short": short,
            "const": const,
            "at_least": at_least,
            "above": above,
            "at_most": at_most,
            "secret": secret,
            "neutral": neutral or secret,
        },
    )


class OptionError(ValueError):
    """An option value outside its range; the message names the flag."""


def check_ranges(obj: Any) -> None:
    """Refuse numbers outside the ranges the fields declare (called by each dataclass's __post_init__)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        low, strict = f.metadata.get("above"), True
        if low is None:
            low, strict = f.metadata.get("at_least"), False
        high = f.metadata.get("at_most")
        if low is None and high is None:
            continue
        if not math.isfinite(value):
            raise OptionError(f"{_flag(f)} must be a finite number (got {value:g})")
        if low is not None and (value <= low if strict else value < low):
            bound = f"greater than {low:g}" if strict else f"at least {low:g}"
            raise OptionError(f"{_flag(f)} must be {bound} (got {value:g})")
        if high is not None and value > high:
            raise OptionError(f"{_flag(f)} must be at most {high:g} (got {value:g})")


def neutral_fields(cls: type) -> frozenset[str]:
    """Options that do not change results (retries, timeouts of a transport, secrets)."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("neutral"))


def _flag(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_options(parser: argparse.ArgumentParser, cls: type, title: str, skip: frozenset[str] = frozenset()) -> None:
    """Add the fields of `cls` as flags, except those named in `skip` (they keep their defaults)."""
    group = parser.add_argument_group(title)
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flags = [_flag(f)] + ([f.metadata["short"]] if f.metadata.get("short") else [])
        kind = hints[f.name]
        help_text = f.metadata.get("help", "")
        default = f.default
        notes = [] if default in (None, "", False) else [f"default: {default}"]
        if f.metadata.get("above") is not None:
            notes.append(f"> {f.metadata['above']:g}")
        elif f.metadata.get("at_least") is not None:
            notes.append(f"≥ {f.metadata['at_least']:g}")
        if f.metadata.get("at_most") is not None:
            notes.append(f"≤ {f.metadata['at_most']:g}")
        shown = f" ({'; '.join(notes)})" if notes else ""
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text + shown}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            base = _base_type(kind)
            kwargs["type"] = base
            kwargs["metavar"] = f.name.upper()
            if f.metadata.get("choices"):
                kwargs["choices"] = f.metadata["choices"]
            if f.metadata.get("const") is not None:
                kwargs.update(nargs="?", const=f.metadata["const"])
        group.add_argument(*flags, **kwargs)


def _base_type(kind: Any) -> Any:
    text = str(kind)
    if kind is int or text.startswith("int"):
        return int
    if kind is float or text.startswith("float"):
        return float
    if "Path" in text:
        return nonempty_path
    return str


def resolve(cls: type[T], args: argparse.Namespace, preset: dict[str, Any] | None = None) -> T:
    values: dict[str, Any] = {}
    given = vars(args)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            values[f.name] = given[f.name]
        elif preset and f.name in preset:
            values[f.name] = preset[f.name]
    return cls(**values)


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.metadata.get("secret")
        }
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


@dataclass(frozen=True)
class TheoremOptions:
    benchmark: str = opt(
        "minif2f",
        "benchmark the theorem NAME comes from: minif2f, or leandojo "
        "(LeanDojo Benchmark 4 in --data, for --env leandojo)",
        choices=("minif2f", "leandojo"),
    )
    split: str | None = opt(None, "benchmark split: valid or test (default: both)", choices=("valid", "test"))
    data: Path | None = opt(None, "directory with the benchmark's JSONL files (default: download and cache)")
    variant: str | None = opt(
        None,
        "miniF2F variant: lean4 (maintained port; the default for --env lean), lean4_llemma (the statements "
        "Llemma's 26.23%% used), lean4_deepseek, isabelle (the one --env isabelle reads), rocq (miniF2F in "
        "Rocq; the one --env coq reads)",
        choices=("lean4", "lean4_llemma", "lean4_deepseek", "isabelle", "rocq"),
    )
    file: Path | None = opt(None, "a .lean or .v file that contains the theorem")
    theorem: str | None = opt(None, "the theorem's name inside --file")
    statement: str | None = opt(None, 'a statement given inline, e.g. "theorem t : 1 + 1 = 2 :="')
    header: str = opt("", "imports/opens for --statement")
    leandojo_split: str = opt(
        "random",
        "leandojo: LeanDojo Benchmark 4's split strategy (a folder of --data): random or novel_premises",
        choices=("random", "novel_premises"),
    )

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class EnvOptions:
    env: str = opt(
        "lean",
        "proof assistant: lean (the Lean REPL), coq (coqidetop), isabelle (PISA servers) "
        "or leandojo (lean_dojo.Dojo on a traced repository)",
        choices=("lean", "coq", "isabelle", "leandojo"),
    )
    repl_cmd: str | None = opt(None, "command that starts a Lean REPL (default: `lake exe repl` in --workspace)")
    workspace: Path | None = opt(None, "the Lean workspace (default: the project's, or ~/.cache/prover/lean)")
    processes: int = opt(1, "proof-assistant processes in the pool", at_least=1)
    memory_limit_mb: int | None = opt(
        None, "restart a proof-assistant process above this resident memory (MiB)", at_least=1
    )
    coq_cmd: str = opt("coqidetop.opt -main-channel stdfds", "command that starts coqidetop")
    allow_native_decide: bool = opt(False, "let tactics use native_decide (trusts the compiler)")
    pisa_ports: str = opt("9000", "isabelle: comma-separated ports of running PISA servers (one slot each)")
    pisa_host: str = opt("localhost", "isabelle: host of the PISA servers")
    pisa_verify_port: int | None = opt(
        None,
        "isabelle: port of a PISA server used only to re-check proofs (warm, never used for search); "
        "without it each re-check re-initialises the first search server",
        at_least=1,
    )
    isabelle_path: Path | None = opt(None, "isabelle: the Isabelle installation PISA runs (default ~/Isabelle2022)")
    isabelle_workdir: Path | None = opt(None, "isabelle: directory PISA reads theories from (header theories go here)")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class GeneratorOptions:
    generator: str = opt(
        "automation",
        "tactic generator: automation (no model), hf, vllm, openai",
        choices=("automation", "hf", "vllm", "openai"),
    )
    model: str | None = opt(
        None, "model hub id or local path (hf, vllm) or model name (openai); default EleutherAI/llemma_7b"
    )
    tactics: Path | None = opt(None, "automation: file with one tactic per line, tried in order")
    prompt: str = opt("llemma", "prompt template: llemma, llmstep or a template FILE")
    temperature: float = opt(0.0, "sampling temperature (0 with --beam for beam search)", at_least=0)
    top_p: float = opt(0.95, "nucleus sampling mass", above=0, at_most=1)
    beam: bool = opt(False, "beam search instead of sampling")
    max_new_tokens: int = opt(256, "maximum tokens per tactic", at_least=1)
    device: str | None = opt(None, "hf: cpu, cuda, mps (default: the best available)")
    dtype: str | None = opt(None, "hf: float32, float16, bfloat16 (default: bfloat16 on GPU, float32 on CPU)")
    base_url: str | None = opt(None, "openai: base URL of the server (env OPENAI_BASE_URL)")
    api_key: str | None = opt(
        None, "openai: API key (env OPENAI_API_KEY); never written to config.json or results", secret=True
    )
    retries: int = opt(
        4,
        "openai: retries of a request that failed transiently (5xx, 429, timeout, lost connection)",
        at_least=0,
        neutral=True,
    )
    request_timeout: float = opt(300.0, "openai: seconds to wait for one answer of the server", above=0, neutral=True)
    seed: int = opt(0, "random seed for sampling")

    def __post_init__(self) -> None:
        check_ranges(self)


_BUDGET, _SEARCH = Budget(), SearchConfig()  # the search's defaults: the flags repeat none of them


@dataclass(frozen=True)
class SearchOptions:
    preset: str | None = opt(
        None,
        "llemma: Llemma's miniF2F setup (32 beams at temperature 0, length-normalised score, 100 expansions, 600 s)",
        choices=("llemma",),
    )
    expansions: int = opt(_BUDGET.max_expansions, "maximum expansions per theorem", at_least=1)
    time_limit: float = opt(_BUDGET.time_limit, "wall-clock seconds per theorem", above=0)
    tactic_timeout: float = opt(_BUDGET.tactic_timeout, "seconds per tactic", above=0)
    max_restarts: int = opt(
        _BUDGET.max_restarts,
        "proof-assistant restarts this theorem's own calls may cause before its search stops "
        "(each backend also gives up on a process that crashes over and over in a row)",
        at_least=0,
    )
    samples: int = opt(_SEARCH.samples, "candidate tactics per expanded state", at_least=1)
    batch: int = opt(_SEARCH.batch, "states expanded per model call", at_least=1)
    scorer: str = opt(
        _SEARCH.scorer,
        "frontier order: logprob (sum) or normalized (sum of per-token means)",
        choices=("logprob", "normalized"),
    )

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class DraftOptions:
    sketch: Path | None = opt(None, "a sketch to prove instead of asking the model")
    sketches: int = opt(4, "sketches to sample from the model", at_least=1)
    closers: Path | None = opt(None, "tactics that may close a gap, one per line (default: the automation list)")

    def __post_init__(self) -> None:
        check_ranges(self)


PRESETS: dict[str, dict[str, Any]] = {
    "llemma": {
        "samples": 32,
        "beam": True,
        "temperature": 0.0,
        "scorer": "normalized",
        "expansions": 100,
        "time_limit": 600.0,
        "max_new_tokens": 256,
        "prompt": "llemma",
    },
}
