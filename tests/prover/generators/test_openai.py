"""The OpenAI-compatible path against a local HTTP server answering in the completions format."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from envs.types import ProofState
from prover.generators.base import GeneratorSetupError
from prover.generators.openai_api import ModelServerError, OpenAIGenerator, parse_completions
from prover.generators.prompts import load_prompt
from prover.options import GeneratorOptions
from tests.fakes.openai_server import FlakyServer

# A completions response in the shape `vllm serve` returns (n=2 for each of 2 prompts).
RECORDED = {
    "id": "cmpl-1",
    "object": "text_completion",
    "model": "llemma",
    "choices": [
        {
            "index": 0,
            "text": "linarith\n---",
            "finish_reason": "stop",
            "logprobs": {"tokens": ["lin", "arith"], "token_logprobs": [-0.5, -0.25]},
        },
        {
            "index": 1,
            "text": "nlinarith [sq_nonneg x]",
            "finish_reason": "stop",
            "logprobs": {"tokens": ["n", "lin", "arith", " [", "sq"], "token_logprobs": [-1.0, -0.1, -0.1, -0.2, -0.1]},
        },
        {
            "index": 2,
            "text": "sorry",
            "finish_reason": "stop",
            "logprobs": {"tokens": ["sorry"], "token_logprobs": [-0.01]},
        },
        {
            "index": 3,
            "text": "simp",
            "finish_reason": "stop",
            "logprobs": {"tokens": ["simp"], "token_logprobs": [-0.3]},
        },
    ],
}


@pytest.fixture
def server():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            if body.get("model") == "missing":
                self.send_response(404)
                self.end_headers()
                self.wfile.write(b'{"error": "model not found"}')
                return
            data = json.dumps(RECORDED).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", received
    httpd.shutdown()


async def test_completions_are_parsed_cleaned_and_ordered(server):
    url, received = server
    options = GeneratorOptions(generator="openai", model="llemma", base_url=url, api_key="k", temperature=0.7)
    gen = OpenAIGenerator("llemma", load_prompt("llemma", "lean4"), "lean4", options)
    out = await gen.generate([ProofState(("⊢ a",)), ProofState(("⊢ b",))], 2)
    assert [s.tactic for s in out[0]] == ["linarith", "nlinarith [sq_nonneg x]"]
    assert out[0][0].logprob == pytest.approx(-0.75) and out[0][0].num_tokens == 2
    assert [s.tactic for s in out[1]] == ["simp"]  # `sorry` was filtered
    body = received[0]["body"]
    assert received[0]["path"] == "/v1/completions" and received[0]["auth"] == "Bearer k"
    assert body["n"] == 2 and body["stop"] == ["---"] and body["logprobs"] == 1 and len(body["prompt"]) == 2


async def test_http_errors_are_clear(server):
    url, _ = server
    gen = OpenAIGenerator(
        "missing",
        load_prompt("llemma", "lean4"),
        "lean4",
        GeneratorOptions(generator="openai", model="missing", base_url=url),
    )
    with pytest.raises(GeneratorSetupError, match="404"):
        await gen.generate([ProofState(("⊢ a",))], 2)


def test_base_url_is_required(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(GeneratorSetupError, match="base-url"):
        OpenAIGenerator("m", load_prompt("llemma", "lean4"), "lean4", GeneratorOptions(generator="openai"))


def test_bad_payload():
    with pytest.raises(GeneratorSetupError):
        parse_completions({"error": "x"}, 1, 1)


# --------------------------------------------------------------------------- transient server errors


def flaky_generator(url: str, retries: int = 4, timeout: float = 300.0) -> OpenAIGenerator:
    options = GeneratorOptions(
        generator="openai", model="m", base_url=url, retries=retries, request_timeout=timeout, temperature=0.7
    )
    return OpenAIGenerator("m", load_prompt("llemma", "lean4"), "lean4", options, backoff=0.01)


async def test_a_503_a_reset_and_a_timeout_are_retried():
    with FlakyServer(["503", "reset", "slow", "502"], tactics=["simp", "ring"], slow_s=2.0) as server:
        gen = flaky_generator(server.url, retries=4, timeout=0.5)
        try:
            out = await gen.generate([ProofState(("⊢ a",))], 2)
        finally:
            await gen.aclose()
    assert [s.tactic for s in out[0]] == ["simp", "ring"]
    assert len(server.requests) == 5  # four failures, then the answer


async def test_still_failing_after_the_retries_is_an_error_of_that_call():
    with FlakyServer(["ok", "503", "503", "503", "ok"]) as server:
        gen = flaky_generator(server.url, retries=2)
        try:
            assert await gen.generate([ProofState(("⊢ a",))], 1)
            with pytest.raises(ModelServerError, match=r"503.*\(3 attempts\)"):
                await gen.generate([ProofState(("⊢ a",))], 1)
            assert len(server.requests) == 4
            # the server is back: the next call works
            assert await gen.generate([ProofState(("⊢ a",))], 1)
        finally:
            await gen.aclose()


async def test_a_server_that_never_answered_is_a_setup_error():
    with FlakyServer(["503"] * 10) as server:
        gen = flaky_generator(server.url, retries=2)
        with pytest.raises(GeneratorSetupError, match="3 attempts"):
            await gen.generate([ProofState(("⊢ a",))], 1)
        await gen.aclose()
    assert len(server.requests) == 3
    closed = flaky_generator("http://127.0.0.1:9/v1", retries=1)  # nothing listens on port 9
    with pytest.raises(GeneratorSetupError, match="cannot reach"):
        await closed.generate([ProofState(("⊢ a",))], 1)


async def test_a_bad_request_is_not_retried():
    with FlakyServer(["400"]) as server:
        gen = flaky_generator(server.url, retries=4)
        with pytest.raises(GeneratorSetupError, match="400"):
            await gen.generate([ProofState(("⊢ a",))], 1)
        await gen.aclose()
    assert len(server.requests) == 1


def test_the_key_is_not_in_the_generators_repr():
    gen = flaky_generator("http://127.0.0.1:9/v1")
    gen2 = OpenAIGenerator(
        "m",
        load_prompt("llemma", "lean4"),
        "lean4",
        GeneratorOptions(generator="openai", base_url="http://x", api_key="sk-hidden"),
    )
    assert "sk-hidden" not in repr(gen2) and "sk-hidden" not in repr(gen2.options) and repr(gen)


@pytest.mark.usefixtures("coq_available")
def test_eval_survives_transient_server_errors(tmp_path):
    """A 503 and a dropped connection in the middle of an eval: every theorem is still searched."""
    from tests.run_cli import prover

    bench = Path(__file__).resolve().parents[2] / "data" / "coq_bench.jsonl"
    with FlakyServer(["ok", "503", "reset", "ok", "503"], tactics=["intros", "lia", "intuition"]) as server:
        done = prover(
            "eval",
            "--env",
            "coq",
            "--benchmark-file",
            str(bench),
            "--names",
            "add_zero_r,and_swap,false_add",
            "--generator",
            "openai",
            "--model",
            "m",
            "--base-url",
            server.url,
            "--samples",
            "3",
            "--expansions",
            "3",
            "--out",
            str(tmp_path / "run"),
        )
    assert done.returncode == 0, done.stderr
    records = {r["theorem"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())}
    assert set(records) == {"add_zero_r", "and_swap", "false_add"}
    assert all(r["status"] != "error" for r in records.values()), records
    assert records["add_zero_r"]["status"] == "proved" and records["and_swap"]["status"] == "proved"
    assert "retry 1 of 4" in done.stderr
