"""`prover serve`: llmstep and Lean Copilot protocols, batching, honest status codes."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from prover.generators.automation import AutomationGenerator
from prover.generators.base import ModelGenerator
from prover.generators.prompts import load_prompt
from prover.serve import build_app, listen, probability, serve_ports
from search.best_first import Suggestion
from tests.conftest import ROOT


@pytest.fixture
async def client():
    app = build_app(AutomationGenerator("lean4", ["simp", "simp_all", "linarith", "sorry", "norm_num"]), 3, "auto")
    async with TestClient(TestServer(app)) as c:
        yield c


class Recorder:
    """A model stand-in: records each call's requests; `release` holds calls until set."""

    def __init__(self, logprobs=(-1.0,), hold: bool = False) -> None:
        self.calls: list[list] = []
        self.logprobs = logprobs
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def suggest_many(self, requests, n):
        self.calls.append(list(requests))
        await self.release.wait()
        return [[Suggestion(f"{r.prefix}t{i}", lp, 1) for i, lp in enumerate(self.logprobs)] for r in requests]


def strict_json(text: str):
    def refuse(token):
        raise AssertionError(f"non-finite JSON token {token}")

    return json.loads(text, parse_constant=refuse)


async def test_llmstep_protocol(client):
    resp = await client.post("/", json={"tactic_state": "⊢ 1 + 1 = 2", "prefix": "sim"})
    assert resp.status == 200
    assert await resp.json() == {"suggestions": ["simp", "simp_all"]}
    resp = await client.post("/", json={"tactic_state": "⊢ 1 + 1 = 2", "prefix": ""})
    assert (await resp.json())["suggestions"] == ["simp", "simp_all", "linarith"]
    # llmstep's client since late 2023 sends the file before the cursor too; older ones do not
    resp = await client.post("/", json={"tactic_state": "⊢ P", "prefix": "lin", "context": "theorem t : P := by\n  "})
    assert (await resp.json())["suggestions"] == ["linarith"]


async def test_lean_copilot_protocol(client):
    resp = await client.post("/generate", json={"name": "auto", "input": "⊢ True", "prefix": "lin"})
    assert resp.status == 200
    assert await resp.json() == {"outputs": [{"output": "linarith", "score": 1.0}]}
    # Lean Copilot's reference server takes a null prefix
    resp = await client.post("/generate", json={"name": "auto", "input": "⊢ True", "prefix": None})
    assert len((await resp.json())["outputs"]) == 3


def test_scores_are_probabilities():
    assert probability(0.0) == 1.0 and probability(-math.inf) == 0.0 and probability(math.nan) == 0.0
    assert probability(0.5) == 1.0 and math.isclose(probability(-46.0), math.exp(-46.0))


async def test_lean_copilot_scores_are_finite_probabilities_for_aesop():
    model = Recorder(logprobs=(-11.0, -46.0, math.nan, -math.inf, 0.3))
    async with TestClient(TestServer(build_app(model, 8, "m"))) as c:
        resp = await c.post("/generate", json={"name": "m", "input": "⊢ P", "prefix": ""})
        assert resp.status == 200
        outputs = strict_json(await resp.text())["outputs"]
        scores = [o["score"] for o in outputs]
        assert all(0.0 <= s <= 1.0 for s in scores) and math.isclose(scores[0], math.exp(-11.0))
        assert scores[2:] == [0.0, 0.0, 1.0]


