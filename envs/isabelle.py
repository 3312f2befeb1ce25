"""Isabelle through the Portal-to-ISAbelle (PISA) gRPC server.

PISA (github.com/albertqjiang/Portal-to-ISAbelle) runs beside an Isabelle install and is
started by the user (one server per port). Its service `server.Server` takes single-string
messages; proof interaction goes through `IsabelleCommand` with tagged text commands:
- `InitialiseIsabelle(path)`, `IsabelleWorkingDirectory(path)`, `IsabelleContext(theory file)`
  open a theory; `<proceed before> end` then `<initialise>` give the top-level state `default`;
- `<apply to top level state> OLD <apply to top level state> STEP <apply to top level state> NEW`
  runs STEP on the named state OLD and names the result NEW; the answer is the new state's
  text, or `Step error: ...` / `Unknown error: ...`;
- `<is finished> NAME` answers `true` when the proof level is 0.
Every state is named on the server, so branching needs no replay; after a restart (the
session is re-initialised) states are rebuilt from their tactic paths, as in the other backends.
`verify` applies the statement and the whole proof as one text to a header's `default` state in
an Isabelle that never ran a search tactic: with `verify_port`, a PISA server of its own, warm
(the theory context is opened once per header and every check starts from its `default` state,
which no check changes); without it, slot 0 is re-initialised (PISA's `IsabelleContext` starts a
new Isabelle) for each check, and that slot's searches replay their states afterwards.

The messages are encoded by hand (each is one proto3 string field), so only `grpcio` is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envs.pool import Handle, ProcessPool, Slot
from envs.process import ProcessDied, capped, listening_pid
from envs.tactic_guard import TacticPolicy, check_isabelle_tactic
from envs.types import (
    EnvSetupError,
    Failed,
    Language,
    Progress,
    ProofState,
    Proved,
    TacticResult,
    Theorem,
    TheoremCheck,
    TheoremStartError,
    Verdict,
    current_usage,
)

log = logging.getLogger(__name__)

SETUP_HINT = (
    "Isabelle needs a running PISA server (github.com/albertqjiang/Portal-to-ISAbelle) beside an Isabelle "
    "install: start one per port, then pass --pisa-ports, --isabelle-path and --isabelle-workdir."
)
SEP = "<apply to top level state>"
ERRORS = ("Step error", "Unknown error", "Didn't find top level state")
# PISA waits for a step at most 10 s (`Await.result` in `PisaOS.step`) and then answers this, but
# the step goes on running inside Isabelle: the session must be replaced, not reused
PISA_TIMEOUT = "Futures timed out"
EXIT_TIMEOUT = 10.0  # seconds for PISA's `exit` (destroys the session's Isabelle process)


# --------------------------------------------------------------------------- wire format


def encode_string_message(text: str) -> bytes:
    """A proto3 message whose only field (number 1) is a string."""
    data = text.encode()
    length = len(data)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return b"\x0a" + bytes(varint) + data if data else b""


def decode_string_message(data: bytes) -> str:
    """Field 1 of a proto3 message of string fields; other fields are skipped."""
    i, out = 0, ""
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, i = _varint(data, i)
            if number == 1:
                out = data[i : i + length].decode(errors="replace")
            i += length
        elif wire == 0:
            _, i = _varint(data, i)
        else:
            raise ValueError(f"unexpected wire type {wire} in a PISA message")
    return out


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


class PisaSession:
    """One gRPC channel to a PISA server."""

    METHODS = ("InitialiseIsabelle", "IsabelleWorkingDirectory", "IsabelleContext", "IsabelleCommand")

    def __init__(self, address: str) -> None:
        try:
            import grpc
            import grpc.aio
        except ImportError as exc:
            raise EnvSetupError(f"--env isabelle needs grpcio: pip install 'prover[isabelle]' ({exc})") from exc
        self._grpc = grpc
        self.address = address
        options = [("grpc.max_send_message_length", 1 << 24), ("grpc.max_receive_message_length", 1 << 24)]
        self.channel = grpc.aio.insecure_channel(address, options=options)
        self._calls = {
            name: self.channel.unary_unary(
                f"/server.Server/{name}",
                request_serializer=encode_string_message,
                response_deserializer=decode_string_message,
            )
            for name in self.METHODS
        }

    async def call(self, method: str, text: str, timeout: float | None) -> str:
        grpc = self._grpc
        try:
            return await self._calls[method](text, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise asyncio.TimeoutError(f"PISA {method} timed out") from exc
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                raise ProcessDied(f"no PISA server at {self.address}: {exc.details()}") from exc
            raise ProcessDied(f"PISA {method} failed: {exc.code().name} {exc.details()}") from exc

    async def command(self, text: str, timeout: float | None) -> str:
        return await self.call("IsabelleCommand", text, timeout)

    async def close(self) -> None:
        await self.channel.close()


# --------------------------------------------------------------------------- the pool


@dataclass(frozen=True, slots=True)
class IsabelleConfig:
    """PISA servers already running on `ports`; theories are written into `workdir`."""

    ports: tuple[int, ...] = (9000,)
    host: str = "localhost"
    isabelle_path: Path = Path("~/Isabelle2022").expanduser()
    workdir: Path | None = None
    max_restarts_in_a_row: int = 20
    start_timeout: float = 600.0
    policy: TacticPolicy = field(default_factory=TacticPolicy)
    # a PISA server used only by `verify` (never for search): checks stay warm and independent
    verify_port: int | None = None
    # a local PISA server's memory (with its Isabelle) is sampled while a step runs; past the cap
    # the step fails and the session is re-initialised (the server is not ours to kill)
    memory_limit_mb: int | None = None


class _Slot(Slot):
    def __init__(self, index: int, port: int) -> None:
        super().__init__(index)
        self.port = port
        self.session: PisaSession | None = None
        self.header: str | None = None  # the theory context the session has open
        self.counter = 0
        self.known: dict[tuple[Theorem, tuple[str, ...]], int] = {}
        self.server_pid: int | None = None  # the local PISA server, found by its port
        # PISA holds an Isabelle process for us (opened with `IsabelleContext`, ended with `exit`):
        # not cleared by `reset`, so the next context ends it first instead of leaking it
        self.isabelle_open = False

    def reset(self) -> None:
        self.header = None
        self.known.clear()

    def new_name(self) -> int:
        self.counter += 1
        return self.counter


def _name(ref: int) -> str:
    return f"s{ref}"


class PisaIsabelle(ProcessPool[_Slot]):
    """`ProofEnv` over PISA servers, one slot per port."""

    language: Language = "isabelle"
    name = "PISA server"
    setup_hint = SETUP_HINT

    def __init__(self, config: IsabelleConfig = IsabelleConfig()) -> None:
        super().__init__([_Slot(i, port) for i, port in enumerate(config.ports)], config.max_restarts_in_a_row)
        self.config = config
        if config.verify_port is not None and config.verify_port in config.ports:
            raise ValueError(
                f"--pisa-verify-port {config.verify_port} is also a search port: give it a server of its own"
            )
        self._verifier = None if config.verify_port is None else _Slot(-1, config.verify_port)

    def _theory_file(self, header: str) -> Path:
        """A theory holding just the header, in the working directory PISA reads from."""
        if self.config.workdir is None:
            raise EnvSetupError(f"--isabelle-workdir is needed. {SETUP_HINT}")
        text = header.rstrip() + "\n\nend\n"
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        name = f"Prover_{digest}"
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("theory "):
                lines[i] = f"theory {name}"
                break
        else:
            raise TheoremStartError("the Isabelle header has no `theory NAME imports ... begin`")
        path = self.config.workdir / f"{name}.thy"
        if not path.exists():
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    async def _ensure_process(self, slot: _Slot) -> PisaSession:
        if slot.session is None:
            slot.session = PisaSession(f"{self.config.host}:{slot.port}")
        return slot.session

    async def _open_context(self, slot: _Slot, header: str) -> PisaSession:
        """Make `header` the session's theory context, with a fresh `default` state."""
        session = await self._ensure_process(slot)
        if slot.header == header:
            return session
        timeout = self.config.start_timeout
        # every `IsabelleContext` starts a new Isabelle in PISA and forgets the old one, which
        # would live on (with whatever step it was still running): end it first
        await self._end_isabelle(slot)
        await session.call("InitialiseIsabelle", str(self.config.isabelle_path), timeout)
        await session.call("IsabelleWorkingDirectory", str(self.config.workdir), timeout)
        slot.isabelle_open = True
        await session.call("IsabelleContext", str(self._theory_file(header)), timeout)
        await session.command("<proceed before> end", timeout)
        await session.command("<initialise>", timeout)
        # every state named before is gone: ids of the previous context must not be trusted
        slot.generation += 1
        slot.header = header
        slot.known.clear()
        return session

    async def _end_isabelle(self, slot: _Slot) -> None:
        """Best effort: PISA's `exit` destroys the Isabelle process it holds for this slot."""
        if not slot.isabelle_open or slot.session is None:
            return
        slot.isabelle_open = False
        try:
            await slot.session.command("exit", EXIT_TIMEOUT)
        except (ProcessDied, asyncio.TimeoutError) as exc:
            log.warning("PISA on port %d did not end its Isabelle: %s", slot.port, exc)

    async def _apply(self, slot: _Slot, old: str, step: str, timeout: float | None) -> tuple[int, str]:
        """(new state id, answer text) of running `step` on the state named `old`.

        PISA's own timeout answer raises `asyncio.TimeoutError`: the step still runs inside
        Isabelle, so every caller must replace the session (the pool restarts the slot, the
        verifier drops it), never read the answer as an ordinary failure."""
        session = await self._ensure_process(slot)
        ref = slot.new_name()
        request = session.command(f"{SEP} {old} {SEP} {step} {SEP} {_name(ref)}", timeout)
        pid = self._server_pid(slot)
        if pid is None or self.config.memory_limit_mb is None:
            answer = await request
        else:
            answer = await capped(request, pid, self.config.memory_limit_mb, f"the PISA server on port {slot.port}")
        if answer.startswith(ERRORS) and PISA_TIMEOUT in answer:
            raise asyncio.TimeoutError(answer)
        return ref, answer

    def _server_pid(self, slot: _Slot) -> int | None:
        if self.config.memory_limit_mb is None or self.config.host not in ("localhost", "127.0.0.1", "::1"):
            return None
        import psutil

        if slot.server_pid is None or not psutil.pid_exists(slot.server_pid):
            slot.server_pid = listening_pid(slot.port)
            if slot.server_pid is None:
                log.warning("no local process listens on port %d: its memory is not capped", slot.port)
        return slot.server_pid

    async def _open(self, slot: _Slot, theorem: Theorem) -> tuple[int, tuple[str, ...]]:
        await self._open_context(slot, theorem.header)
        ref, answer = await self._apply(slot, "default", theorem.statement, self.config.start_timeout)
        if answer.startswith(ERRORS):
            raise TheoremStartError(f"{theorem.name}: the statement was rejected: {answer}")
        slot.known[(theorem, ())] = ref
        return ref, (answer.strip(),)

    def _affinity(self, slot: _Slot, handle: Handle) -> int:
        if handle.slot == slot.index and handle.generation == slot.generation:
            return 2
        if slot.header == handle.theorem.header:
            return 2 if (handle.theorem, handle.path) in slot.known else 1
        return 0

    async def _resolve(self, slot: _Slot, handle: Handle, timeout: float) -> int:
        if handle.slot == slot.index and handle.generation == slot.generation:
            return handle.ref
        key = (handle.theorem, handle.path)
        if key in slot.known:
            return slot.known[key]
        ref, _ = await self._open(slot, handle.theorem)
        current_usage().replays += len(handle.path)
        for tactic in handle.path:
            ref, answer = await self._apply(slot, _name(ref), tactic, timeout)
            if answer.startswith(ERRORS):
                raise ProcessDied(f"replaying {tactic!r} failed: {answer}")
        slot.known[key] = ref
        return ref

    def _check(self, tactic: str) -> str | None:
        return check_isabelle_tactic(tactic, self.config.policy)

    async def _prepare(self, slot: _Slot, handle: Handle) -> None:
        await self._open_context(slot, handle.theorem.header)  # slow (Isabelle loads the theory): no deadline

    async def _step(self, slot: _Slot, handle: Handle, tactic: str, timeout: float) -> TacticResult:
        await self._open_context(slot, handle.theorem.header)
        old = await self._resolve(slot, handle, timeout)
        ref, answer = await self._apply(slot, _name(old), tactic, timeout)
        if answer.startswith(ERRORS):
            return Failed(answer)
        session = await self._ensure_process(slot)
        finished = await session.command(f"<is finished> {_name(ref)}", timeout)
        if finished.strip() == "true":
            return Proved("proof level 0")
        return Progress(ProofState((answer.strip(),), handle.child(slot.generation, ref, tactic)))

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        steps = "".join(f"  {step}\n" for step in proof)
        return f"{theorem.header_block}{theorem.statement.rstrip()}\n{steps}\nend\n"

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        """Re-initialise a session and run statement + proof as one text; finished means proved."""
        for step in proof:
            if (reason := self._check(step)) is not None:
                return Verdict(False, reason=f"rejected step {step!r}: {reason}")
        text = theorem.statement.rstrip() + "\n" + "\n".join(proof)
        started = time.perf_counter()
        try:
            if self._verifier is not None:
                return await self._verify_in(self._verifier, theorem, text, fresh=False)
            return await self._verify_in(self._slots[0], theorem, text, fresh=True)
        finally:
            current_usage().verify_s += time.perf_counter() - started

    async def _verify_in(self, slot: _Slot, theorem: Theorem, text: str, fresh: bool) -> Verdict:
        """`fresh`: a new session first (a search slot); else the verifier's warm context for the header."""
        async with self._using(slot):
            try:
                if fresh:  # every named state of this slot is dropped (searches replay theirs)
                    await self._drop_session(slot)
                await self._open_context(slot, theorem.header)
                ref, answer = await self._apply(slot, "default", text, self.config.start_timeout)
                if answer.startswith(ERRORS):
                    return Verdict(False, (answer,), reason="Isabelle rejected the proof")
                session = await self._ensure_process(slot)
                finished = await session.command(f"<is finished> {_name(ref)}", self.config.start_timeout)
                if not fresh:  # the warm verifier keeps only `default`: PISA frees named states on `<delete>`
                    await session.command(f"<delete> {_name(ref)}", self.config.start_timeout)
            except (ProcessDied, asyncio.TimeoutError) as exc:
                await self._drop_session(slot)  # nothing is trusted from a checker that failed
                return Verdict(False, reason=f"verification did not complete: {exc}")
            except asyncio.CancelledError:
                await self._drop_session(slot)  # its answer in flight would be read by the next check
                raise
        if finished.strip() != "true":
            return Verdict(False, (answer,), reason="the proof leaves goals open")
        return Verdict(True)

    async def check_file(self, text: str) -> list[TheoremCheck]:
        raise EnvSetupError("prover check does not support Isabelle theories yet")

    async def close(self) -> None:
        for slot in [*self._slots, *([self._verifier] if self._verifier else [])]:
            await self._end_isabelle(slot)
            if slot.session is not None:
                await slot.session.close()
                slot.session = None


def parse_ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"--pisa-ports must be comma-separated numbers, got {text!r}") from exc
    if not ports:
        raise ValueError("--pisa-ports is empty")
    return ports
