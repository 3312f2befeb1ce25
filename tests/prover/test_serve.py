"""`prover serve`: llmstep and Lean Copilot protocols, honest status codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from aiohttp.test_utils import TestClient, TestServer

from prover.generators.automation import AutomationGenerator
from prover.serve import build_app
from tests.conftest import ROOT


@pytest.fixture
async def client():
    app = build_app(AutomationGenerator("lean4", ["simp", "simp_all", "linarith", "sorry", "norm_num"]), 3, "auto")
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_llmstep_protocol(client):
    resp = await client.post("/", json={"tactic_state": "⊢ 1 + 1 = 2", "prefix": "sim"})
    assert resp.status == 200
    assert await resp.json() == {"suggestions": ["simp", "simp_all"]}
    resp = await client.post("/", json={"tactic_state": "⊢ 1 + 1 = 2", "prefix": ""})
    assert (await resp.json())["suggestions"] == ["simp", "simp_all", "linarith"]


async def test_lean_copilot_protocol(client):
    resp = await client.post("/generate", json={"name": "auto", "input": "⊢ True", "prefix": "lin"})
    assert resp.status == 200
    assert await resp.json() == {"outputs": [{"output": "linarith", "score": 0.0}]}


async def test_bad_requests_are_400_and_health(client):
    assert (await client.post("/", data=b"not json")).status == 400
    bad = await client.post("/generate", json={"name": "x"})
    assert bad.status == 400 and "input" in (await bad.json())["error"]
    assert (await client.post("/", json={"tactic_state": 3})).status == 400
    assert (await client.get("/nope")).status == 404
    health = await client.get("/health")
    assert health.status == 200 and (await health.json())["status"] == "ok"


async def test_model_failure_is_503():
    class Broken:
        async def suggest(self, state, prefix, n):
            raise RuntimeError("CUDA out of memory")

    async with TestClient(TestServer(build_app(Broken(), 3, "broken"))) as c:
        resp = await c.post("/", json={"tactic_state": "⊢ P", "prefix": ""})
        assert resp.status == 503 and "out of memory" in (await resp.json())["error"]


async def test_model_suggestions_are_guarded_and_keep_the_prefix(tmp_path):
    from prover.generators.hf import HFGenerator
    from prover.generators.prompts import load_prompt
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
        assert len(suggestions) <= 4 and all(s.startswith("exact") for s in suggestions)


def test_serve_command_answers_over_http():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "prover.cli", "serve", "--port", str(port), "--samples", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/",
                    data=json.dumps({"tactic_state": "⊢ P", "prefix": "s"}).encode(),
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                with urllib.request.urlopen(request, timeout=5) as r:
                    assert json.load(r) == {"suggestions": ["simp", "simp_all"]}
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_with_a_missing_model_fails_at_startup(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "prover.cli", "serve", "--generator", "hf", "--model", str(tmp_path / "none")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "cannot load model" in done.stderr
