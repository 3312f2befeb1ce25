"""`prover serve`: a tactic-suggestion server for Lean editors.

Two wire protocols, both on every port it listens on (by default llmstep's client port 6000
and Lean Copilot's external-generator port 23337):
- llmstep: `POST /` with `{"tactic_state", "prefix", "context"?}` answers
  `{"suggestions": [tactic, ...]}`; every suggestion starts with the prefix;
- Lean Copilot: `POST /generate` with `{"name", "input", "prefix"}` answers
  `{"outputs": [{"output", "score"}, ...]}`, the score a probability in [0, 1] (Aesop's
  success probability: `exp` of the sequence log-probability), always a finite number.
`GET /health` answers `{"status": "ok", ...}`.

Requests from all editors go through one `Batcher` (adaptive): a lone editor's request goes to
the model at once; while several editors are active, the requests waiting when the model is
free, and those of editors coming back from the last call, go to it as one call. The queue
is bounded (503 with `Retry-After` when full), and a client that disconnects takes its
waiting request out of it. Every client error is a 4xx with a JSON `{"error"}` body; a model
failure is a 503; every suggestion has passed the untrusted-tactic guard with the server's
policy (and contains no `[SUGGESTION]`, llmstep's separator). The ports are bound before
the model loads, so a busy port fails at once.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import functools
import json
import logging
import math
import os
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from envs.types import Suggestion
from prover.generators.base import SuggestRequest
from prover.generators.batching import Batcher, QueueFull
from prover.options import GeneratorOptions, add_options, opt, resolve

log = logging.getLogger(__name__)

LLMSTEP_PORT = 6000  # llmstep's python/suggest.py (LLMSTEP_PORT); 5000 before late 2023
LEAN_COPILOT_PORT = 23337  # Lean Copilot's ExternalModel.port
DEFAULT_PORTS = (LLMSTEP_PORT, LEAN_COPILOT_PORT)
SUGGESTION_SEPARATOR = "[SUGGESTION]"  # llmstep's client splits its output on it
MAX_BODY_BYTES = 1 << 20


class Suggester(Protocol):
    async def suggest_many(self, requests: Sequence[SuggestRequest], n: int) -> list[list[Suggestion]]: ...


@dataclass(frozen=True)
class ServeOptions:
    host: str = opt("127.0.0.1", "address to listen on")
    samples: int = opt(8, "suggestions per request")
    language: str = opt(
        "lean4", "language of the proof states: lean4, coq or isabelle", choices=("lean4", "coq", "isabelle")
    )
    allow_native_decide: bool = opt(False, "let suggestions use native_decide (trusts the compiler)")
    max_batch: int = opt(16, "editor requests per model call")
    max_queue: int = opt(64, "requests that may wait for the model; beyond that: 503 with Retry-After")


class BadRequest(ValueError):
    """The client's fault: answered with `status` and `{"error": message}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _text(body: dict[str, Any], key: str, required: bool) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        kind = "missing" if value is None else f"a {type(value).__name__}"
        raise BadRequest(f"`{key}` must be a string, got {kind}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest(f"`{key}` is not valid Unicode: {exc.reason} at position {exc.start}") from exc
    return value


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object, got {type(body).__name__}")
    return body


def parse_llmstep(body: Any) -> SuggestRequest:
    """llmstep: `tactic_state` (required), `prefix` and `context` (optional strings; null means empty)."""
    body = _object(body)
    return SuggestRequest(
        _text(body, "tactic_state", True), _text(body, "prefix", False), _text(body, "context", False)
    )


def parse_lean_copilot(body: Any) -> SuggestRequest:
    """Lean Copilot: `input` (required), `prefix` (optional), `name` (a string, not used: one model)."""
    body = _object(body)
    _text(body, "name", False)
    return SuggestRequest(_text(body, "input", True), _text(body, "prefix", False))


def decode_json(raw: bytes, charset: str | None) -> Any:
    """The request body as JSON, or `BadRequest` (unknown charset, bad encoding, bad JSON, too deep)."""
    charset = charset or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError as exc:
        raise BadRequest(f"unknown charset {charset!r}", 415) from exc
    try:
        text = raw.decode(charset)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not {charset}: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise BadRequest("body is nested too deeply") from exc
    except ValueError as exc:  # bad JSON, or a number beyond Python's digit limit
        raise BadRequest(f"body is not JSON: {exc}") from exc


def probability(logprob: float) -> float:
    """A sequence log-probability as a probability in [0, 1]: never NaN or infinite."""
    if math.isnan(logprob):
        return 0.0
    return math.exp(min(logprob, 0.0))


def render_llmstep(suggestions: Sequence[Suggestion]) -> dict[str, Any]:
    return {"suggestions": [s.tactic for s in suggestions]}


def render_lean_copilot(suggestions: Sequence[Suggestion]) -> dict[str, Any]:
    return {"outputs": [{"output": s.tactic, "score": probability(s.logprob)} for s in suggestions]}


# UTF-8 on the wire (Lean's JSON parser mangles \u-escaped surrogate pairs); NaN is an error, not a token
_dumps = functools.partial(json.dumps, ensure_ascii=False, allow_nan=False)


def build_app(
    suggester: Suggester,
    samples: int,
    model_name: str,
    *,
    max_batch: int = 16,
    max_queue: int = 64,
    max_wait: float = 0.02,
) -> Any:
    """The aiohttp application. Serve it with `handler_cancellation=True` so a client that goes
    away cancels its handler (and so its waiting request). A lone editor's request goes to the
    model at once; when several editors are active, a free model waits up to `max_wait` seconds
    to regroup them (adaptive batching)."""
    from aiohttp import web
    from aiohttp.web_protocol import RequestPayloadError

    batcher: Batcher[SuggestRequest, list[Suggestion]] = Batcher(
        suggester.suggest_many, max_batch=max_batch, max_wait=max_wait, max_pending=max_queue, adaptive=True
    )

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"error": message}, status=status, headers=headers, dumps=_dumps)

    @web.middleware
    async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except BadRequest as exc:
            return error(exc.status, str(exc))
        except web.HTTPException as exc:  # 404, 405, 413, ... from aiohttp itself
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
            message = f"request body larger than {MAX_BODY_BYTES} bytes" if exc.status == 413 else exc.reason
            return error(exc.status, message, headers)
        except Exception:
            log.exception("request failed")
            return error(500, "internal server error")

    def handler(parse: Callable[[Any], SuggestRequest], render: Callable[[list[Suggestion]], Any]) -> Any:
        async def handle(request: web.Request) -> web.Response:
            try:
                body = await request.read()
            except RequestPayloadError as exc:  # a body that does not decode (`Content-Encoding: gzip` ...)
                raise BadRequest(f"the request body could not be read: {exc}") from exc
            req = parse(decode_json(body, request.charset))
            try:
                suggestions = (await batcher.submit([req], samples))[0]
            except QueueFull as exc:
                return error(503, f"the server is busy: {exc}", {"Retry-After": "1"})
            except Exception as exc:
                log.exception("suggestion failed")
                return error(503, f"the model failed: {exc}")
            shown = [s for s in suggestions if SUGGESTION_SEPARATOR not in s.tactic]
            return web.json_response(render(shown), dumps=_dumps)

        return handle

    async def health(request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok", "model": model_name, "waiting": batcher.pending, "model_calls": batcher.backend_calls},
            dumps=_dumps,
        )

    async def close(app: web.Application) -> None:
        await batcher.aclose()

    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/", handler(parse_llmstep, render_llmstep))
    app.router.add_post("/generate", handler(parse_lean_copilot, render_lean_copilot))
    app.router.add_get("/health", health)
    app.on_cleanup.append(close)
    return app


