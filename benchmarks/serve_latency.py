"""`prover serve` latency and throughput with a model stand-in of fixed latency per call.

Two servers, each in its own process, answer llmstep requests (`POST /`) over real TCP:
- "ours": `prover.serve.build_app` over a stand-in whose every call (any batch size) takes
  `--model-ms` — a GPU's batch costs about what one request costs;
- "direct": a minimal aiohttp handler sharing none of our code: parse the JSON, hold a lock
  around the same stand-in (one model call per request, as `prover serve` did before batching),
  answer.

Clients open a fresh connection per request, like llmstep's `requests.post` and Lean Copilot's
`curl`. At 1 client: latency minus model time (the overhead), p50 and p95. At `--clients`
concurrent clients: requests per second, against the 1-client (sequential) rate of the same
server. Rounds alternate between the servers after a warm-up; figures are medians over rounds.

    python -m benchmarks.serve_latency [--model-ms 200] [--requests 60] [--clients 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import aiohttp


def _listen() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0), backlog=256)


def serve_ours(model_s: float, conn: Connection) -> None:
    from aiohttp import web

    from prover.serve import build_app, run_server
    from search.best_first import Suggestion

    last_call = [0.0]  # seconds the latest model call took (asyncio.sleep overshoots a little)
    overheads: list[float] = []  # per llmstep request: time inside the server minus its model call

    class StandIn:
        async def suggest_many(self, requests: Sequence[Any], n: int) -> list[list[Suggestion]]:
            started = time.perf_counter()
            await asyncio.sleep(model_s)
            last_call[0] = time.perf_counter() - started
            return [[Suggestion(f"{r.prefix}simp{i}", -1.0 * i, 1) for i in range(n)] for r in requests]

    @web.middleware
    async def timing(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        if request.path == "/":
            overheads.append(time.perf_counter() - started - last_call[0])
        return response  # type: ignore[no-any-return]

    async def stats(request: web.Request) -> web.Response:
        taken = overheads[:]
        overheads.clear()
        return web.json_response(taken)

    sock = _listen()
    app = build_app(StandIn(), 4, "stand-in", max_batch=64, max_queue=256)
    app.middlewares.insert(0, timing)  # outermost: everything of ours is inside
    app.router.add_get("/bench-stats", stats)
    asyncio.run(run_server(app, [sock], lambda: conn.send(sock.getsockname()[1])))


def serve_direct(model_s: float, conn: Connection) -> None:
    from aiohttp import web

    async def main() -> None:
        lock = asyncio.Lock()

        async def handle(request: web.Request) -> web.Response:
            body = json.loads(await request.read())
            async with lock:
                await asyncio.sleep(model_s)
                out = [f"{body['prefix']}simp{i}" for i in range(4)]
            return web.json_response({"suggestions": out})

        app = web.Application()
        app.router.add_post("/", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = _listen()
        await web.SockSite(runner, sock).start()
        conn.send(sock.getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _one(session: aiohttp.ClientSession, url: str, i: int) -> float:
    body = {"tactic_state": f"x : ℕ\nh : x = {i}\n⊢ x + 0 = {i}", "prefix": "", "context": ""}
    started = time.perf_counter()
    async with session.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        assert len((await resp.json())["suggestions"]) == 4
    return time.perf_counter() - started


async def measure(url: str, clients: int, requests: int) -> tuple[list[float], float]:
    """Latencies of `requests` requests per client and the requests per second over all clients."""
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(c: int) -> list[float]:
            return [await _one(session, url, c * requests + i) for i in range(requests)]

        started = time.perf_counter()
        per_client = await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.perf_counter() - started
    latencies = [x for xs in per_client for x in xs]
    return latencies, len(latencies) / elapsed


async def get(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return await resp.json()


async def model_calls(url: str) -> int:
    """Model calls our server has made so far (its /health)."""
    return int((await get(url + "health"))["model_calls"])


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-ms", type=float, default=200.0, help="stand-in model time per call")
    ap.add_argument("--requests", type=int, default=60, help="requests per client per measurement")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model_s = args.model_ms / 1000
    ctx = multiprocessing.get_context("spawn")
    servers: dict[str, tuple[Any, str]] = {}
    for name, target in (("ours", serve_ours), ("direct", serve_direct)):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=target, args=(model_s, child), daemon=True)
        proc.start()
        if not parent.poll(60):
            raise SystemExit(f"the {name} server did not start")
        servers[name] = (proc, f"http://127.0.0.1:{parent.recv()}/")
    try:
        rows: dict[str, dict[str, list[float]]] = {
            n: {"p50": [], "p95": [], "in50": [], "in95": [], "seq": [], "conc": [], "per_call": []} for n in servers
        }
        for _proc, url in servers.values():  # warm-up
            asyncio.run(measure(url, 2, 5))
        for _ in range(args.rounds):
            for name, (_, url) in servers.items():
                if name == "ours":
                    asyncio.run(get(url + "bench-stats"))
                latencies, sequential = asyncio.run(measure(url, 1, args.requests))
                overhead = [(x - model_s) * 1000 for x in latencies]
                if name == "ours":
                    inside = [x * 1000 for x in asyncio.run(get(url + "bench-stats"))]
                    rows[name]["in50"].append(statistics.median(inside))
                    rows[name]["in95"].append(p95(inside))
                calls = asyncio.run(model_calls(url)) if name == "ours" else 0
                latencies, concurrent = asyncio.run(measure(url, args.clients, max(2, args.requests // 8)))
                if name == "ours":
                    rows[name]["per_call"].append(len(latencies) / (asyncio.run(model_calls(url)) - calls))
                rows[name]["p50"].append(statistics.median(overhead))
                rows[name]["p95"].append(p95(overhead))
                rows[name]["seq"].append(sequential)
                rows[name]["conc"].append(concurrent)
        print(f"model stand-in {args.model_ms:.0f} ms per call; medians over {args.rounds} alternating rounds")
        print("overhead = latency - model time, at 1 client: as the client sees it | inside the server")
        clients = f"{args.clients} clients"
        print(
            f"{'server':<7} {'client p50':>10} {'p95':>8} {'server p50':>11} {'p95':>8} "
            f"{'1 client':>9} {clients:>11} {'ratio':>6} {'per call':>8}"
        )
        for name, r in rows.items():
            seq, conc = statistics.median(r["seq"]), statistics.median(r["conc"])
            inside = (
                f"{statistics.median(r['in50']):8.2f} ms {statistics.median(r['in95']):5.2f} ms"
                if r["in50"]
                else f"{'-':>11} {'-':>8}"
            )
            per_call = f"{statistics.median(r['per_call']):8.1f}" if r["per_call"] else f"{1:8d}"
            print(
                f"{name:<7} {statistics.median(r['p50']):7.2f} ms {statistics.median(r['p95']):5.2f} ms {inside} "
                f"{seq:7.1f}/s {conc:9.1f}/s {conc / seq:5.1f}x {per_call}"
            )
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.join(10)


if __name__ == "__main__":
    main()
