"""Turn raw model continuations into candidate tactics.

Cut at the first stop sequence, dedent (a multi-line continuation keeps its lines' columns
relative to each other: stripping only the first line would move it out of the sequence), strip,
drop empty ones, merge duplicates (their probabilities are added), drop what the untrusted-tactic
guard rejects, keep the top n by log-probability.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence

from envs.tactic_guard import TacticPolicy, check_tactic
from envs.types import Suggestion


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    end = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            end = min(end, i)
    return text[:end]


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    if lo == -math.inf:
        return hi
    return hi + math.log1p(math.exp(lo - hi))


def clean(
    raw: Iterable[Suggestion], language: str, n: int, stop: Sequence[str] = (), policy: TacticPolicy = TacticPolicy()
) -> list[Suggestion]:
    merged: dict[str, Suggestion] = {}
    for s in raw:
        tactic = textwrap.dedent(cut_at_stop(s.tactic, stop).strip("\n")).strip()
        if not tactic or check_tactic(language, tactic, policy) is not None:
            continue
        if tactic in merged:
            old = merged[tactic]
            merged[tactic] = Suggestion(tactic, _logaddexp(old.logprob, s.logprob), min(old.num_tokens, s.num_tokens))
        else:
            merged[tactic] = Suggestion(tactic, s.logprob, s.num_tokens)
    return sorted(merged.values(), key=lambda s: -s.logprob)[:n]
