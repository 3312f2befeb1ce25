"""Best-first proof search: `best_first_search(env, generator, theorem, budget) -> SearchResult`.

The frontier holds open states ordered by a score of their path (higher first).
Each step pops up to `batch` states, asks the generator for `samples` candidates
per state in one call, runs every candidate, and deduplicates the resulting
states by goal text. When the assistant reports a closed proof, the whole proof
is re-checked with `env.verify` before it counts; a rejected proof is recorded
as `verification_failed` and the search goes on.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from envs.types import (
    EnvError,
    EnvSetupError,
    Failed,
    Progress,
    ProofEnv,
    ProofState,
    Proved,
    Theorem,
    TimedOut,
    Verdict,
)
from search.tree import Node, Outcome, SearchTree

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One candidate tactic. `num_tokens` is what length-normalised scoring divides by."""

    tactic: str
    logprob: float = 0.0
    num_tokens: int = 1


class TacticGenerator(Protocol):
    """Batched and async: one list of suggestions per state, best first."""

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]: ...


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
    samples: int = 8
    batch: int = 1
    scorer: str = "logprob"

    def __post_init__(self) -> None:
        if self.samples < 1 or self.batch < 1:
            raise ValueError("samples and batch must be at least 1")
        if self.scorer not in SCORERS:
            raise ValueError(f"unknown scorer {self.scorer!r}; choose from {sorted(SCORERS)}")


Status = Literal["proved", "failed", "error"]


@dataclass(slots=True)
class SearchResult:
    theorem: str
    status: Status
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
    wall_s: float = 0.0
    verification_failures: int = 0
    restarts: int = 0
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
            "wall_s": round(self.wall_s, 3),
            "verification_failures": self.verification_failures,
            "restarts": self.restarts,
            "nodes": len(self.tree) if self.tree else 0,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class SearchProgress:
    expansions: int
    open_states: int
    best_score: float
    elapsed: float


class _Clock:
    """Time spent in the model and in the proof assistant, and the restarts this search caused."""

    def __init__(self, env: Any) -> None:
        self.model = 0.0
        self.env = 0.0
        self.restarts = 0
        self._env = env
        self._mark = (0.0, 0)

    def env_begin(self) -> None:
        self._mark = (time.monotonic(), getattr(self._env, "restarts", 0))

    def env_end(self) -> None:
        # counted around this search's own calls, so a shared env's other searches do not spend its budget
        started, restarts = self._mark
        self.env += time.monotonic() - started
        self.restarts += getattr(self._env, "restarts", 0) - restarts


