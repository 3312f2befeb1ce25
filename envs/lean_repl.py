"""Lean 4 through the Lean REPL (github.com/leanprover-community/repl).

Protocol (checked against the REPL's own recorded test output, Lean 4.33):
- a request is one line of JSON followed by a blank line; the REPL answers with one
  pretty-printed JSON object followed by a blank line;
- `{"cmd", "env"?}` elaborates a command; errors come back as `messages`, never as a
  protocol error; each `sorry` yields a `proofState`;
- `{"tactic", "proofState"}` runs a tactic; the answer has `goals`, `proofStatus`
  and maybe `messages`/`sorries`; a bare `{"message"}` is a protocol-level error.

`LeanRepl` is a pool of REPL processes. Each state remembers its tactic path from
the theorem's root, so after a restart (timeout, crash, memory cap) it is replayed.
A header (imports) is elaborated once per process and pickled, so a restart
unpickles it instead of re-importing from source.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.pool import Handle, ProcessPool, Slot
from envs.process import ChildProcess, ProcessDied
from envs.tactic_guard import TacticPolicy, check_lean_tactic
from envs.types import (
    EnvError,
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
)

log = logging.getLogger(__name__)

STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
SETUP_HINT = (
    "The Lean REPL is needed: install elan (https://github.com/leanprover/elan), then run "
    "`prover setup lean` to build the workspace, or pass --repl-cmd with a command that "
    "speaks the Lean REPL protocol."
)


# --------------------------------------------------------------------------- wire types


@dataclass(frozen=True, slots=True)
class Message:
    severity: str
    data: str
    line: int = 0
    column: int = 0

    def render(self) -> str:
        return f"{self.line}:{self.column}: {self.severity}: {self.data}"


@dataclass(frozen=True, slots=True)
class Sorry:
    proof_state: int
    goal: str


@dataclass(frozen=True, slots=True)
class CommandReply:
    env: int
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.severity == "error")


@dataclass(frozen=True, slots=True)
class TacticReply:
    proof_state: int
    goals: tuple[str, ...]
    proof_status: str | None
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The REPL's bare `{"message": ...}`: unknown env/state, tactic parse error, ..."""

    message: str


def _messages(raw: dict[str, Any]) -> tuple[Message, ...]:
    out = []
    for m in raw.get("messages", []):
        pos = m.get("pos") or {}
        out.append(Message(m.get("severity", "error"), m.get("data", ""), pos.get("line", 0), pos.get("column", 0)))
    return tuple(out)


def _sorries(raw: dict[str, Any]) -> tuple[Sorry, ...]:
    return tuple(Sorry(s["proofState"], s.get("goal", "")) for s in raw.get("sorries", []))


def parse_reply(raw: Any) -> CommandReply | TacticReply | ProtocolError:
    """The one place that reads REPL JSON; everything past it sees typed values."""
    if not isinstance(raw, dict):
        raise EnvError(f"the REPL answered with a non-object: {raw!r:.200}")
    if "proofState" in raw and "goals" in raw:
        return TacticReply(
            proof_state=int(raw["proofState"]),
            goals=tuple(raw.get("goals", [])),
            proof_status=raw.get("proofStatus"),
            messages=_messages(raw),
            sorries=_sorries(raw),
        )
    if "env" in raw:
        return CommandReply(env=int(raw["env"]), messages=_messages(raw), sorries=_sorries(raw))
    if "message" in raw:
        return ProtocolError(str(raw["message"]))
    raise EnvError(f"unrecognised REPL answer: {json.dumps(raw)[:300]}")


def tactic_outcome(reply: TacticReply | ProtocolError) -> TacticResult | TacticReply:
    """Classify a tactic answer. Returns the reply itself when it is real progress."""
    if isinstance(reply, ProtocolError):
        return Failed(reply.message)
    errors = [m.data for m in reply.messages if m.severity == "error"]
    if errors:
        return Failed("\n".join(errors))
    status = reply.proof_status or ""
    if status.startswith("Error"):
        return Failed(status)
    if reply.sorries or "contains sorry" in status:
        return Failed("the tactic left a `sorry`")
    if not reply.goals:
        if status == "Completed":
            return Proved(status)
        if reply.proof_status is None:
            return Failed("no goals left, but the REPL reported no proofStatus (a REPL newer than 2024 is needed)")
        return Failed(f"no goals left but the proof is not complete: {status}")
    return reply


