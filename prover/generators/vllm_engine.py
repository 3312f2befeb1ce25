"""vLLM backend: the offline engine, one engine shared by every concurrent search.

Sampling uses `SamplingParams(n=..., logprobs=0)` (each output's cumulative
log-probability); beam search uses `LLM.beam_search` where the installed vLLM has it.
Shaped like the hf adapter: prompts in, raw suggestions out, post-processing in the base.
"""

from __future__ import annotations

import asyncio
from typing import Any

from envs.tactic_guard import TacticPolicy
from envs.types import Suggestion
from prover.generators.base import GeneratorSetupError, NamedModelGenerator
from prover.generators.prompts import Prompt
from prover.options import GeneratorOptions


class VLLMGenerator(NamedModelGenerator):
    def __init__(
        self,
        model: str,
        prompt: Prompt,
        language: str,
        options: GeneratorOptions,
        policy: TacticPolicy = TacticPolicy(),
    ) -> None:
        super().__init__(model, prompt, language, options, policy)
        self._llm: Any = None

    def load(self) -> None:
        with self._lock:
            if self._llm is not None:
                return
            try:
                from vllm import LLM
            except ImportError as exc:
                raise GeneratorSetupError(
                    f"--generator vllm needs vLLM (and a CUDA GPU): pip install 'prover[vllm]' ({exc})"
                ) from exc
            try:
                self._llm = LLM(model=self.model_name, dtype=self.options.dtype or "auto", seed=self.seed)
            except Exception as exc:  # vLLM raises many types when a model cannot load
                raise GeneratorSetupError(f"vLLM cannot load {self.model_name!r}: {exc}") from exc

    async def _complete(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        return await asyncio.to_thread(self.complete_sync, prompts, n)

    def complete_sync(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        self.load()
        o = self.options
        if (o.beam or o.temperature <= 0) and hasattr(self._llm, "beam_search"):
            from vllm.sampling_params import BeamSearchParams

            params = BeamSearchParams(beam_width=n, max_tokens=o.max_new_tokens)
            outputs = self._llm.beam_search([{"prompt": p} for p in prompts], params)
            return [
                [
                    Suggestion(self._strip_prompt(seq.text, p), seq.cum_logprob, max(len(seq.tokens), 1))
                    for seq in out.sequences
                ]
                for p, out in zip(prompts, outputs, strict=True)
            ]
        from vllm import SamplingParams

        params = SamplingParams(
            n=n,
            temperature=o.temperature,
            top_p=o.top_p,
            max_tokens=o.max_new_tokens,
            stop=list(self.prompt.stop),
            logprobs=0,
            seed=self.seed,
        )
        outputs = self._llm.generate(prompts, params, use_tqdm=False)
        return [
            [Suggestion(c.text, c.cumulative_logprob or 0.0, max(len(c.token_ids), 1)) for c in out.outputs]
            for out in outputs
        ]

    @staticmethod
    def _strip_prompt(text: str, prompt: str) -> str:
        # beam-search sequences include the prompt text
        return text[len(prompt) :] if text.startswith(prompt) else text