MALFORMED = [
    # (what, method, path, body bytes, headers, expected status)
    ("bogus charset", "POST", "/", b'{"tactic_state": "x"}', {"Content-Type": "application/json; charset=bogus"}, 415),
    ("not UTF-8", "POST", "/", b'{"tactic_state": "\xff\xfe"}', {}, 400),
    ("not JSON", "POST", "/", b"not json", {}, 400),
    ("deep nesting", "POST", "/", b"[" * 100_000 + b"]" * 100_000, {}, 400),
    ("5,000-digit number", "POST", "/", b'{"tactic_state": "x", "prefix": ' + b"9" * 5000 + b"}", {}, 400),
    ("lone surrogate in the state", "POST", "/", b'{"tactic_state": "\\ud800", "prefix": ""}', {}, 400),
    ("lone surrogate in the input", "POST", "/generate", b'{"name": "m", "input": "\\udfff"}', {}, 400),
    ("prefix false", "POST", "/", b'{"tactic_state": "x", "prefix": false}', {}, 400),
    ("prefix 0", "POST", "/", b'{"tactic_state": "x", "prefix": 0}', {}, 400),
    ("prefix []", "POST", "/", b'{"tactic_state": "x", "prefix": []}', {}, 400),
    ("prefix 5", "POST", "/generate", b'{"name": "m", "input": "x", "prefix": 5}', {}, 400),
    ("context 3", "POST", "/", b'{"tactic_state": "x", "context": 3}', {}, 400),
    ("name 3", "POST", "/generate", b'{"name": 3, "input": "x"}', {}, 400),
    ("no state", "POST", "/generate", b'{"name": "m"}', {}, 400),
    ("state not a string", "POST", "/", b'{"tactic_state": 3}', {}, 400),
    ("not an object", "POST", "/", b'["tactic_state"]', {}, 400),
    ("unknown path", "GET", "/nope", b"", {}, 404),
    ("unknown path, POST", "POST", "/suggest", b"{}", {}, 404),
    ("GET on a POST route", "GET", "/", b"", {}, 405),
    ("too large", "POST", "/", b'{"tactic_state": "' + b"x" * (2 << 20) + b'"}', {}, 413),
]


