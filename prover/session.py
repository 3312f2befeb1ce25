"""One run: its config, its theorems, and the env and generator it builds, uses and closes.

`resolve_prove_config` turns parsed flags into a `ProveConfig` (defaults < preset < flags) and
`select_theorem` finds the one theorem a command names. `Session` owns the lifetime of what a
run builds: `async with Session(config) as session:` builds the proof-assistant env and the
tactic generator (through `prover.wiring`, the only place that picks backends), wraps the
generator in a `BatchingGenerator` when several searches share it, reseeds it per attempt,
runs metered searches (`prove`: a `SearchResult` with the restarts, replays and verification
time its own calls caused; `attempt`: that result as an evaluation record), and closes both on
the way out, on errors too. Every command goes through it, so no other module builds or closes
an env or a generator. This module never imports the CLI.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from envs.declarations import declarations
from envs.types import EnvSetupError, Language, ProofEnv, TacticGenerator, Theorem
from prover import wiring
from prover.datasets import find_theorem, load_minif2f, theorem_from_file, theorem_from_statement
from prover.generators.base import GeneratorSetupError
from prover.generators.batching import BatchingGenerator
from prover.options import (
    PRESETS,
    EnvOptions,
    GeneratorOptions,
    SearchOptions,
    TheoremOptions,
    add_options,
    resolve,
)
from prover.paths import check_input_file, read_text_file
from search.best_first import Budget, SearchConfig, SearchProgress, SearchResult, best_first_search

log = logging.getLogger(__name__)

EXIT_PROVED, EXIT_NOT_PROVED, EXIT_USAGE = 0, 1, 2  # every command's exit codes


class UsageError(ValueError):
    """The command line asks for something impossible; the message says what to change."""


@dataclass(frozen=True)
class ProveConfig:
    theorem: TheoremOptions
    env: EnvOptions
    generator: GeneratorOptions
    search: SearchOptions

    def budget(self) -> Budget:
        s = self.search
        return Budget(
            max_expansions=s.expansions,
            time_limit=s.time_limit,
            tactic_timeout=s.tactic_timeout,
            max_restarts=s.max_restarts,
        )

    def search_config(self) -> SearchConfig:
        # a model's next call overlaps the checks; the automation list costs nothing to ask
        return SearchConfig(
            samples=self.search.samples,
            batch=self.search.batch,
            scorer=self.search.scorer,
            pipeline=self.generator.generator != "automation",
        )

    @property
    def language(self) -> Language:
        return wiring.env_language(self.env)


def default_config(env: EnvOptions | None = None) -> ProveConfig:
    """Every option at its default (`env` replaces the env's): for commands that need only part of a run."""
    return ProveConfig(TheoremOptions(), env or EnvOptions(), GeneratorOptions(), SearchOptions())


def generator_config(generator: GeneratorOptions, language: str, allow_native_decide: bool = False) -> ProveConfig:
    """A run that needs only a generator for `language` (the suggestion server), with its tactic policy."""
    env = {"lean4": "lean", "coq": "coq", "isabelle": "isabelle"}[language]
    config = default_config(EnvOptions(env=env, allow_native_decide=allow_native_decide))
    return ProveConfig(config.theorem, config.env, generator, config.search)


# the flags that name one theorem; `prover eval` selects theorems otherwise and does not offer them
ONE_THEOREM_FLAGS = frozenset({"file", "theorem", "statement", "header"})
# what a theorem file's suffix says about the proof assistant, when --env is not given
ENV_OF_SUFFIX = {".v": "coq", ".lean": "lean", ".thy": "isabelle"}


def add_prove_options(parser: argparse.ArgumentParser, one_theorem: bool = True) -> None:
    add_options(parser, TheoremOptions, "theorem", skip=frozenset() if one_theorem else ONE_THEOREM_FLAGS)
    add_options(parser, EnvOptions, "proof assistant")
    add_options(parser, GeneratorOptions, "tactic generator")
    add_options(parser, SearchOptions, "search")


def resolve_prove_config(args: argparse.Namespace) -> ProveConfig:
    """Options from defaults < preset < flags; `prover prove X.v` means `--file X.v`, and a file's
    suffix picks `--env` unless it is given."""
    given = vars(args)
    name = given.get("name")
    if name and "file" not in given and Path(name).suffix in ENV_OF_SUFFIX:
        if not Path(name).is_file():
            raise UsageError(f"{name}: no such file (a theorem NAME has no {Path(name).suffix} suffix)")
        args.file, args.name = Path(name), None
    if given.get("file") is not None and "env" not in given and args.file.suffix in ENV_OF_SUFFIX:
        args.env = ENV_OF_SUFFIX[args.file.suffix]
    preset = PRESETS.get(given.get("preset") or "", {})
    config = ProveConfig(
        theorem=resolve(TheoremOptions, args, preset),
        env=resolve(EnvOptions, args, preset),
        generator=resolve(GeneratorOptions, args, preset),
        search=resolve(SearchOptions, args, preset),
    )
    if config.generator.tactics is not None:
        check_input_file(config.generator.tactics, "--tactics")
    return config


def select_theorem(config: ProveConfig, name: str | None) -> Theorem:
    """The one theorem a command names: --statement, --file (and --theorem or NAME), or a benchmark NAME."""
    t = config.theorem
    language = config.language
    if t.statement:
        return theorem_from_statement(t.statement, t.header, language)
    if t.file:
        text = read_text_file(t.file, "--file")
        name = t.theorem or name
        if not name:
            names = [d.name for d in declarations(text, language) if d.name]
            if len(names) != 1:
                listed = f" (it declares {', '.join(names[:10])})" if names else ""
                raise UsageError(f"--file {t.file}: say which theorem with --theorem NAME{listed}")
            name = names[0]
        theorem = theorem_from_file(t.file, name)
        if theorem.language != language:
            raise UsageError(f"{t.file} is {theorem.language}, but --env is {config.env.env}")
        return theorem
    if not name:
        raise UsageError("give a theorem NAME from the benchmark, --file F --theorem NAME, or --statement")
    if t.benchmark == "leandojo":
        from prover.leandojo_benchmark import load_leandojo

        if config.env.env != "leandojo":
            raise UsageError("--benchmark leandojo runs in its traced repository: add --env leandojo")
        return find_theorem(load_leandojo(t.data, t.split, t.leandojo_split), name)  # type: ignore[arg-type]
    return find_theorem(load_minif2f(minif2f_variant(config), t.split, t.data), name)


def minif2f_variant(config: ProveConfig) -> str:
    """The miniF2F variant the env can check: Isabelle's for --env isabelle, Rocq's for --env coq,
    a Lean one (--variant) for lean."""
    env, variant = config.env.env, config.theorem.variant
    own = {"isabelle": "isabelle", "coq": "rocq"}.get(env)
    if own is not None:
        if variant not in (None, own):
            raise UsageError(f"--env {env} reads the {own} variant of miniF2F, not --variant {variant}")
        return own
    if env != "lean" or variant in ("isabelle", "rocq"):
        raise UsageError("miniF2F theorems need --env lean with a Lean 4 --variant, --env coq (rocq) or --env isabelle")
    return variant or "lean4"


def benchmark_variant(config: ProveConfig) -> str:
    """What a results record calls the benchmark its theorems came from."""
    if config.theorem.benchmark == "leandojo":
        return f"leandojo:{config.theorem.leandojo_split}"
    return minif2f_variant(config)


def make_record(result: SearchResult, theorem: Theorem, attempt: int, seed: int, variant: str) -> dict[str, Any]:
    """One line of `results.jsonl`."""
    return {"split": theorem.split, "attempt": attempt, "seed": seed, "variant": variant, **result.to_record()}


class Session:
    """The env and the generator of one run: built on entry, closed on exit (always).

    `env=False` / `generator=False` skip what a command does not need (a file check needs no
    generator, tactic prediction without --check no env). `concurrency` is how many searches
    share the session (default: one per proof-assistant process, `env.size`); with more than one,
    a model generator is wrapped in a `BatchingGenerator` that gathers their requests for
    `batch_wait_ms`. `generator_options` replaces the config's (drafting forces its own prompt).
    """

    def __init__(
        self,
        config: ProveConfig,
        *,
        env: bool = True,
        generator: bool = True,
        concurrency: int | None = None,
        batch_wait_ms: float = 5.0,
        generator_options: GeneratorOptions | None = None,
    ) -> None:
        self.config = config
        self.generator_options = generator_options or config.generator
        self._want_env = env
        self._want_generator = generator
        self._concurrency = concurrency
        self._batch_wait_ms = batch_wait_ms
        self._env: ProofEnv | None = None
        self._generator: TacticGenerator | None = None
        self._seeded: int | None = None  # the attempt the generator is seeded for
        self.concurrency = 1

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Session:
        try:
            self.open()
        except BaseException:
            await self.close()  # whatever was built before the failure
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def open(self) -> None:
        """Build the env and the generator (no process starts before the first theorem)."""
        if self._want_env:
            self._env = wiring.make_env(self.config.env, self.config.search.tactic_timeout)
        self.concurrency = self._concurrency or (self._env.size if self._env is not None else 1)
        if self._want_generator:
            policy = wiring.tactic_policy(self.config.env)
            inner = wiring.make_generator(self.generator_options, self.config.language, policy)
            shared = self.concurrency > 1 and self.generator_options.generator != "automation"
            self._generator = (
                BatchingGenerator(
                    inner,
                    max_batch=max(1, self.concurrency * self.config.search.batch),
                    max_wait=self._batch_wait_ms / 1000,
                )
                if shared
                else inner
            )

    async def close(self) -> None:
        """Close the env and the generator; both are closed even when the first close fails."""
        env, self._env = self._env, None
        generator, self._generator = self._generator, None
        try:
            if env is not None:
                await env.close()
        finally:
            if generator is not None:
                await generator.close()

    @property
    def env(self) -> ProofEnv:
        if self._env is None:
            raise RuntimeError("this session has no env (built with env=False, or closed)")
        return self._env

    @property
    def generator(self) -> TacticGenerator:
        if self._generator is None:
            raise RuntimeError("this session has no generator (built with generator=False, or closed)")
        return self._generator

    # ------------------------------------------------------------------ searches

    def seed_for(self, attempt: int) -> int:
        """Attempt `a` samples with seed `--seed + a` (reproducible with --concurrency 1)."""
        return self.config.generator.seed + attempt

    def reseed(self, attempt: int) -> None:
        """Seed the generator for `attempt`, once per change of attempt (jobs come attempt by attempt)."""
        if attempt != self._seeded:
            self._seeded = attempt
            self.generator.reseed(self.seed_for(attempt))

    async def prove(
        self, theorem: Theorem, attempt: int = 0, on_progress: Callable[[SearchProgress], None] | None = None
    ) -> SearchResult:
        """One metered best-first search; its result counts only what its own calls cost."""
        self.reseed(attempt)
        return await best_first_search(
            self.env, self.generator, theorem, self.config.budget(), self.config.search_config(), on_progress
        )

    async def attempt(self, theorem: Theorem, attempt: int) -> dict[str, Any]:
        """One attempt as a results record. Setup errors abort the run; any other crash is recorded."""
        try:
            result = await self.prove(theorem, attempt)
        except (EnvSetupError, GeneratorSetupError):
            raise
        except Exception as exc:  # one theorem's crash must not lose the run
            log.exception("%s: search crashed", theorem.name)
            result = SearchResult(theorem.name, "error", "crash", error=f"{type(exc).__name__}: {exc}")
        return make_record(result, theorem, attempt, self.seed_for(attempt), self.config.theorem.variant or "")
