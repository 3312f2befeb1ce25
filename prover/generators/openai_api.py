"""OpenAI-compatible completions endpoint (`vllm serve`, llama.cpp server, TGI, ...).

POST `{base_url}/completions` with the prompts, `n`, `stop` and `logprobs`; each choice's
log-probability is the sum of its `token_logprobs`. Base URL and key come from flags or
`OPENAI_BASE_URL` / `OPENAI_API_KEY`; the key goes only into the request header.

Requests go through one async `httpx` client. A transient failure — a 5xx or 429 answer, a
timeout, a refused or reset connection — is retried `--retries` times with exponential
backoff (honouring `Retry-After`), so one bad moment of the server does not end an eval.
What is still failing after the retries is an error of this call: `ModelServerError` once the
server has answered before (the search records its theorem as an error and the eval goes
on), `GeneratorSetupError` when it never has (wrong URL, server not up: stop and say so).
A 4xx other than 408/429 is the request's fault and is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from typing import Any

from envs.tactic_guard import TacticPolicy
from envs.types import Suggestion
from prover.generators.base import GeneratorSetupError, NamedModelGenerator
from prover.generators.prompts import Prompt
from prover.options import GeneratorOptions

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 429})  # and every 5xx
MAX_BACKOFF = 30.0


class ModelServerError(RuntimeError):
    """The server failed this request on every retry (it had answered earlier requests)."""


def _retryable(status: int) -> bool:
    return status >= 500 or status in RETRY_STATUS


class OpenAIGenerator(NamedModelGenerator):
    def __init__(
        self,
        model: str,
        prompt: Prompt,
        language: str,
        options: GeneratorOptions,
        backoff: float = 0.5,
        policy: TacticPolicy = TacticPolicy(),
    ) -> None:
        super().__init__(model, prompt, language, options, policy)
        base = options.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base:
            raise GeneratorSetupError(
                "--generator openai needs --base-url or OPENAI_BASE_URL "
                "(e.g. http://localhost:8000/v1 for `vllm serve`)"
            )
        try:
            import httpx  # noqa: F401
        except ImportError as exc:
            raise GeneratorSetupError(f"--generator openai needs httpx: pip install 'prover[openai]' ({exc})") from exc
        self.base_url = base.rstrip("/")
        self._api_key = options.api_key or os.environ.get("OPENAI_API_KEY", "")
        self.timeout = options.request_timeout
        self.retries = options.retries
        self.backoff = backoff  # seconds before the first retry; doubles each time
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._answered = False  # has the server ever answered a request?

    def __repr__(self) -> str:  # never the key
        return f"OpenAIGenerator(model={self.model_name!r}, base_url={self.base_url!r})"

    def _http(self) -> Any:
        """The client of the running event loop (a client cannot move between loops)."""
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)), headers=headers
            )
            self._client_loop = loop
        return self._client

    def _body(self, prompts: list[str], n: int) -> dict[str, Any]:
        o = self.options
        body: dict[str, Any] = {
            "model": self.model_name,
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
        return body

    async def _complete(self, prompts: list[str], n: int) -> list[list[Suggestion]]:
        payload = await self._post("/completions", self._body(prompts, n))
        return parse_completions(payload, len(prompts), n)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = f"{self.base_url}{path}"
        problem = ""
        for attempt in range(self.retries + 1):
            wait = min(MAX_BACKOFF, self.backoff * 2**attempt) * random.uniform(0.8, 1.2)
            try:
                response = await self._http().post(url, json=body)
            except httpx.TimeoutException:
                problem = f"no answer from {url} within {self.timeout:g}s"
            except httpx.TransportError as exc:
                problem = f"cannot reach {url}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        payload = response.json()
                    except ValueError as exc:
                        raise GeneratorSetupError(f"{url} answered with invalid JSON: {response.text[:300]}") from exc
                    self._answered = True
                    return payload
                detail = response.text[:500]
                if not _retryable(response.status_code):
                    raise GeneratorSetupError(f"{url} answered {response.status_code}: {detail}")
                problem = f"{url} answered {response.status_code}: {detail}"
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.replace(".", "", 1).isdigit():
                    wait = min(MAX_BACKOFF, float(retry_after))
            if attempt < self.retries:
                log.warning("%s; retry %d of %d in %.1fs", problem, attempt + 1, self.retries, wait)
                await asyncio.sleep(wait)
        tries = f"{self.retries + 1} attempt{'s' if self.retries else ''}"
        if not self._answered:
            raise GeneratorSetupError(f"{problem} ({tries}; is the server up at --base-url?)")
        raise ModelServerError(f"{problem} ({tries})")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()


def parse_completions(payload: dict[str, Any], prompts: int, n: int) -> list[list[Suggestion]]:
    """Choices are ordered by `index` = prompt * n + sample."""
    results: list[list[Suggestion]] = [[] for _ in range(prompts)]
    choices = payload.get("choices") if isinstance(payload, dict) else None
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