@pytest.mark.parametrize("what,method,path,body,headers,status", MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_every_malformed_request_is_a_4xx_json_error(what, method, path, body, headers, status):
    model = Recorder()
    async with TestClient(TestServer(build_app(model, 3, "m"))) as c:
        resp = await c.request(method, path, data=body, headers=headers)
        assert resp.status == status, await resp.text()
        assert resp.content_type == "application/json"
        error = (await resp.json())["error"]
        assert isinstance(error, str) and error
        if status == 405:
            assert resp.headers["Allow"] == "POST"
    assert model.calls == []


async def test_health():
    async with TestClient(TestServer(build_app(Recorder(), 3, "m"))) as c:
        health = await c.get("/health")
        assert health.status == 200 and (await health.json())["status"] == "ok"


async def test_model_failure_is_503():
    class Broken:
        async def suggest_many(self, requests, n):
            raise RuntimeError("CUDA out of memory")

    async with TestClient(TestServer(build_app(Broken(), 3, "broken"))) as c:
        resp = await c.post("/", json={"tactic_state": "⊢ P", "prefix": ""})
        assert resp.status == 503 and "out of memory" in (await resp.json())["error"]


async def test_concurrent_requests_share_model_calls():
    class Slow(Recorder):
        async def suggest_many(self, requests, n):
            self.calls.append(list(requests))
            await asyncio.sleep(0.05)
            return [[Suggestion(f"exact {r.state}", -1.0, 1)] for r in requests]

    model = Slow()
    async with TestClient(TestServer(build_app(model, 3, "m"))) as c:

        async def ask(i):
            resp = await c.post("/", json={"tactic_state": f"h{i}", "prefix": ""})
            return (await resp.json())["suggestions"]

        answers = await asyncio.gather(*(ask(i) for i in range(16)))
    assert answers == [[f"exact h{i}"] for i in range(16)]  # each client gets its own answer
    assert sum(len(c) for c in model.calls) == 16 and len(model.calls) <= 3, [len(c) for c in model.calls]


async def test_a_full_queue_answers_503_with_retry_after():
    model = Recorder(hold=True)
    async with TestClient(TestServer(build_app(model, 3, "m", max_queue=2))) as c:
        first = asyncio.create_task(c.post("/", json={"tactic_state": "in flight"}))
        while not model.calls:
            await asyncio.sleep(0.005)
        waiting = [asyncio.create_task(c.post("/", json={"tactic_state": f"w{i}"})) for i in range(2)]
        await asyncio.sleep(0.05)
        refused = await c.post("/", json={"tactic_state": "one too many"})
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert "busy" in (await refused.json())["error"]
        model.release.set()
        assert all(r.status == 200 for r in [await first, *[await w for w in waiting]])


async def test_a_client_that_disconnects_cancels_its_waiting_request():
    model = Recorder(hold=True)
    server = TestServer(build_app(model, 3, "m"), handler_cancellation=True)
    async with TestClient(server) as c:
        first = asyncio.create_task(c.post("/", json={"tactic_state": "first"}))
        while not model.calls:
            await asyncio.sleep(0.005)
        url = str(server.make_url("/"))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as impatient:
            for i in range(10):
                with pytest.raises(asyncio.TimeoutError):
                    await impatient.post(url, json={"tactic_state": f"abandoned{i}"})
        await asyncio.sleep(0.1)
        model.release.set()
        assert (await first).status == 200
        resp = await c.post("/", json={"tactic_state": "next"})
        assert resp.status == 200
    assert [[r.state for r in call] for call in model.calls] == [["first"], ["next"]]


class Scripted(ModelGenerator):
    """A model whose continuations are fixed: exercises the real post-processing and guard."""

    def __init__(self, continuations):
        super().__init__(load_prompt("llmstep", "lean4"), "lean4")
        self.continuations = continuations
        self.prompts: list[str] = []

    async def _complete(self, prompts, n):
        self.prompts.extend(prompts)
        return [[Suggestion(t, -0.1 * i, 1) for i, t in enumerate(self.continuations)] for _ in prompts]


async def test_unsafe_and_protocol_breaking_suggestions_are_not_served():
    model = Scripted([" h [SUGGESTION] x", "\u202e h", " sorry", " h\u2028h", " ⟨h, h'⟩", "_decide +native"])
    async with TestClient(TestServer(build_app(model, 8, "m"))) as c:
        resp = await c.post("/", json={"tactic_state": "⊢ P", "prefix": "exact"})
        assert (await resp.json())["suggestions"] == ["exact ⟨h, h'⟩"]
        raw = await (await c.post("/generate", json={"name": "m", "input": "⊢ P", "prefix": "exact"})).read()
        assert "⟨h, h'⟩".encode() in raw  # UTF-8 on the wire: Lean's parser mangles \u-escaped pairs


async def test_llmstep_context_becomes_a_prompt():
    model = Scripted([" rfl"])
    async with TestClient(TestServer(build_app(model, 4, "m"))) as c:
        body = {"tactic_state": "⊢ 1 = 1", "prefix": "exact", "context": "theorem t : 1 = 1 := by\n  "}
        assert (await (await c.post("/", json=body)).json())["suggestions"] == ["exact rfl"]
    assert model.prompts == ["[GOAL]⊢ 1 = 1[PROOFSTEP]exact", "theorem t : 1 = 1 := by\n  exact"]


async def test_model_suggestions_are_guarded_and_keep_the_prefix(tmp_path):
    from prover.generators.hf import HFGenerator
    from prover.options import GeneratorOptions
    from tests.fakes.tiny_model import build_tiny_llama

    model = build_tiny_llama(tmp_path / "tiny")
    gen = HFGenerator(
        str(model),
        load_prompt("llmstep", "lean4"),
        "lean4",
        GeneratorOptions(generator="hf", model=str(model), temperature=1.0, max_new_tokens=6),
    )
    async with TestClient(TestServer(build_app(gen, 4, "tiny"))) as c:
        resp = await c.post("/", json={"tactic_state": "⊢ 1 = 1", "prefix": "exact "})
        assert resp.status == 200
        suggestions = (await resp.json())["suggestions"]
        assert len(suggestions) <= 4 and all(s.startswith("exact ") for s in suggestions)


def test_default_ports_are_the_editors():
    from prover.cli import build_parser

    parser = build_parser()
    assert serve_ports(parser.parse_args(["serve"])) == (6000, 23337)
    assert serve_ports(parser.parse_args(["serve", "--port", "5000", "--port", "5001"])) == (5000, 5001)
    repeated = ["serve", "--port", "0", "--port", "7", "--port", "0", "--port", "7"]
    assert serve_ports(parser.parse_args(repeated)) == (0, 7, 0)  # a port once; each 0 a free port
    with pytest.raises(ValueError, match="port"):
        serve_ports(parser.parse_args(["serve", "--port", "70000"]))


def _post(url: str, body: bytes, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as r:
        return strict_json(r.read().decode())


def test_serve_command_answers_both_editors_on_every_port(tmp_path):
    tactics = tmp_path / "tactics.txt"
    tactics.write_text("native_decide\nsimp\nsorry\nsimp_all\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover.cli", "serve", "--port", "0", "--port", "0", "--samples", "2"]
        + ["--tactics", str(tactics), "--allow-native-decide"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert all(line.startswith("serving tactic suggestions on http://127.0.0.1:") for line in lines), (
            lines,
            proc.stderr.read() if proc.poll() is not None else "",
        )
        urls = [line.split()[4] for line in lines]
        assert len(set(urls)) == 2
        for url in urls:
            # llmstep's python/suggest.py: requests.post(host, json=data)
            llmstep = json.dumps({"tactic_state": "⊢ P", "prefix": "", "context": ""}).encode()
            got = _post(url + "/", llmstep, {"Content-Type": "application/json"})
            assert got == {"suggestions": ["native_decide", "simp"]}  # the run's policy; `sorry` never
            # Lean Copilot's External.lean: curl -X POST url -H "accept: application/json"
            # -H "Content-Type: application/json" -d (toJson req).pretty
            copilot = b'{"prefix": "simp", "name": "wellecks/llmstep-mathlib4-pythia2.8b",\n "input": "\\u22a2 P"}'
            got = _post(url + "/generate", copilot, {"accept": "application/json", "Content-Type": "application/json"})
            assert got == {"outputs": [{"output": "simp", "score": 1.0}, {"output": "simp_all", "score": 1.0}]}
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0  # SIGTERM is a clean stop


def test_a_busy_port_fails_at_once_before_the_model_loads(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "prover.cli", "serve", "--port", str(port)]
            + ["--generator", "hf", "--model", str(tmp_path / "none")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"prover: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert done.stdout == "" and time.monotonic() - started < 60


def test_serve_with_a_missing_model_fails_at_startup(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "prover.cli", "serve", "--port", "0"]
        + ["--generator", "hf", "--model", str(tmp_path / "none")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "cannot load model" in done.stderr


def test_a_plain_http_client_gets_json_errors():
    # a plain urllib client (no aiohttp) sees JSON errors too
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover.cli", "serve", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[4]
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "/nope", timeout=5)
        assert err.value.code == 404 and err.value.headers["Content-Type"].startswith("application/json")
        assert "error" in json.loads(err.value.read())
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",  # a header without a colon
        b"BREW\x01 / HTTP/1.1\r\nHost: x\r\n\r\n",  # a method that is not a token
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a bad chunk size
    ],
)
async def test_a_request_that_is_not_valid_http_gets_a_json_400(raw):
    """aiohttp rejects these before any middleware runs; the runner answers them in JSON too."""
    from aiohttp import web

    from prover.serve import json_error_runner

    app = build_app(AutomationGenerator("lean4", ["simp"]), 1, "auto")
    runner = json_error_runner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        await web.SockSite(runner, sock).start()
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400", answer
        assert b"Content-Type: application/json" in head, answer
        assert json.loads(body)["error"]
    finally:
        await runner.cleanup()


async def test_a_body_that_does_not_decode_is_a_400(client):
    """`Content-Encoding: gzip` with a broken body: aiohttp cannot read it; the client's fault."""
    resp = await client.post("/", data=b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"})
    assert resp.status == 400 and "could not be read" in (await resp.json())["error"]


def test_an_unknown_host_is_named_as_such():
    with pytest.raises(ValueError) as err:
        listen("999.1.1.1", [0])
    message = str(err.value)
    assert message.startswith("cannot listen on 999.1.1.1:0: ") and "Unknown error" not in message
    try:
        socket.getaddrinfo("999.1.1.1", 0)
    except socket.gaierror as exc:
        assert message.endswith(str(exc.strerror))


def test_the_latency_benchmark_runs():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.serve_latency", "--model-ms", "20", "--requests", "8"]
        + ["--clients", "4", "--rounds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[3:]}
    assert set(rows) == {"ours", "direct"} and rows["direct"][-1] == "1"