def listen(host: str, ports: Sequence[int]) -> list[socket.socket]:
    """Bound, listening sockets for every port (0: any free port), or a one-line `ValueError`."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            try:
                family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
                sockets.append(socket.create_server((host, port), family=family, backlog=128))
            except socket.gaierror as exc:  # its errno is a getaddrinfo code, not an errno
                raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
            except OSError as exc:
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise ValueError(f"cannot listen on {host}:{port}: {reason}") from None
    except ValueError:
        for s in sockets:
            s.close()
        raise
    return sockets


def json_error_runner(app: Any) -> Any:
    """An `AppRunner` whose answers to requests that are not valid HTTP (a bad request line or
    header, a broken chunked body: aiohttp rejects them before any middleware runs) are JSON
    `{"error"}` bodies like every other client error, not aiohttp's text/plain page."""
    from aiohttp import web

    class Handler(web.RequestHandler):
        def handle_error(
            self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
        ) -> web.StreamResponse:
            if status >= 500:
                return super().handle_error(request, status, exc, message)  # logs the traceback
            log.info("bad HTTP request from %s: %s", request.remote, message or exc)
            if request.writer.output_size > 0:
                raise ConnectionError("the response was sent already; cannot send the error")
            response = web.json_response({"error": message or f"bad HTTP request: {exc}"}, status=status, dumps=_dumps)
            response.force_close()
            return response

    class Server(web.Server):
        def __call__(self) -> web.RequestHandler:
            return Handler(self, loop=self._loop, **self._kwargs)

    class Runner(web.AppRunner):
        async def _make_server(self) -> web.Server:
            server = await super()._make_server()
            server.__class__ = Server  # the same server, making our request handlers
            return server

    return Runner(app, handler_cancellation=True, access_log=None)


