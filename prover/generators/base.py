"""What every model-backed generator shares: prompt rendering and post-processing.

A backend only turns prompts into raw `Suggestion`s (`_complete`); `ModelGenerator.generate`
renders the prompts, runs the backend and cleans the output, so every backend behaves the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from envs.tactic_guard import TacticPolicy
from envs.types import ProofState
from prover.generators.postprocess import clean
from prover.generators.prompts import Prompt
from search.best_first import Suggestion


class GeneratorSetupError(ValueError):
    """The model or its runtime cannot be loaded; the message says what to install or fix."""


class ModelGenerator:
    """Base of the hf, vllm and openai generators."""

    def __init__(self, prompt: Prompt, language: str, policy: TacticPolicy = TacticPolicy(), seed: int = 0) -> None:
        self.prompt = prompt
        self.language = language
        self.policy = policy
        self.seed = seed
        self.calls = 0

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
        self.calls += 1
        raw = (await self._complete([self.prompt.render(state) + prefix], n))[0]
        full = [Suggestion(prefix + s.tactic, s.logprob, s.num_tokens) for s in raw]
        return clean(full, self.language, n, self.prompt.stop, self.policy)

    async def aclose(self) -> None:
        return None
