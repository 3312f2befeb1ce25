"""Best-first proof search: `best_first_search(env, generator, theorem, budget) -> SearchResult`.

The frontier holds open states ordered by a score of their path (higher first).
Each step pops up to `batch` states, asks the generator for `samples` candidates
per state in one call, runs the candidates (at most `env.size` at once), and
deduplicates the resulting states by goal text. When the assistant reports a closed
proof, the whole proof is re-checked with `env.verify` before it counts; a rejected
proof is recorded as `verification_failed` and the search goes on. With
`SearchConfig.pipeline` the generator works on the next batch while this one is checked.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from envs.types import (
    EnvError,
    EnvSetupError,
    Failed,
    Progress,
    ProofEnv,
    Proved,
    Suggestion,
    TacticGenerator,
    TacticResult,
    Theorem,
    TimedOut,
    Usage,
    Verdict,
    current_usage,
    metered,
)
from search.tree import Node, NodeStatus, Outcome, SearchTree

log = logging.getLogger(__name__)


Scorer = Callable[[float, Suggestion], float]


def sum_logprob(parent_score: float, s: Suggestion) -> float:
    """ReProver: the path's total log-probability."""
    return parent_score + s.logprob


def length_normalized(parent_score: float, s: Suggestion) -> float:
    """Llemma's evaluation: sum over the path of each tactic's log-probability per token."""
    return parent_score + s.logprob / max(s.num_tokens, 1)


SCORERS: dict[str, Scorer] = {"logprob": sum_logprob, "normalized": length_normalized}


@dataclass(frozen=True, slots=True)
class Budget:
    """Every knob finite. Running out is a stop reason, never a status."""

    max_expansions: int = 100
    time_limit: float = 600.0
    tactic_timeout: float = 10.0
    max_restarts: int = 10

    def __post_init__(self) -> None:
        for name in ("max_expansions", "time_limit", "tactic_timeout", "max_restarts"):
            value = getattr(self, name)
            if not value >= 0 or value == float("inf"):
                raise ValueError(f"budget {name} must be finite and non-negative, got {value}")


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """`pipeline`: ask the generator for the next batch while this one is checked (for model generators)."""

    samples: int = 8
    batch: int = 1
    scorer: str = "logprob"
    pipeline: bool = False

    def __post_init__(self) -> None:
        if self.samples < 1 or self.batch < 1:
            raise ValueError("samples and batch must be at least 1")
        if self.scorer not in SCORERS:
            raise ValueError(f"unknown scorer {self.scorer!r}; choose from {sorted(SCORERS)}")


ResultStatus = Literal["proved", "failed", "error"]  # a search's outcome; a node's is `NodeStatus`


