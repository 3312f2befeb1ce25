"""Reusable fakes: a scripted env (a goal graph) and a fixed-list generator."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from envs.types import (
    EnvError,
    Failed,
    Language,
    Progress,
    ProofState,
    Proved,
    Suggestion,
    SuggestRequest,
    TacticResult,
    Theorem,
    TimedOut,
    Verdict,
    current_usage,
)

QED = "QED"


@dataclass
class ScriptedEnv:
    """States are goal strings; `graph[goal][tactic]` is the next goal, `QED`, `"timeout"` or absent (failure).

    `reject` lists proofs (tactic tuples) that the fresh check refuses. `delay` is every call's
    latency, `delays[tactic]` overrides it per tactic. `size` is how many calls the env says it
    can run at once (the fake does not enforce it: `peak`, the most ever in flight, shows what the
    caller did); `launched` lists tactics as they start. `broken` tactics raise `EnvError`.
    Timeouts charge a restart and verification charges `verify_delay` seconds to the caller's meter;
    `replays_per_call` charges that many replays per tactic (as a pool replaying a state would).
    """

    graph: Mapping[str, Mapping[str, str]]
    root: str = "root"
    reject: set[tuple[str, ...]] = field(default_factory=set)
    delay: float = 0.0
    language: Language = "lean4"
    calls: list[tuple[str, str]] = field(default_factory=list)
    verified: list[tuple[str, ...]] = field(default_factory=list)
    restarts: int = 0
    closed: bool = False
    size: int = 1
    delays: Mapping[str, float] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    verify_delay: float = 0.0
    replays_per_call: int = 0
    timeouts: list[float] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0

    async def start(self, theorem: Theorem) -> ProofState:
        return ProofState((self.root,), ())

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float) -> TacticResult:
        self.launched.append(tactic)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            delay = self.delays.get(tactic, self.delay)
            if delay:
                await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
        self.calls.append((state.goals[0], tactic))
        self.timeouts.append(timeout)
        current_usage().replays += self.replays_per_call
        if tactic in self.broken:
            raise EnvError(f"the process running {tactic} died and could not restart")
        nxt = self.graph.get(state.goals[0], {}).get(tactic)
        if nxt is None:
            return Failed(f"{tactic} failed")
        if nxt == QED:
            return Proved("Completed")
        if nxt == "timeout":
            self.restarts += 1  # as the real backends do: a timeout kills and restarts the process
            current_usage().restarts += 1
            return TimedOut(timeout)
        return Progress(ProofState((nxt,), (*state.handle, tactic)))

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        if self.verify_delay:
            await asyncio.sleep(self.verify_delay)
            current_usage().verify_s += self.verify_delay
        self.verified.append(tuple(proof))
        if tuple(proof) in self.reject:
            return Verdict(False, reason="rejected by the fresh check")
        return Verdict(True, axioms=("propext",))

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        return theorem.statement + " by\n" + "".join(f"  {t}\n" for t in proof)

    async def check_file(self, text: str) -> list:
        return []

    async def close(self) -> None:
        self.closed = True


class FixedGenerator:
    """Suggests `table[goal]` (tactic, logprob) pairs, or `default` for unknown goals."""

    def __init__(
        self, table: Mapping[str, Sequence[tuple[str, float]]], default: Sequence[tuple[str, float]] = ()
    ) -> None:
        self.table = table
        self.default = default
        self.batches: list[int] = []
        self.seeds: list[int] = []  # every reseed, in order
        self.closed = False

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
        self.batches.append(len(states))
        return [
            [Suggestion(t, lp, max(1, len(t.split()))) for t, lp in self.table.get(s.goals[0], self.default)][:n]
            for s in states
        ]

    # the rest of the TacticGenerator protocol: reseeds and closes are recorded for tests
    def load(self) -> None:
        pass

    async def suggest_many(self, requests: Sequence[SuggestRequest], n: int) -> list[list[Suggestion]]:
        return [(await self.generate([ProofState((r.state,))], n))[0] for r in requests]

    def reseed(self, seed: int) -> None:
        self.seeds.append(seed)

    async def close(self) -> None:
        self.closed = True