def encode_request(request: dict[str, Any]) -> bytes:
    # One line: json.dumps escapes newlines inside strings, which the REPL's line
    # joiner would otherwise drop.
    return (json.dumps(request, ensure_ascii=False) + "\n\n").encode()


# --------------------------------------------------------------------------- rendering


def statement_with_sorry(statement: str) -> str:
    s = statement.rstrip()
    if s.endswith(":= by"):
        return s + " sorry"
    if s.endswith(":="):
        return s + " by sorry"
    return s + " := by sorry"


def render_proof_body(statement: str, tactics: Sequence[str]) -> str:
    s = statement.rstrip()
    if s.endswith(":= by"):
        s = s[: -len("by")].rstrip()
    if not s.endswith(":="):
        s += " :="
    lines = [s + " by"]
    for tactic in tactics:
        lines.extend("  " + line for line in tactic.splitlines())
    return "\n".join(lines) + "\n"


_DECL_RE = re.compile(
    r"^\s*(?:@\[[^\]]*\]\s*)?(?:private\s+|protected\s+)?(theorem|lemma|example)\b\s*([^\s:({\[]*)", re.M
)


def declared_name(statement: str) -> tuple[str, str]:
    """(statement with a checkable name, that name). `example` gets a fixed name."""
    m = _DECL_RE.search(statement)
    if m is None:
        raise TheoremStartError(f"cannot find `theorem NAME` in the statement: {statement[:120]!r}")
    if m.group(1) == "example":
        name = "prover_checked_example"
        return statement[: m.start(1)] + f"theorem {name}" + statement[m.end(1) :], name
    return statement, m.group(2)


_SCOPE_RE = re.compile(r"^\s*(namespace|section|end)\b[ \t]*([^\s-]*)", re.M)


def file_declarations(text: str) -> list[tuple[str, int]]:
    """(fully qualified name, 1-based line) of each theorem/lemma, following `namespace ... end`."""
    events = [(m.start(), "scope", m) for m in _SCOPE_RE.finditer(text)]
    events += [(m.start(), "decl", m) for m in _DECL_RE.finditer(text) if m.group(1) != "example"]
    scopes: list[tuple[str, str]] = []  # (kind, name) of the open namespaces and sections
    out = []
    for start, kind, m in sorted(events, key=lambda e: e[0]):
        if kind == "decl":
            prefix = [part for k, name in scopes if k == "namespace" for part in name.split(".")]
            name = m.group(2).removeprefix("_root_.")
            qualified = name if m.group(2).startswith("_root_.") else ".".join([*prefix, name])
            out.append((qualified, text.count("\n", 0, start) + 1))
        elif m.group(1) in ("namespace", "section"):
            scopes.append((m.group(1), m.group(2)))
        elif scopes:
            scopes.pop()
    return out


_AXIOMS_RE = re.compile(r"'(?P<name>[^']+)' depends on axioms: \[(?P<axioms>[^\]]*)\]")
_NO_AXIOMS_RE = re.compile(r"'(?P<name>[^']+)' does not depend on any axioms")


def parse_axioms(messages: Sequence[Message]) -> tuple[str, ...] | None:
    """Axioms reported by `#print axioms`, or None if no such report is present."""
    for m in messages:
        if _NO_AXIOMS_RE.search(m.data):
            return ()
        if match := _AXIOMS_RE.search(m.data):
            return tuple(a.strip() for a in match.group("axioms").replace("\n", " ").split(",") if a.strip())
    return None