async def best_first_search(
    env: ProofEnv,
    generator: TacticGenerator,
    theorem: Theorem,
    budget: Budget = Budget(),
    config: SearchConfig = SearchConfig(),
    on_progress: Callable[[SearchProgress], None] | None = None,
) -> SearchResult:
    started = time.monotonic()
    deadline = started + budget.time_limit
    clock = _Clock(env)
    scorer = SCORERS[config.scorer]

    def finish(status: Status, reason: str, tree: SearchTree | None = None, **extra: Any) -> SearchResult:
        return SearchResult(
            theorem=theorem.name,
            status=status,
            stop_reason=reason,
            model_s=clock.model,
            env_s=clock.env,
            wall_s=time.monotonic() - started,
            restarts=clock.restarts,
            tree=tree,
            **extra,
        )

    clock.env_begin()
    try:
        root = await env.start(theorem)
    except EnvSetupError:
        raise
    except EnvError as exc:
        clock.env_end()
        return finish("error", "start_error", error=str(exc))
    clock.env_end()

    tree = SearchTree(root)
    counter = itertools.count()
    frontier: list[tuple[float, int, int]] = [(-0.0, next(counter), tree.root.id)]
    expansions = tactic_calls = model_calls = verification_failures = 0
    stop_reason = ""
    proof: list[str] = []
    verdict: Verdict | None = None

    while not tree.proved:
        if expansions >= budget.max_expansions:
            stop_reason = "expansions"
            break
        if time.monotonic() >= deadline:
            stop_reason = "time_limit"
            break
        if clock.restarts > budget.max_restarts:
            stop_reason = "env_restarts"
            break
        batch: list[Node] = []
        while frontier and len(batch) < config.batch:
            _, _, node_id = heapq.heappop(frontier)
            node = tree.nodes[node_id]
            if not node.expanded and node.status.value == "open":
                batch.append(node)
        if not batch:
            stop_reason = "frontier_exhausted"
            break
        t = time.monotonic()
        suggestions = await generator.generate([n.state for n in batch], config.samples)
        clock.model += time.monotonic() - t
        model_calls += 1
        expansions += len(batch)
        for node, candidates in zip(batch, suggestions, strict=True):
            tried = 0
            for s in candidates:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or tree.proved:
                    break
                clock.env_begin()
                try:
                    result = await env.run_tactic(node.state, s.tactic, min(budget.tactic_timeout, remaining))
                except EnvSetupError:
                    raise
                except EnvError as exc:
                    clock.env_end()
                    tree.propagate(node)
                    return finish(
                        "error",
                        "env_error",
                        tree,
                        expansions=expansions,
                        tactic_calls=tactic_calls,
                        model_calls=model_calls,
                        verification_failures=verification_failures,
                        error=str(exc),
                    )
                clock.env_end()
                tactic_calls += 1
                tried += 1
                if isinstance(result, Progress):
                    score = scorer(node.score, s)
                    child = tree.add_edge(node, s.tactic, s.logprob, Outcome.PROGRESS, state=result.state, score=score)
                    if child is not None:
                        heapq.heappush(frontier, (-score, next(counter), child.id))
                elif isinstance(result, Proved):
                    candidate = [e.tactic for e in tree.path_to(node)] + [s.tactic]
                    clock.env_begin()
                    check = await env.verify(theorem, candidate)
                    clock.env_end()
                    verdict = check
                    if check.accepted:
                        tree.add_edge(node, s.tactic, s.logprob, Outcome.PROVED, message=result.detail)
                        tree.propagate(node)  # the root is proved now: stop at this first proof
                        proof = candidate
                    else:
                        verification_failures += 1
                        log.warning(
                            "%s: the assistant closed the proof but the fresh check rejected it: %s",
                            theorem.name,
                            check.reason,
                        )
                        tree.add_edge(node, s.tactic, s.logprob, Outcome.UNVERIFIED, message=check.reason)
                elif isinstance(result, TimedOut):
                    tree.add_edge(node, s.tactic, s.logprob, Outcome.TIMED_OUT, message=f"{result.seconds:g}s")
                elif isinstance(result, Failed):
                    tree.add_edge(node, s.tactic, s.logprob, Outcome.FAILED, message=result.message)
                else:  # pragma: no cover - the union is closed
                    raise TypeError(f"unexpected tactic result {result!r}")
            if tried == len(candidates):
                # only a node whose every candidate ran can fail; an interrupted one stays open
                tree.mark_expanded(node)
            tree.propagate(node)
            if tree.proved:
                break
        if on_progress is not None:
            best = -frontier[0][0] if frontier else float("-inf")
            on_progress(SearchProgress(expansions, len(frontier), best, time.monotonic() - started))

    if tree.proved:
        return finish(
            "proved",
            "proved",
            tree,
            proof=proof,
            proof_text=env.render_proof(theorem, proof),
            verified=True,
            verdict=verdict,
            expansions=expansions,
            tactic_calls=tactic_calls,
            model_calls=model_calls,
            verification_failures=verification_failures,
        )
    return finish(
        "failed",
        stop_reason,
        tree,
        verdict=verdict,
        expansions=expansions,
        tactic_calls=tactic_calls,
        model_calls=model_calls,
        verification_failures=verification_failures,
    )
