"""OpenAI-compatible completions endpoint (`vllm serve`, llama.cpp server, TGI, ...).

POST `{base_url}/completions` with the prompts, `n`, `stop` and `logprobs`; each choice's
log-probability is the sum of its `token_logprobs`. Base URL and key come from flags or
`OPENAI_BASE_URL` / `OPENAI_API_KEY`.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from typing import Any

from prover.generators.base import GeneratorSetupError, ModelGenerator
from prover.generators.prompts import Prompt
from prover.options import GeneratorOptions
from search.best_first import Suggestion


class OpenAIGenerator(ModelGenerator):
    def __init__(
        self, model: str, prompt: Prompt, language: str, options: GeneratorOptions, timeout: float = 300.0
    ) -> None:
        super().__init__(prompt, language, seed=options.seed)
        self.model = model
        self.options = options
        base = options.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base:
            raise GeneratorSetupError(
                "--generator openai needs --base-url or OPENAI_BASE_URL "
                "(e.g. http://localhost:8000/v1 for `vllm serve`)"
            )
        self.base_url = base.rstrip("/")
        self.api_key = options.api_key or os.environ.get("OPENAI_API_KEY", "")
        self.timeout = timeout

    async def _complete(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        return await asyncio.to_thread(self.complete_sync, prompts, n)

    def complete_sync(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        o = self.options
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompts,
            "n": n,
            "max_tokens": o.max_new_tokens,
            "temperature": o.temperature,
            "top_p": o.top_p,
            "stop": list(self.prompt.stop),
            "logprobs": 1,
            "seed": self.seed,
        }
        if o.beam:
            body["use_beam_search"] = True  # vLLM's server extension; others ignore it
        request = urllib.request.Request(
            f"{self.base_url}/completions",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise GeneratorSetupError(f"{self.base_url} answered {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise GeneratorSetupError(f"cannot reach {self.base_url}: {exc}") from exc
        return parse_completions(payload, len(prompts), n)


def parse_completions(payload: dict[str, Any], prompts: int, n: int) -> list[list[Suggestion]]:
    """Choices are ordered by `index` = prompt * n + sample."""
    results: list[list[Suggestion]] = [[] for _ in range(prompts)]
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise GeneratorSetupError(f"not an OpenAI completions response: {str(payload)[:300]}")
    for pos, choice in enumerate(choices):
        index = choice.get("index", pos)
        logprobs = choice.get("logprobs") or {}
        token_logprobs = [x for x in (logprobs.get("token_logprobs") or []) if x is not None]
        results[min(index // n, prompts - 1)].append(
            Suggestion(choice.get("text", ""), float(sum(token_logprobs)), max(len(token_logprobs), 1))
        )
    return results
