"""The OpenAI-compatible path against a local HTTP server answering in the completions format."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from envs.types import ProofState
from prover.generators.base import GeneratorSetupError
from prover.generators.openai_api import OpenAIGenerator, parse_completions
from prover.generators.prompts import load_prompt
from prover.options import GeneratorOptions

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
