"""What every model-backed generator shares: prompt rendering and post-processing.

A backend only turns prompts into raw `Suggestion`s (`_complete`); `ModelGenerator.generate`
renders the prompts, runs the backend and cleans the output, so every backend behaves the same.
`suggest_many` does the same for editor requests (`SuggestRequest`: a state, the tactic prefix
typed so far, and optionally the file before the cursor), all of them in one backend call.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from envs.tactic_guard import TacticPolicy
from envs.types import ProofState, Suggestion, SuggestRequest
from prover.generators.postprocess import clean, cut_at_stop
from prover.generators.prompts import Prompt
from prover.options import GeneratorOptions

__all__ = [
    "CONTEXT_CHARS",
    "GeneratorSetupError",
    "ModelGenerator",
    "NamedModelGenerator",
    "SuggestRequest",
    "keep_prefix",
]


class GeneratorSetupError(ValueError):
    """The model or its runtime cannot be loaded; the message says what to install or fix."""


# llmstep's context prompt is the file before the cursor; its tail is what the model continues.
CONTEXT_CHARS = 4000


def keep_prefix(suggestions: Sequence[Suggestion], prefix: str) -> list[Suggestion]:
    """The suggestions that extend `prefix` (leading whitespace aside): an editor inserts them in its place."""
    head = prefix.lstrip()
    return [s for s in suggestions if s.tactic.startswith(head)]


class ModelGenerator:
    """Base of the hf, vllm and openai generators."""

    def __init__(self, prompt: Prompt, language: str, policy: TacticPolicy = TacticPolicy(), seed: int = 0) -> None:
        self.prompt = prompt
        self.language = language
        self.policy = policy
        self.seed = seed
        self.calls = 0

    def load(self) -> None:
        """Make the model ready (a backend that loads weights overrides it); errors are setup errors."""

    def reseed(self, seed: int) -> None:
        """Sampling from here on uses `seed` (evaluation reseeds at the start of each attempt)."""
        self.seed = seed

    async def _complete(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        raise NotImplementedError

    async def generate(self, states: Sequence[ProofState], n: int) -> list[list[Suggestion]]:
        if not states:
            return []
        self.calls += 1
        prompts = [self.prompt.render(s.text) for s in states]
        raw = await self._complete(prompts, n)
        return [clean(r, self.language, n, self.prompt.stop, self.policy) for r in raw]

    async def complete_text(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        """Raw continuations of arbitrary prompts (drafting), stopped at the prompt's stop sequences."""
        self.calls += 1
        return await self._complete(prompts, n)

    async def suggest(self, state: str, prefix: str, n: int) -> list[Suggestion]:
        """Candidates for one state that start with `prefix` (the editor's partial tactic)."""
        return (await self.suggest_many([SuggestRequest(state, prefix)], n))[0]

    async def suggest_many(self, requests: Sequence[SuggestRequest], n: int) -> list[list[Suggestion]]:
        """Up to n guarded candidates per request, each starting with its prefix; one backend call."""
        if not requests:
            return []
        self.calls += 1
        prompts: list[str] = []
        owners: list[tuple[int, tuple[str, ...]]] = []  # (request, stop sequences) per prompt
        for i, r in enumerate(requests):
            prompts.append(self.prompt.render(r.state) + r.prefix)
            owners.append((i, self.prompt.stop))
            if r.context.strip():  # llmstep's second prompt: the file continued from the cursor, one line
                prompts.append(r.context[-CONTEXT_CHARS:] + r.prefix)
                owners.append((i, (*self.prompt.stop, "\n")))
        raw = await self._complete(prompts, n)
        merged: list[list[Suggestion]] = [[] for _ in requests]
        for (i, stop), outputs in zip(owners, raw, strict=True):
            prefix = requests[i].prefix
            merged[i].extend(Suggestion(prefix + cut_at_stop(s.tactic, stop), s.logprob, s.num_tokens) for s in outputs)
        return [
            keep_prefix(clean(m, self.language, len(m), (), self.policy), r.prefix)[:n]
            for m, r in zip(merged, requests, strict=True)
        ]

    async def close(self) -> None:
        """Release what the backend holds (a client, an engine); a backend that holds one overrides it."""

    async def aclose(self) -> None:
        """Old name of `close`."""
        await self.close()


class NamedModelGenerator(ModelGenerator):
    """Base of the hf, vllm and openai backends: one named model, the run's generator options
    (sampling, dtype, server), the seed they give, and a lock for loading the model once."""

    def __init__(
        self, model: str, prompt: Prompt, language: str, options: GeneratorOptions, policy: TacticPolicy
    ) -> None:
        super().__init__(prompt, language, policy, seed=options.seed)
        self.model_name = model
        self.options = options
        self._lock = threading.Lock()
