#!/usr/bin/env python3
"""A fake PISA gRPC server: PISA's service and messages, a scripted "Isabelle" behind them.

The messages are real protobuf messages built from the same definitions as PISA's
`server.proto` (package `server`, service `Server`, one string field each), so the client's
hand-written encoding is checked against protobuf itself. Commands follow PISA's
`PisaOneStage.isabelleCommand`: `<proceed before>`, `<initialise>`, `<apply to top level state>`
(answers the new state's text or `Step error: ...`), `<is finished>` (`true` at proof level 0).

The script (JSON): `{"statements": {STATEMENT: STATE}, "steps": {STATE: {STEP: STATE}}}`;
the empty state means the proof is finished. `<delete> NAME` frees a state; `exit` ends the session's Isabelle (PISA:
`isabelle.destroy()`); a later `IsabelleContext` starts a new one. Test hooks: `--hang-on STEP`,
`--step-timeout S` (as PISA's `Await.result` in `PisaOS.step`: a step still running after S
seconds is answered `Unknown error: Futures timed out after [...]`, though it goes on running),
`--bloat-on STEP` (grows by 400 MB, then answers after 5 s, as a step that eats memory), `--log FILE`.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SEP = "<apply to top level state>"


def pisa_messages() -> dict[str, type]:
    """Message classes equivalent to PISA's server.proto (IsaPath, IsaContext, ...)."""
    fd = descriptor_pb2.FileDescriptorProto(name="fake_pisa_server.proto", package="server", syntax="proto3")
    for name, field in (
        ("IsaPath", "path"),
        ("IsaContext", "context"),
        ("IsaMessage", "message"),
        ("IsaCommand", "command"),
        ("IsaState", "state"),
    ):
        msg = fd.message_type.add(name=name)
        msg.field.add(
            name=field,
            number=1,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"server.{name}"))
        for name in ("IsaPath", "IsaContext", "IsaMessage", "IsaCommand", "IsaState")
    }


class FakeIsabelle:
    def __init__(
        self,
        script: dict,
        hang_on: list[str],
        log: Path | None,
        bloat_on: list[str] = (),
        step_timeout: float | None = None,
    ) -> None:
        self.script = script
        self.step_timeout = step_timeout
        self.hang_on = hang_on
        self.bloat_on = list(bloat_on)
        self.ballast: list[bytearray] = []
        self.log = log
        self.states: dict[str, str] = {}
        self.context: str | None = None

    def record(self, method: str, text: str) -> None:
        if self.log:
            with self.log.open("a") as f:
                f.write(json.dumps({"method": method, "text": text}) + "\n")

    def run_text(self, text: str) -> str | None:
        """A statement, or a statement followed by proof steps (one per line)."""
        statements = self.script["statements"]
        if text in statements:
            return statements[text]
        for statement, state in statements.items():
            if text.startswith(statement + "\n"):
                for step in text[len(statement) + 1 :].splitlines():
                    if step.strip():
                        state = self.script["steps"].get(state, {}).get(step.strip())
                        if state is None:
                            return None
                return state
        return None

    def command(self, text: str) -> str:
        if text == "exit":
            self.context = None
            self.states = {}
            return "Exited"
        if text.startswith("<delete>"):
            name = text.removeprefix("<delete>").strip()
            if self.states.pop(name, None) is None:
                return f"Didn't find top level state of given name: {name}"
            return f"Successfully deleted state named: {name}"
        if text.startswith("<proceed before>"):
            return ""
        if text.startswith("<initialise>"):
            if self.context is None:
                return "Step error: no theory context"
            self.states = {"default": ""}
            return "Toplevel state 'default' is ready"
        if text.startswith("<is finished>"):
            name = text.split("<is finished>")[-1].strip()
            if name not in self.states:
                return f"Didn't find top level state of given name: {name}"
            return "true" if self.states[name] == "" else "false"
        if text.startswith(SEP):
            _, old, step, new = (part.strip() for part in text.split(SEP))
            if old not in self.states:
                return f"Didn't find top level state of given name: {old}"
            if any(line.strip() in self.hang_on for line in step.splitlines()):  # a step, or a whole proof
                if self.step_timeout is not None:
                    time.sleep(self.step_timeout)
                    return f"Unknown error: Futures timed out after [{int(self.step_timeout * 1000)} milliseconds]"
                time.sleep(3600)
            if step in self.bloat_on:
                self.ballast = [bytearray(b"x" * (1 << 20)) for _ in range(400)]  # touched, so resident
                time.sleep(5)
                self.ballast = []
            if old == "default":
                state = self.run_text(step)
            else:
                state = self.script["steps"].get(self.states[old], {}).get(step)
            if state is None:
                return "Step error: Failed to apply initial proof method"
            self.states[new] = state
            return state
        return f"Unknown error: unsupported command {text[:40]}"


def serve(
    port: int,
    script: dict,
    hang_on: list[str],
    log: Path | None,
    bloat_on: list[str] = (),
    step_timeout: float | None = None,
) -> grpc.Server:
    m = pisa_messages()
    fake = FakeIsabelle(script, hang_on, log, bloat_on, step_timeout)

    def initialise(request, context):
        fake.record("InitialiseIsabelle", request.path)
        fake.context = None
        fake.states = {}
        return m["IsaMessage"](message=f"Isabelle path set to {request.path}")

    def working_directory(request, context):
        fake.record("IsabelleWorkingDirectory", request.path)
        return m["IsaMessage"](message=f"Working directory set to {request.path}")

    def theory_context(request, context):
        fake.record("IsabelleContext", request.context)
        path = Path(request.context)
        if not path.is_file() or "begin" not in path.read_text():
            return m["IsaMessage"](message=f"Theory file not found: {path}")
        fake.context = path.read_text()
        return m["IsaMessage"](message="Context set")

    def command(request, context):
        fake.record("IsabelleCommand", request.command)
        return m["IsaState"](state=fake.command(request.command))

    def handler(fn, request_type):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=m[request_type].FromString, response_serializer=lambda r: r.SerializeToString()
        )

    handlers = {
        "InitialiseIsabelle": handler(initialise, "IsaPath"),
        "IsabelleWorkingDirectory": handler(working_directory, "IsaPath"),
        "IsabelleContext": handler(theory_context, "IsaContext"),
        "IsabelleCommand": handler(command, "IsaCommand"),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("server.Server", handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--script", type=Path, required=True)
    ap.add_argument("--hang-on", action="append", default=[])
    ap.add_argument("--bloat-on", action="append", default=[])
    ap.add_argument("--step-timeout", type=float)
    ap.add_argument("--log", type=Path)
    args = ap.parse_args()
    script = json.loads(args.script.read_text())
    server = serve(args.port, script, args.hang_on, args.log, args.bloat_on, args.step_timeout)
    print("ready", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
