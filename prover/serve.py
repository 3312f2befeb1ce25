"""`prover serve`: a tactic-suggestion server for Lean editors.

Two wire protocols on one port:
- llmstep: `POST /` with `{"tactic_state", "prefix"}` answers `{"suggestions": [tactic, ...]}`;
- Lean Copilot's external generator: `POST /generate` with `{"name", "input", "prefix"}`
  answers `{"outputs": [{"output", "score"}, ...]}`.
`GET /health` answers `{"status": "ok", ...}`. Bad input is a 400 with `{"error"}`, a model
failure a 503; every suggestion has passed the untrusted-tactic guard.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol, cast

from prover.options import GeneratorOptions, add_options, opt, resolve
from search.best_first import Suggestion

log = logging.getLogger(__name__)


class Suggester(Protocol):
    async def suggest(self, state: str, prefix: str, n: int) -> list[Suggestion]: ...


@dataclass(frozen=True)
class ServeOptions:
    host: str = opt("127.0.0.1", "address to listen on")
    port: int = opt(5000, "port (llmstep's default is 5000, Lean Copilot's 23337)")
    samples: int = opt(8, "suggestions per request")
    language: str = opt("lean4", "language of the proof states", choices=("lean4", "coq", "isabelle"))


class BadRequest(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SuggestRequest:
    state: str
    prefix: str


def parse_request(body: Any, state_key: str) -> SuggestRequest:
    """The one reader of request JSON: `state_key` is `tactic_state` (llmstep) or `input` (Lean Copilot)."""
    if not isinstance(body, dict) or not isinstance(body.get(state_key), str):
        raise BadRequest(f"expected a JSON object with a string `{state_key}` (and an optional `prefix`)")
    prefix = body.get("prefix") or ""
    if not isinstance(prefix, str):
        raise BadRequest("`prefix` must be a string")
    return SuggestRequest(body[state_key], prefix)


def build_app(suggester: Suggester, samples: int, model_name: str) -> Any:
    from aiohttp import web

    lock = asyncio.Lock()  # one model call at a time: the engine is shared

    async def read(request: web.Request) -> Any:
        try:
            return await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"body is not JSON: {exc}") from exc

    async def run(req: SuggestRequest) -> list[Suggestion]:
        async with lock:
            return await suggester.suggest(req.state, req.prefix, samples)

    def handler(state_key: str, render: Any) -> Any:
        async def handle(request: web.Request) -> web.Response:
            try:
                req = parse_request(await read(request), state_key)
            except BadRequest as exc:
                return web.json_response({"error": str(exc)}, status=400)
            try:
                suggestions = await run(req)
            except Exception as exc:
                log.exception("suggestion failed")
                return web.json_response({"error": f"the model failed: {exc}"}, status=503)
            return web.json_response(render(suggestions))

        return handle

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": model_name})

    app = web.Application()
    app.router.add_post("/", handler("tactic_state", lambda ss: {"suggestions": [s.tactic for s in ss]}))
    app.router.add_post(
        "/generate",
        handler("input", lambda ss: {"outputs": [{"output": s.tactic, "score": s.logprob} for s in ss]}),
    )
    app.router.add_get("/health", health)
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    from prover.wiring import make_generator

    options = resolve(ServeOptions, args)
    generator_options = resolve(GeneratorOptions, args)
    try:
        from aiohttp import web
    except ImportError as exc:
        raise ValueError("prover serve needs aiohttp: pip install 'prover[server]'") from exc
    generator = make_generator(generator_options, options.language)  # type: ignore[arg-type]
    if not hasattr(generator, "suggest"):
        raise ValueError(f"--generator {generator_options.generator} cannot serve suggestions")
    load = getattr(generator, "load", None)
    if load is not None:  # a model that cannot load should fail now, not on the editor's first request
        load()
    app = build_app(cast(Suggester, generator), options.samples, generator_options.model or generator_options.generator)
    print(
        f"serving tactic suggestions on http://{options.host}:{options.port} (llmstep: POST /, "
        "Lean Copilot: POST /generate)",
        flush=True,
    )
    web.run_app(app, host=options.host, port=options.port, print=None)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve tactic suggestions to a Lean editor (llmstep, Lean Copilot)",
        description="A tactic-suggestion server speaking llmstep's protocol (POST /) and Lean "
        "Copilot's external-generator protocol (POST /generate).",
    )
    add_options(p, ServeOptions, "server")
    add_options(p, GeneratorOptions, "tactic generator")
    p.set_defaults(func=cmd_serve)