@dataclass(frozen=True, slots=True)
class SourceCheck:
    """What one fresh elaboration of a source said: messages and each theorem's axioms."""

    messages: tuple[Message, ...] = ()
    axioms: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    sorries: bool = False
    error: str = ""

    def verdict(self, name: str, lines: tuple[int, int] | None = None) -> Verdict:
        """Accepted iff no error or sorry (within `lines`, if given) and only standard axioms."""

        def inside(m: Message) -> bool:
            return lines is None or lines[0] <= m.line < lines[1]

        mine = [m for m in self.messages if inside(m) and m.severity in ("error", "warning")]
        rendered = tuple(m.render() for m in mine)
        if self.error:
            return Verdict(False, tuple(m.render() for m in self.messages), reason=self.error)
        if any(m.severity == "error" for m in mine):
            return Verdict(False, rendered, reason="the proof has errors")
        if (self.sorries and lines is None) or any("sorry" in m.data for m in mine if m.severity == "warning"):
            return Verdict(False, rendered, reason="the proof uses sorry")
        axioms = self.axioms.get(name)
        if axioms is None:
            return Verdict(False, rendered, reason=f"could not read the axioms of {name}")
        extra = sorted(set(axioms) - STANDARD_AXIOMS)
        if extra:
            return Verdict(False, rendered, axioms, reason="non-standard axioms: " + ", ".join(extra))
        return Verdict(True, rendered, axioms)


# --------------------------------------------------------------------------- the pool


@dataclass(frozen=True, slots=True)
class LeanReplConfig:
    """How to run the REPL. `cmd` runs in `workspace` (default: `lake exe repl`)."""

    cmd: tuple[str, ...] = ("lake", "exe", "repl")
    workspace: Path | None = None
    processes: int = 1
    memory_limit_mb: int | None = None
    max_restarts: int = 20  # in a row, without a successful call between them
    header_cache_size: int = 8
    header_timeout: float = 600.0
    start_timeout: float = 300.0
    pickle_headers: bool = True
    policy: TacticPolicy = field(default_factory=TacticPolicy)


