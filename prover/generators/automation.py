"""The no-model baseline: a fixed, ordered list of standard tactics tried at every state.

Library search (`exact?`, `apply?`) is left out: with Mathlib it often outlives the tactic
timeout, and every timeout costs a REPL restart. Sledgehammer is left out of the Isabelle list:
it reports a proof instead of being one, so the recorded step would not re-check.

Every suggestion has log-probability 0, so the frontier is explored breadth-first.
The whole list is offered at each expansion (`n` is ignored): the baseline is
"every standard tactic everywhere", which is what papers report beside their models.
A list is untrusted input like model output: tactics the run's guard policy rejects are
dropped (with a warning) when the generator is built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from envs.tactic_guard import TacticPolicy, check_tactic
from envs.types import ProofState, Suggestion, SuggestRequest

log = logging.getLogger(__name__)

LEAN4_TACTICS = (
    "rfl", "decide", "omega", "norm_num", "simp", "simp_all", "linarith", "nlinarith",
    "positivity", "ring", "ring_nf", "field_simp", "aesop", "tauto", "trivial",
    "assumption", "intro", "intros", "constructor", "simp at *", "norm_num at *",
)  # fmt: skip
# Cheap closers first (an expansion stops taking candidates once one proves the goal), then steps
# that make progress, then CoqHammer's `sauto`. `lra`/`nra`/`psatz`/`field` need `Lra`/`Psatz` and
# the reals, `sauto` needs `From Hammer Require Import Tactics.`: the Coq prelude of miniF2F in Rocq
# loads them; without it they fail at once. `hammer` (premise selection, E prover) is a closer for
# drafting gaps only: it takes about 10 s a call, which halves a 30 s search's expansions, and
# proved none of the first 20 miniF2F-rocq test statements that the list missed.
_COQ_DESTRUCT = (
    "intros; repeat match goal with h : exists _, _ |- _ => destruct h | h : _ /\\ _ |- _ => destruct h end; subst"
)
_COQ_UNFOLD = "intros; repeat match goal with h : forall _, _ = _ |- _ => rewrite h in *; clear h end"
COQ_TACTICS = (
    "reflexivity", "assumption", "trivial", "easy", "lia", "lra", "ring", "field", "nia", "nra",
    "intros; lia", "intros; lra", "intros; subst; lia", "intros; subst; lra", "intros; nia", "intros; nra",
    "intros; split; lra", "intros; split; lia", f"{_COQ_DESTRUCT}; lia", f"{_COQ_UNFOLD}; lra",
    f"{_COQ_DESTRUCT}; nia", f"{_COQ_UNFOLD}; nra", "vm_compute; reflexivity", "intros; field",
    "field_simplify; lra", "intros; psatz R 2", "auto", "intuition", "tauto", "congruence", "firstorder",
    "intros", "subst", "split", "constructor", "simpl", "field_simplify", "simpl; lia", "induction n", "sauto",
)  # fmt: skip
# Closers for `prover draft` gaps: the list's closing tactics, then CoqHammer as DSP ends with Sledgehammer.
COQ_CLOSERS = (*(t for t in COQ_TACTICS if t not in ("intros", "subst", "split", "constructor", "simpl",
                                                    "field_simplify", "induction n")), "hammer")  # fmt: skip
ISABELLE_TACTICS = (
    "by simp", "by auto", "by arith", "by linarith", "by fastforce", "by blast", "by force",
    "by presburger", "by algebra", "by eval", "by (simp add: algebra_simps)", "by (auto simp: field_simps)",
    "by smt",
)  # fmt: skip
DEFAULTS = {"lean4": LEAN4_TACTICS, "coq": COQ_TACTICS, "isabelle": ISABELLE_TACTICS}
CLOSERS = {**DEFAULTS, "coq": COQ_CLOSERS}  # what may close a drafting gap


def read_tactic_file(path: Path) -> tuple[str, ...]:
    """One tactic per line; blank lines and lines starting with `#` are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read tactic list {path}: {exc}") from exc
    tactics = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("# "))
    if not tactics:
        raise ValueError(f"tactic list {path} is empty")
    return tactics


class AutomationGenerator:
    def __init__(
        self, language: str, tactics: Sequence[str] | None = None, policy: TacticPolicy = TacticPolicy()
    ) -> None:
        if tactics is None:
            if language not in DEFAULTS:
                raise ValueError(f"no automation list for {language}")
            tactics = DEFAULTS[language]
        kept = []
        for tactic in tactics:
            if reason := check_tactic(language, tactic, policy):
                log.warning("automation: dropping %r: %s", tactic, reason)
            else:
                kept.append(tactic)
        if not kept:
            raise ValueError(f"no tactic in the automation list passes the untrusted-tactic guard for {language}")
        self.tactics = tuple(kept)

    def load(self) -> None:
        """Nothing to load: the list is read when the generator is built."""

    def reseed(self, seed: int) -> None:
        """The list is deterministic: there is nothing to seed."""

    async def close(self) -> None:
        """Nothing to release."""

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
        return [[Suggestion(t, 0.0, 1) for t in self.tactics] for _ in states]

    async def suggest(self, state: str, prefix: str, n: int) -> list[Suggestion]:
        """The listed tactics that start with `prefix` (leading whitespace aside), in list order, at most n."""
        head = prefix.lstrip()
        return [Suggestion(t, 0.0, 1) for t in self.tactics if t.startswith(head)][:n]

    async def suggest_many(self, requests: Sequence[SuggestRequest], n: int) -> list[list[Suggestion]]:
        return [await self.suggest(r.state, r.prefix, n) for r in requests]