@dataclass(slots=True)
class SearchResult:
    """`env_s`, `model_s`, `verify_s`: wall time with at least one such call of this search in flight.

    `restarts`, `replays`, `verify_s` are what the env charged to this search's own calls (`metered`).
    """

    theorem: str
    status: ResultStatus
    stop_reason: str
    proof: list[str] = field(default_factory=list)
    proof_text: str = ""
    verified: bool = False
    verdict: Verdict | None = None
    expansions: int = 0
    tactic_calls: int = 0
    model_calls: int = 0
    model_s: float = 0.0
    env_s: float = 0.0
    verify_s: float = 0.0
    wall_s: float = 0.0
    verification_failures: int = 0
    restarts: int = 0
    replays: int = 0
    error: str = ""
    tree: SearchTree | None = field(default=None, repr=False)

    @property
    def graph(self) -> Any:
        """The search tree as a `networkx.DiGraph` (None when the search never started)."""
        return self.tree.to_networkx() if self.tree is not None else None

    def to_record(self) -> dict[str, Any]:
        """The flat JSON record `prover prove --json` prints and `prover eval` stores."""
        return {
            "theorem": self.theorem,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "proof": self.proof_text,
            "tactics": list(self.proof),
            "verified": self.verified,
            "axioms": list(self.verdict.axioms) if self.verdict else [],
            "expansions": self.expansions,
            "tactic_calls": self.tactic_calls,
            "model_calls": self.model_calls,
            "model_s": round(self.model_s, 3),
            "env_s": round(self.env_s, 3),
            "verify_s": round(self.verify_s, 3),
            "wall_s": round(self.wall_s, 3),
            "verification_failures": self.verification_failures,
            "restarts": self.restarts,
            "replays": self.replays,
            "nodes": len(self.tree) if self.tree else 0,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class SearchProgress:
    expansions: int
    open_states: int
    best_score: float
    elapsed: float


class _Timer:
    """Wall time during which at least one call of one kind was in flight: concurrent calls count once."""

    __slots__ = ("spent", "_in_flight", "_since")

    def __init__(self) -> None:
        self.spent = 0.0
        self._in_flight = 0
        self._since = 0.0

    def __enter__(self) -> None:
        if self._in_flight == 0:
            self._since = time.monotonic()
        self._in_flight += 1

    def __exit__(self, *exc: object) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self.spent += time.monotonic() - self._since


class _Clock:
    """This search's time in the model, in tactic checking and in fresh re-checks."""

    __slots__ = ("model", "env", "verify")

    def __init__(self) -> None:
        self.model = _Timer()
        self.env = _Timer()
        self.verify = _Timer()


@dataclass(slots=True)
class _Counts:
    expansions: int = 0
    tactic_calls: int = 0
    model_calls: int = 0
    verification_failures: int = 0


@dataclass(slots=True)
class _Checked:
    """What one candidate's run produced; `verdict` only for a closed proof that was re-checked."""

    result: TacticResult
    verdict: Verdict | None = None


@dataclass(slots=True)
class _Checks:
    """The outcome of checking one expansion's candidates (index-aligned with its jobs)."""

    results: list[_Checked | None]
    error: EnvError | None = None


class _Collector:
    """The garbage collector while searches run (process-wide, so shared by concurrent searches).

    A search tree is long-lived and acyclic, so generational collection would examine it again
    and again, and full collections grow with it: the cost per node would grow with the tree.
    While searches run, every `every` recorded candidates the young generations are collected
    (freeing young cyclic garbage) and the survivors are moved to the permanent generation
    (`gc.freeze`), so each later collection examines only what is newer; reference counting still
    frees trees and states. The last search to end unfreezes everything. While others still run,
    a search that ends unfreezes and runs one full collection (freeing cycles that died frozen)
    only if `release_every` seconds passed since the last one: with a model loaded a full
    collection takes most of a second, and it stops every search in the event loop.
    A process that froze objects itself is left alone; `COLLECTOR.every = 0` turns this off.
    """

    every = 4096
    release_every = 60.0

    def __init__(self) -> None:
        self.searches = 0
        self.active = False
        self.pending = 0
        self.released = 0.0

    def enter(self) -> None:
        if self.searches == 0:
            self.active = self.every > 0 and gc.isenabled() and gc.get_freeze_count() == 0
            self.pending = self.every  # the first freeze takes what the process already holds (modules, models)
            self.released = time.monotonic()
        self.searches += 1
        self.grew(0)

    def grew(self, nodes: int) -> None:
        self.pending += nodes
        if self.active and self.pending >= self.every:
            self.pending = 0
            gc.collect(1)
            gc.freeze()

    def leave(self) -> None:
        self.searches -= 1
        if not self.active:
            return
        if self.searches == 0:
            self.active = False
            gc.unfreeze()
        elif time.monotonic() - self.released >= self.release_every:
            self.released = time.monotonic()
            gc.unfreeze()
            gc.collect()
            self.pending = self.every  # the searches still running refreeze at their next step

    @contextmanager
    def searching(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()


COLLECTOR = _Collector()


async def best_first_search(
    env: ProofEnv,
    generator: TacticGenerator,
    theorem: Theorem,
    budget: Budget = Budget(),
    config: SearchConfig = SearchConfig(),
    on_progress: Callable[[SearchProgress], None] | None = None,
) -> SearchResult:
    """Search for a proof of `theorem`; see the module docstring for the order and the guarantees.

    The candidates of an expansion run concurrently, at most `env.size` at a time, launched in
    candidate order; their outcomes enter the tree in candidate order. While a closed proof is
    re-checked, and once one is verified, no new candidate starts (those in flight finish within
    their timeout and are recorded). The env's charges for this search's calls (restarts, replays,
    verification time) are its own, and are passed on to the caller's meter when it has one.
    """
    outer = current_usage()
    with metered() as usage, COLLECTOR.searching():
        try:
            return await _search(env, generator, theorem, budget, config, on_progress, usage)
        finally:
            for charge in fields(Usage):
                setattr(outer, charge.name, getattr(outer, charge.name) + getattr(usage, charge.name))


async def _search(
    env: ProofEnv,
    generator: TacticGenerator,
    theorem: Theorem,
    budget: Budget,
    config: SearchConfig,
    on_progress: Callable[[SearchProgress], None] | None,
    usage: Usage,
) -> SearchResult:
    started = time.monotonic()
    deadline = started + budget.time_limit
    clock = _Clock()
    scorer = SCORERS[config.scorer]
    width = max(1, env.size)
    counts = _Counts()
    found: list[str] = []  # the verified proof, once there is one
    verdicts: list[Verdict] = []  # the last fresh check's verdict is reported
    verify_lock = asyncio.Lock()

    def finish(status: ResultStatus, reason: str, tree: SearchTree | None = None, **extra: Any) -> SearchResult:
        return SearchResult(
            theorem=theorem.name,
            status=status,
            stop_reason=reason,
            model_s=clock.model.spent,
            env_s=clock.env.spent,
            # the env's own accounting when it keeps one, else the time this search waited for it
            verify_s=usage.verify_s or clock.verify.spent,
            wall_s=time.monotonic() - started,
            restarts=usage.restarts,
            replays=usage.replays,
            verdict=verdicts[-1] if verdicts else None,
            tree=tree,
            expansions=counts.expansions,
            tactic_calls=counts.tactic_calls,
            model_calls=counts.model_calls,
            verification_failures=counts.verification_failures,
            **extra,
        )

    try:
        with clock.env:
            root = await env.start(theorem)
    except EnvSetupError:
        raise
    except EnvError as exc:
        return finish("error", "start_error", error=str(exc))

    tree = SearchTree(root)
    counter = itertools.count()
    frontier: list[tuple[float, int, int]] = [(-0.0, next(counter), tree.root.id)]

    def out_of_time() -> bool:
        return time.monotonic() >= deadline

    def too_many_restarts() -> bool:
        return usage.restarts > budget.max_restarts

    def pop_batch() -> list[Node]:
        batch: list[Node] = []
        while frontier and len(batch) < config.batch:
            _, _, node_id = heapq.heappop(frontier)
            node = tree.nodes[node_id]
            if not node.expanded and node.status is NodeStatus.OPEN:
                batch.append(node)
        return batch

    async def ask(batch: list[Node]) -> list[list[Suggestion]]:
        with clock.model:
            suggestions = await generator.generate([n.state for n in batch], config.samples)
        counts.model_calls += 1
        counts.expansions += len(batch)
        return suggestions

    verifying = [0]  # closed proofs being re-checked; no candidate starts meanwhile
    may_launch = asyncio.Event()
    may_launch.set()

    async def verify(node: Node, tactic: str) -> Verdict | None:
        """Re-check a closed proof, one at a time; None when another proof was accepted meanwhile."""
        verifying[0] += 1
        may_launch.clear()
        try:
            async with verify_lock:
                if found:
                    return None
                proof = [e.tactic for e in tree.path_to(node)] + [tactic]
                with clock.verify:
                    verdict = await env.verify(theorem, proof)
                verdicts.append(verdict)
                if verdict.accepted:
                    found.extend(proof)
                return verdict
        finally:
            verifying[0] -= 1
            if verifying[0] == 0:
                may_launch.set()

    async def check(jobs: list[tuple[Node, Suggestion]]) -> _Checks:
        """Run the jobs at most `width` at a time, taking them in order; stop taking once proved."""
        checks = _Checks([None] * len(jobs))
        order = iter(range(len(jobs)))  # shared: each job is taken by exactly one worker

        async def worker() -> None:
            while True:
                # a closed proof under re-check will most likely end the search: start nothing until it is judged
                await may_launch.wait()
                if found or checks.error is not None or too_many_restarts():
                    return
                i = next(order, -1)
                if i < 0:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                node, s = jobs[i]
                try:
                    with clock.env:
                        result = await env.run_tactic(node.state, s.tactic, min(budget.tactic_timeout, remaining))
                    counts.tactic_calls += 1
                    if isinstance(result, Proved):
                        verdict = await verify(node, s.tactic)
                        if verdict is None:
                            continue  # a proof was accepted meanwhile; this one is ignored, unchecked
                        checks.results[i] = _Checked(result, verdict)
                    else:
                        checks.results[i] = _Checked(result)
                except EnvSetupError:
                    raise
                except EnvError as exc:
                    checks.error = checks.error or exc
                    return

        if width == 1 or len(jobs) == 1:
            await worker()  # nothing to overlap: no tasks, no extra turns of the event loop
            return checks
        workers = [asyncio.ensure_future(worker()) for _ in range(min(width, len(jobs)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return checks

    def record(batch: list[Node], suggestions: list[list[Suggestion]], checks: _Checks) -> None:
        """Add the outcomes to the tree in candidate order, whatever order they finished in."""
        i = 0
        for node, candidates in zip(batch, suggestions, strict=True):
            tried = 0
            for s in candidates:
                checked = checks.results[i]
                i += 1
                if checked is None:
                    continue
                tried += 1
                _add(tree, node, s, checked, scorer, frontier, counter)
                if checked.verdict is not None and not checked.verdict.accepted:
                    counts.verification_failures += 1
                    log.warning(
                        "%s: the assistant closed the proof but the fresh check rejected it: %s",
                        theorem.name,
                        checked.verdict.reason,
                    )
            if tried == len(candidates):
                # only a node whose every candidate ran can fail; an interrupted one stays open
                tree.mark_expanded(node)
            tree.propagate(node)
        COLLECTOR.grew(i)

    stop_reason = ""
    ready: tuple[list[Node], list[list[Suggestion]]] | None = None  # generated, not yet checked
    while not tree.proved:
        if out_of_time():
            stop_reason = "time_limit"
            break
        if too_many_restarts():
            stop_reason = "env_restarts"
            break
        if ready is None:
            if counts.expansions >= budget.max_expansions:
                stop_reason = "expansions"
                break
            batch = pop_batch()
            if not batch:
                stop_reason = "frontier_exhausted"
                break
            ready = (batch, await ask(batch))
        batch, suggestions = ready
        ready = None
        jobs = [(node, s) for node, candidates in zip(batch, suggestions, strict=True) for s in candidates]
        if config.pipeline and counts.expansions < budget.max_expansions:
            # while this batch is checked, the generator works on the next best open states; these
            # are chosen before this batch's children are in the frontier (order lags one batch)
            checking = asyncio.ensure_future(check(jobs))
            try:
                following = pop_batch()
                if following:
                    ready = (following, await ask(following))
                checks = await checking
            except BaseException:
                checking.cancel()
                await asyncio.gather(checking, return_exceptions=True)
                raise
        else:
            checks = await check(jobs)
        record(batch, suggestions, checks)
        if checks.error is not None:
            return finish("error", "env_error", tree, error=str(checks.error))
        if on_progress is not None:
            best = -frontier[0][0] if frontier else float("-inf")
            on_progress(SearchProgress(counts.expansions, len(frontier), best, time.monotonic() - started))

    if tree.proved:
        return finish(
            "proved",
            "proved",
            tree,
            proof=list(found),
            proof_text=env.render_proof(theorem, found),
            verified=True,
        )
    return finish("failed", stop_reason, tree)


def _add(
    tree: SearchTree,
    node: Node,
    s: Suggestion,
    checked: _Checked,
    scorer: Scorer,
    frontier: list[tuple[float, int, int]],
    counter: Iterator[int],
) -> None:
    result = checked.result
    if isinstance(result, Progress):
        score = scorer(node.score, s)
        child = tree.add_edge(node, s.tactic, s.logprob, Outcome.PROGRESS, state=result.state, score=score)
        if child is not None:
            heapq.heappush(frontier, (-score, next(counter), child.id))
    elif isinstance(result, Proved):
        assert checked.verdict is not None
        if checked.verdict.accepted:
            tree.add_edge(node, s.tactic, s.logprob, Outcome.PROVED, message=result.detail)
        else:
            tree.add_edge(node, s.tactic, s.logprob, Outcome.UNVERIFIED, message=checked.verdict.reason)
    elif isinstance(result, TimedOut):
        tree.add_edge(node, s.tactic, s.logprob, Outcome.TIMED_OUT, message=f"{result.seconds:g}s")
    elif isinstance(result, Failed):
        tree.add_edge(node, s.tactic, s.logprob, Outcome.FAILED, message=result.message)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"unexpected tactic result {result!r}")