class _Slot(Slot):
    """One REPL process of the pool and what it has elaborated."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.header_envs: OrderedDict[str, int] = OrderedDict()
        self.replayed: dict[tuple[Theorem, tuple[str, ...]], int] = {}

    def reset(self) -> None:
        self.header_envs.clear()
        self.replayed.clear()


class LeanRepl(ProcessPool[_Slot]):
    """`ProofEnv` over a pool of Lean REPL processes."""

    language: Language = "lean4"
    name = "Lean REPL"
    setup_hint = SETUP_HINT

    def __init__(self, config: LeanReplConfig = LeanReplConfig()) -> None:
        super().__init__([_Slot(i) for i in range(max(1, config.processes))], config.max_restarts)
        self.config = config
        self._pickles: OrderedDict[str, Path] = OrderedDict()
        self._pickle_dir: tempfile.TemporaryDirectory[str] | None = None
        self.header_elaborations = 0

    # ---- process management

    def _workspace(self) -> Path | None:
        return self.config.workspace

    async def _spawn(self) -> ChildProcess:
        child = ChildProcess(self.config.cmd, self._workspace(), SETUP_HINT)
        await child.start()
        return child

    async def _request(self, child: ChildProcess, request: dict[str, Any], timeout: float | None) -> Any:
        async def exchange() -> Any:
            await child.write(encode_request(request))
            lines: list[str] = []
            while True:
                line = (await child.readline()).decode(errors="replace")
                if not line.strip():
                    if lines:
                        break
                    continue
                lines.append(line)
            text = "".join(lines)
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise EnvError(f"the REPL printed something that is not JSON: {text[:300]!r}") from exc

        return await asyncio.wait_for(exchange(), timeout)

    async def _ensure_process(self, slot: _Slot) -> ChildProcess:
        if slot.process is None or not slot.process.alive:
            if slot.process is not None:
                await self._restart(slot, "the process had exited")
            slot.process = await self._spawn()
        return slot.process

    async def _check_memory(self, slot: _Slot) -> None:
        limit = self.config.memory_limit_mb
        if limit is None or slot.process is None:
            return
        rss = slot.process.rss_bytes()
        if rss > limit * 1024 * 1024:
            await self._restart(slot, f"memory {rss >> 20} MiB over the {limit} MiB cap")

    # ---- headers

    def _pickle_path(self, header: str) -> Path:
        if self._pickle_dir is None:
            self._pickle_dir = tempfile.TemporaryDirectory(prefix="prover-lean-env-")
        digest = hashlib.sha256(header.encode()).hexdigest()[:16]
        return Path(self._pickle_dir.name) / f"header-{digest}.olean"

    async def _header_env(self, slot: _Slot, header: str) -> int | None:
        """The env id of `header` in this slot's process, elaborating it at most once."""
        if not header.strip():
            return None
        child = await self._ensure_process(slot)  # first: a restart here forgets the cached envs
        if header in slot.header_envs:
            slot.header_envs.move_to_end(header)
            return slot.header_envs[header]
        env: int | None = None
        pickle = self._pickles.get(header)
        if pickle is not None and pickle.exists():
            reply = parse_reply(
                await self._request(child, {"unpickleEnvFrom": str(pickle)}, self.config.header_timeout)
            )
            if isinstance(reply, CommandReply) and not reply.errors:
                env = reply.env
            else:
                log.warning("could not unpickle the header environment; elaborating it again")
        if env is None:
            self.header_elaborations += 1
            reply = parse_reply(await self._request(child, {"cmd": header}, self.config.header_timeout))
            if isinstance(reply, ProtocolError):
                raise TheoremStartError(f"the header was rejected: {reply.message}")
            assert isinstance(reply, CommandReply)
            if reply.errors:
                raise TheoremStartError(
                    "the header does not elaborate:\n" + "\n".join(m.render() for m in reply.errors)
                )
            env = reply.env
            if self.config.pickle_headers and header not in self._pickles:
                await self._pickle_header(child, header, env)
        slot.header_envs[header] = env
        while len(slot.header_envs) > self.config.header_cache_size:
            slot.header_envs.popitem(last=False)
        return env

    async def _pickle_header(self, child: ChildProcess, header: str, env: int) -> None:
        path = self._pickle_path(header)
        reply = parse_reply(await self._request(child, {"pickleTo": str(path), "env": env}, self.config.header_timeout))
        if isinstance(reply, CommandReply) and not reply.errors:
            self._pickles[header] = path
            while len(self._pickles) > self.config.header_cache_size:
                _, old = self._pickles.popitem(last=False)
                old.unlink(missing_ok=True)
        else:
            log.warning("pickling the header environment failed: %s", reply)

    # ---- ProofEnv

    async def _start_in(self, slot: _Slot, theorem: Theorem) -> tuple[int, str]:
        env = await self._header_env(slot, theorem.header)
        child = await self._ensure_process(slot)
        request: dict[str, Any] = {"cmd": statement_with_sorry(theorem.statement)}
        if env is not None:
            request["env"] = env
        reply = parse_reply(await self._request(child, request, self.config.start_timeout))
        if isinstance(reply, ProtocolError):
            raise TheoremStartError(f"{theorem.name}: {reply.message}")
        assert isinstance(reply, CommandReply)
        if reply.errors:
            raise TheoremStartError(
                f"{theorem.name}: the statement does not elaborate:\n" + "\n".join(m.render() for m in reply.errors)
            )
        if not reply.sorries:
            raise TheoremStartError(f"{theorem.name}: the REPL returned no proof state for the statement")
        first = reply.sorries[0]
        return first.proof_state, first.goal

    def _check(self, tactic: str) -> str | None:
        return check_lean_tactic(tactic, self.config.policy)

    async def _open(self, slot: _Slot, theorem: Theorem) -> tuple[int, tuple[str, ...]]:
        # no memory check here: a restart now would orphan the id; the next step checks
        ps, goal = await self._start_in(slot, theorem)
        return ps, (goal,)

    async def _resolve(self, slot: _Slot, handle: Handle, timeout: float) -> int:
        """The proof-state id of `handle` in the slot's current process, replaying if needed."""
        if handle.generation == slot.generation:
            return handle.ref
        key = (handle.theorem, handle.path)
        if key in slot.replayed:
            return slot.replayed[key]
        ps, _ = await self._start_in(slot, handle.theorem)
        for i, tactic in enumerate(handle.path):
            child = await self._ensure_process(slot)
            raw = await self._request(child, {"tactic": tactic, "proofState": ps}, timeout)
            reply = parse_reply(raw)
            outcome = tactic_outcome(reply) if isinstance(reply, (TacticReply, ProtocolError)) else reply
            if not isinstance(outcome, TacticReply):
                raise EnvError(f"replaying step {i + 1} of {handle.theorem.name} gave a different result: {outcome}")
            ps = outcome.proof_state
            slot.replayed[(handle.theorem, handle.path[: i + 1])] = ps
        slot.replayed[key] = ps
        return ps

    async def _step(self, slot: _Slot, handle: Handle, tactic: str, timeout: float) -> TacticResult:
        ps = await self._resolve(slot, handle, timeout)
        child = await self._ensure_process(slot)
        raw = await self._request(child, {"tactic": tactic, "proofState": ps}, timeout)
        generation = slot.generation  # the new proof state lives in this process
        reply = parse_reply(raw)
        if isinstance(reply, CommandReply):
            raise EnvError(f"the REPL answered a tactic with a command reply: {raw}")
        outcome = tactic_outcome(reply)
        await self._check_memory(slot)
        if isinstance(outcome, TacticReply):
            return Progress(ProofState(outcome.goals, handle.child(generation, outcome.proof_state, tactic)))
        return outcome

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        return theorem.header_block + render_proof_body(theorem.statement, proof)

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        """Check header + statement + proof as commands in a fresh process, then its axioms."""
        for tactic in proof:
            if (reason := check_lean_tactic(tactic, self.config.policy)) is not None:
                return Verdict(False, reason=f"rejected tactic {tactic!r}: {reason}")
        statement, name = declared_name(theorem.statement)
        checked = await self.check_source(theorem.header, render_proof_body(statement, proof), [name])
        return checked.verdict(name)

    async def check_file(self, text: str) -> list[TheoremCheck]:
        """Every theorem of a whole file, elaborated once in a fresh process."""
        decls = file_declarations(text)
        checked = await self.check_source("", text, [name for name, _ in decls])
        out = []
        for i, (name, line) in enumerate(decls):
            end = decls[i + 1][1] if i + 1 < len(decls) else 1 << 30
            verdict = checked.verdict(name, lines=(line, end))
            out.append(TheoremCheck(name, verdict))
        return out

    async def check_source(self, header: str, body: str, names: Sequence[str]) -> SourceCheck:
        """Elaborate `body` after `header` in a fresh REPL and read the axioms of `names`."""
        child = await self._spawn()
        try:
            env: int | None = None
            if header.strip():
                reply = parse_reply(await self._request(child, {"cmd": header}, self.config.header_timeout))
                if not isinstance(reply, CommandReply):
                    return SourceCheck(error=f"the header was rejected: {reply}")
                if reply.errors:
                    return SourceCheck(reply.messages, error="the header has errors")
                env = reply.env
            request: dict[str, Any] = {"cmd": body}
            if env is not None:
                request["env"] = env
            reply = parse_reply(await self._request(child, request, self.config.start_timeout))
            if not isinstance(reply, CommandReply):
                return SourceCheck(error=f"the REPL rejected the source: {reply}")
            axioms: dict[str, tuple[str, ...] | None] = {}
            for name in names:
                query = {"cmd": f"#print axioms {name}", "env": reply.env}
                ax_reply = parse_reply(await self._request(child, query, self.config.start_timeout))
                axioms[name] = parse_axioms(ax_reply.messages) if isinstance(ax_reply, CommandReply) else None
            return SourceCheck(reply.messages, axioms, sorries=bool(reply.sorries))
        except asyncio.TimeoutError:
            return SourceCheck(error="the check timed out")
        except ProcessDied as exc:  # nothing is accepted from a checker that died
            return SourceCheck(error=f"the checking REPL crashed: {exc}")
        finally:
            await child.kill()

    async def close(self) -> None:
        await super().close()
        if self._pickle_dir is not None:
            with contextlib.suppress(OSError):
                self._pickle_dir.cleanup()
            self._pickle_dir = None
            self._pickles.clear()
