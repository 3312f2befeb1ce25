"""A local OpenAI-compatible completions server that can fail on purpose.

`FlakyServer(script)` answers the k-th request as `script[k]` says (then "ok" forever):
"ok" (a completions answer), an HTTP status such as "503", "reset" (the connection is
dropped without an answer) or "slow" (answers after `slow_s`, later than a client timeout).
Choices cycle through `tactics`. Every request (path, body, Authorization header) is kept.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FlakyServer:
    def __init__(self, script: Sequence[str] = (), tactics: Sequence[str] = ("simp",), slow_s: float = 2.0) -> None:
        self.script = list(script)
        self.tactics = list(tactics)
        self.slow_s = slow_s
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FlakyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        n = int(body.get("n", 1))
        choices = []
        for i in range(len(prompts) * n):
            text = self.tactics[i % n % len(self.tactics)]
            choices.append(
                {
                    "index": i,
                    "text": text,
                    "logprobs": {"token_logprobs": [-0.1 * (1 + i % n)]},
                    "finish_reason": "stop",
                }
            )
        return {"object": "text_completion", "choices": choices}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    k = len(server.requests)
                    server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                action = server.script[k] if k < len(server.script) else "ok"
                if action == "reset":
                    # RST instead of an answer: SO_LINGER 0, then close
                    self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.request.close()
                    self.close_connection = True
                    return
                if action == "slow":
                    time.sleep(server.slow_s)
                    action = "ok"
                if action == "ok":
                    self._send(200, server.completions(body))
                else:
                    self._send(int(action), {"error": {"message": f"scripted {action}"}})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        return Handler
