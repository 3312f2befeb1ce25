"""The vocabulary shared by every proof-assistant backend.

Invariants:
- Tactic outcomes are values from a closed set (`TacticResult`); they are never
  raised. Exceptions (`EnvError` and subclasses) mean a broken backend.
- `ProofState` has value identity: two states with the same goal text are equal,
  whatever backend handle they carry.
- `TacticGenerator` is the other side of a search: every capability a caller needs
  (`load`, `generate`, `suggest_many`, `reseed`, `close`) is in the protocol, so nobody
  probes a generator with `getattr`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Language = Literal["lean4", "coq", "isabelle"]
CHECKED_FILE = "<checked file>"  # how `check_file` messages name the checked text; callers put in its path


@dataclass(frozen=True, slots=True)
class Theorem:
    """A theorem to prove: `header` (imports/opens) + `statement` (ends before the proof)."""

    name: str
    statement: str
    header: str = ""
    language: Language = "lean4"
    informal_statement: str | None = None
    informal_proof: str | None = None
    split: str | None = None

    @property
    def header_block(self) -> str:
        """The header as the top of a file: empty, or ending in a newline."""
        return self.header if not self.header or self.header.endswith("\n") else self.header + "\n"


@dataclass(frozen=True, slots=True)
class ProofState:
    """Goals as the assistant prints them; `handle` is the backend's and is not compared."""

    goals: tuple[str, ...]
    handle: Any = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        return "\n\n".join(self.goals)


@dataclass(frozen=True, slots=True)
class Progress:
    state: ProofState
    kind: Literal["progress"] = "progress"


@dataclass(frozen=True, slots=True)
class Proved:
    """No goals are left and the assistant's own completeness check passed."""

    detail: str = ""
    kind: Literal["proved"] = "proved"


@dataclass(frozen=True, slots=True)
class Failed:
    message: str
    kind: Literal["failed"] = "failed"


@dataclass(frozen=True, slots=True)
class TimedOut:
    seconds: float
    kind: Literal["timed_out"] = "timed_out"


TacticResult = Progress | Proved | Failed | TimedOut


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a fresh whole-file check of a proof."""

    accepted: bool
    messages: tuple[str, ...] = ()
    axioms: tuple[str, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "messages": list(self.messages),
            "axioms": list(self.axioms),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class TheoremCheck:
    """One theorem of a checked file."""

    name: str
    verdict: Verdict


class EnvError(RuntimeError):
    """The backend is broken (crashed process, lost connection, protocol violation)."""


class EnvSetupError(EnvError):
    """The backend cannot start at all: a missing program or workspace. Says what to install."""


class TheoremStartError(EnvError):
    """The theorem's statement or header does not elaborate, so no search can start."""


class ReplayFailed(Exception):
    """A state could not be rebuilt from its tactic path here (a step answered differently than
    when the search made it). The candidate run on that state fails; the env itself is fine."""


@dataclass(slots=True)
class Usage:
    """What the proof-assistant calls made under one meter cost (see `metered`).

    Envs charge the meter of the task that made the call, so concurrent searches sharing a pool
    each see only the restarts and replays their own calls caused.
    """

    restarts: int = 0  # processes restarted (timeout kill, crash, memory cap) by these calls
    replays: int = 0  # tactics re-run to rebuild states these calls needed
    verify_s: float = 0.0  # seconds spent in fresh re-checks (`verify`)


_USAGE: ContextVar[Usage | None] = ContextVar("prover_env_usage", default=None)


@contextmanager
def metered() -> Iterator[Usage]:
    """Charge every env call made in this context (and in tasks it starts) to a fresh `Usage`."""
    usage = Usage()
    token = _USAGE.set(usage)
    try:
        yield usage
    finally:
        _USAGE.reset(token)


def current_usage() -> Usage:
    """The meter of the calling context; a throwaway one when nobody is metering."""
    return _USAGE.get() or Usage()


@runtime_checkable
class ProofEnv(Protocol):
    """An async proof-assistant session pool. One instance serves many concurrent searches.

    `size` is how many tactics it can check at once (its processes or server sessions).
    What a call cost beyond its own wall time (the restarts and replays it caused, the time of
    fresh re-checks) is charged to the caller's `Usage` meter (`current_usage()`), never kept
    as pool-wide counters that callers would have to read.
    """

    language: Language

    @property
    def size(self) -> int: ...

    async def start(self, theorem: Theorem) -> ProofState: ...

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float) -> TacticResult: ...

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict: ...

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str: ...

    async def check_file(self, text: str) -> list[TheoremCheck]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One candidate tactic. `num_tokens` is what length-normalised scoring divides by."""

    tactic: str
    logprob: float = 0.0
    num_tokens: int = 1


@dataclass(frozen=True, slots=True)
class SuggestRequest:
    """An editor's request: suggest tactics for `state` that start with `prefix`.

    `context` is the source before the cursor (llmstep sends it); a model generator continues it
    as a second prompt, as llmstep's own server does, and merges both prompts' suggestions.
    """

    state: str
    prefix: str = ""
    context: str = ""


@runtime_checkable
class TacticGenerator(Protocol):
    """Batched and async: one list of suggestions per state, best first.

    `load` makes a model ready (so a missing model fails before any work; a no-op when there is
    nothing to load); `suggest_many` answers editor requests (each suggestion starts with its
    request's prefix); `reseed` makes sampling from here on use `seed`; `close` releases engines,
    clients and tasks (idempotent). What a call cost is charged to the caller's `Usage` meter and
    returned in its `SearchResult`.
    """

    def load(self) -> None: ...

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]: ...

    async def suggest_many(self, requests: Sequence[SuggestRequest], n: int) -> list[list[Suggestion]]: ...

    def reseed(self, seed: int) -> None: ...

    async def close(self) -> None: ...