async def run_server(app: Any, sockets: list[socket.socket], on_ready: Callable[[], None]) -> None:
    """Serve `app` on the bound `sockets` until SIGINT or SIGTERM; `on_ready` runs once all listen."""
    from aiohttp import web

    runner = json_error_runner(app)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        on_ready()
        await stop.wait()
    finally:
        await runner.cleanup()


def serve_ports(args: argparse.Namespace) -> tuple[int, ...]:
    ports = tuple(getattr(args, "port", None) or DEFAULT_PORTS)
    for port in ports:
        if not 0 <= port <= 65535:
            raise ValueError(f"--port {port}: a port is 0..65535 (0: any free port)")
    return tuple(p for i, p in enumerate(ports) if p == 0 or p not in ports[:i])  # each port once; 0s each anew


def cmd_serve(args: argparse.Namespace) -> int:
    from prover.session import Session, generator_config

    options = resolve(ServeOptions, args)
    generator_options = resolve(GeneratorOptions, args)
    ports = serve_ports(args)
    for name in ("samples", "max_batch", "max_queue"):
        if getattr(options, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    try:
        import aiohttp  # noqa: F401
    except ImportError as exc:
        raise ValueError("prover serve needs aiohttp: pip install 'prover[server]'") from exc
    sockets = listen(options.host, ports)  # before the model: a busy port fails in a second, not after loading
    try:
        config = generator_config(generator_options, options.language, options.allow_native_decide)
        name = generator_options.model or generator_options.generator

        def ready() -> None:
            for sock in sockets:
                host, port = sock.getsockname()[:2]
                where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                print(f"serving tactic suggestions on http://{where} (llmstep and Lean Copilot)", flush=True)

        async def serve() -> None:
            # the session builds the generator and closes it (a client, an engine) when the server stops
            async with Session(config, env=False, concurrency=1) as session:
                session.generator.load()  # a model that cannot load fails now, not on the editor's first request
                app = build_app(
                    session.generator, options.samples, name, max_batch=options.max_batch, max_queue=options.max_queue
                )
                await run_server(app, sockets, ready)

        asyncio.run(serve())
    finally:
        for sock in sockets:
            sock.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve tactic suggestions to a Lean editor (llmstep, Lean Copilot)",
        description="A tactic-suggestion server speaking llmstep's protocol (POST /) and Lean "
        "Copilot's external-generator protocol (POST /generate), both on every port.",
    )
    add_options(p, ServeOptions, "server")
    p.add_argument(
        "--port",
        action="append",
        type=int,
        metavar="PORT",
        help=f"port to listen on, repeatable (default: {LLMSTEP_PORT} for llmstep and {LEAN_COPILOT_PORT} "
        "for Lean Copilot; 0 picks a free port)",
    )
    add_options(p, GeneratorOptions, "tactic generator")
    p.set_defaults(func=cmd_serve)
