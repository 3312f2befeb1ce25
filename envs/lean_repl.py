"""Lean 4 through the Lean REPL (github.com/leanprover-community/repl).

Protocol (checked against the REPL's source at tag v4.32.0 and its recorded test output):
- a request is one line of JSON followed by a blank line; the REPL answers with one
  pretty-printed JSON object followed by a blank line;
- `{"cmd", "env"?}` elaborates a command; errors come back as `messages`, never as a
  protocol error; each `sorry` yields a `proofState`;
- `{"tactic", "proofState"}` runs ONE tactic (more answers "expected end of input"); the answer
  has `goals`, `proofStatus` and maybe `messages`/`sorries`; a bare `{"message"}` is a
  protocol-level error, e.g. a tactic that threw (Lean's heartbeat limit included);
- `unpickleEnvFrom` imports the pickled env's modules and is not guarded: a bad file kills it.

`LeanRepl` is a pool of REPL processes plus a warm verifier process. Contracts:
- a state is trusted only on the slot and process generation that made it; anywhere else (after
  a restart, or on another slot of the pool) its tactic path is replayed, under the caller's
  deadline; each step reads the process and generation once;
- theorems start under a heartbeat limit derived from the tactic timeout, so Lean stops slow
  tactics; the kill is the backstop;
- multi-tactic candidates are sent and rendered as one parenthesised tactic (`tactic_text`);
- a header is elaborated once per process and pickled; a pickle that kills the REPL is dropped;
- processes are recycled between theorems when grown past a threshold above their post-import
  baseline; a memory cap below that baseline is refused;
- `verify` checks whole theorems in command mode in the verifier, never used for search.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.declarations import DeclarationError, declarations, first_declaration
from envs.pool import Handle, ProcessPool, Slot
from envs.process import ChildProcess, MemoryCapExceeded, ProcessDied
from envs.tactic_guard import TacticPolicy, check_lean_tactic
from envs.types import (
    EnvError,
    EnvSetupError,
    Failed,
    Language,
    Progress,
    ProofState,
    Proved,
    ReplayFailed,
    TacticResult,
    Theorem,
    TheoremCheck,
    TheoremStartError,
    TimedOut,
    Verdict,
    current_usage,
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


def with_heartbeat_limit(command: str, max_heartbeats: int | None) -> str:
    """`set_option maxHeartbeats N in COMMAND`: bounds the statement's elaboration, and the
    theorem's tactic requests where the REPL runs them with the options of their context.

    Each tactic request gets a fresh heartbeat count (`CoreM.toIO`). Whether the command's option
    reaches tactic mode depends on `ContextInfo.runCoreM`: current Lean sets the options but leaves
    `Core.Context.maxHeartbeats` at the default 200000, and leanprover-community/repl#69 reports
    tactic mode stopping at 200000 under `maxHeartbeats 0`; there, Lean's default limit stops a
    runaway whatever this prefix says. (A tactic-level `set_option maxHeartbeats N in tac` changes
    only the options, not the running limit, in either case.)
    """
    if max_heartbeats is None:
        return command
    return f"set_option maxHeartbeats {max_heartbeats} in\n{command}"


def _top_level_semicolon(text: str) -> bool:
    depth = 0
    for i, c in enumerate(text):
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth -= 1
        elif c == "-" and text.startswith("--", i):
            return False  # the rest of the line is a comment
        elif c == '"':
            return False  # strings: do not guess, leave the tactic alone
        elif c == ";" and depth == 0 and text[i - 1 : i] != "<" and text[i + 1 : i + 2] != ">":
            return True
    return False


def is_tactic_sequence(tactic: str) -> bool:
    """Whether `tactic` may be more than one tactic (`a; b`, or several lines).

    The REPL's tactic mode parses exactly one tactic and answers "expected end of input" to the
    rest; such candidates are grouped (see `tactic_text`). A multi-line single tactic is grouped
    too, which is harmless: `(tac)` runs `tac`.
    """
    lines = [line for line in tactic.strip().splitlines() if line.strip()]
    return len(lines) > 1 or any(_top_level_semicolon(line) for line in lines)


def tactic_text(tactic: str) -> str:
    """The text sent to tactic mode AND written into the rendered proof, so both see the same tactics.

    A sequence becomes one parenthesised tactic `(t1; t2)` / `(t1⏎ t2)`: lines are dedented
    together and continuation lines indented by one column, so every tactic of the sequence starts
    at the column just after `(`; a closing `)` after a `--` comment goes on its own line.
    """
    if not is_tactic_sequence(tactic):
        return tactic.strip()
    lines = [line.rstrip() for line in tactic.strip("\n").splitlines() if line.strip()]
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    lines = [line[indent:] for line in lines]
    body = "\n ".join(lines)
    return "(" + body + ("\n)" if "--" in lines[-1] else ")")


def render_proof_body(statement: str, tactics: Sequence[str]) -> str:
    s = statement.rstrip()
    if s.endswith(":= by"):
        s = s[: -len("by")].rstrip()
    if not s.endswith(":="):
        s += " :="
    lines = [s + " by"]
    for tactic in tactics:
        lines.extend("  " + line for line in tactic_text(tactic).splitlines())
    return "\n".join(lines) + "\n"


CHECKED_EXAMPLE = "prover_checked_example"


def declared_name(statement: str) -> tuple[str, str]:
    """(statement with a checkable name, that name). `example` gets a fixed name."""
    try:
        decl = first_declaration(statement, "lean4")
    except DeclarationError as exc:
        raise TheoremStartError(str(exc)) from exc
    if decl.name is None:
        keyword_end = decl.keyword + len(decl.kind)
        return statement[: decl.keyword] + f"theorem {CHECKED_EXAMPLE}" + statement[keyword_end:], CHECKED_EXAMPLE
    return statement, decl.name


_SCOPE_RE = re.compile(r"^\s*(namespace|section|end)\b[ \t]*([^\s-]*)", re.M)


def file_declarations(text: str) -> list[tuple[str, int]]:
    """(fully qualified name, 1-based line) of each theorem/lemma, following `namespace ... end`."""
    events: list[tuple[int, str, str, str]] = [
        (m.start(), "scope", m.group(1), m.group(2)) for m in _SCOPE_RE.finditer(text)
    ]
    events += [(d.start, "decl", d.kind, d.name) for d in declarations(text, "lean4") if d.name is not None]
    scopes: list[tuple[str, str]] = []  # (kind, name) of the open namespaces and sections
    out = []
    for start, kind, word, name in sorted(events, key=lambda e: e[0]):
        if kind == "decl":
            prefix = [part for k, n in scopes if k == "namespace" for part in n.split(".")]
            bare = name.removeprefix("_root_.")
            qualified = bare if name.startswith("_root_.") else ".".join([*prefix, bare])
            out.append((qualified, text.count("\n", 0, start) + 1))
        elif word in ("namespace", "section"):
            scopes.append((word, name))
        elif scopes:
            scopes.pop()
    return out


def parse_axioms(messages: Sequence[Message], name: str) -> tuple[str, ...] | None:
    """The axioms `#print axioms NAME` reported for `name`, or None if no report names it.

    Lean prints `'NAME' depends on axioms: [a, b]` or `'NAME' does not depend on any axioms`;
    names may contain `'` (`foo'`), so the report is matched on the requested name, never on
    whatever name comes first.
    """
    depends = f"'{name}' depends on axioms: ["
    for m in messages:
        if f"'{name}' does not depend on any axioms" in m.data:
            return ()
        at = m.data.find(depends)
        if at >= 0:
            listed = m.data[at + len(depends) :]
            close = listed.find("]")
            if close < 0:
                continue
            return tuple(a.strip() for a in listed[:close].replace("\n", " ").split(",") if a.strip())
    return None


HEARTBEATS_EXHAUSTED = "maximum number of heartbeats"
DEFAULT_TACTIC_TIMEOUT = 10.0  # seconds, as the CLI's --tactic-timeout


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


def default_memory_limit_mb(processes: int) -> int:
    """A cap safe on this machine: 80% of RAM shared by the search processes and the verifier."""
    import psutil

    total_mb = psutil.virtual_memory().total >> 20
    return max(512, int(total_mb * 0.8) // (processes + 1))


@dataclass(frozen=True, slots=True)
class LeanReplConfig:
    """How to run the REPL. `cmd` runs in `workspace` (default: `lake exe repl`).

    Heartbeats: every theorem is started under `set_option maxHeartbeats N in`, so that Lean
    itself stops a slow tactic (the answer is `TimedOut`, the process lives on) where the REPL
    honours the option in tactic mode (see `with_heartbeat_limit`: current Lean does not, and
    its default 200000 applies); the kill at the tactic timeout stays as the backstop.
    N is `max_heartbeats` if set (0 = no limit), else the tactic
    timeout times `heartbeats_per_second` (in Lean's unit of 1000 heartbeats), a deliberately low
    rate so that Lean stops the tactic before the kill does. The tactic timeout is
    `tactic_timeout` if set, else the timeout of the first `run_tactic` call (the search's
    `--tactic-timeout`; later calls may pass only what is left of a search's time), else 10 s
    (the CLI's default) before any tactic has run. A theorem keeps the N it was first started
    with, so its replays on other processes run under the same limit as its search did.
    Memory: `memory_limit_mb` caps each process (default: `default_memory_limit_mb`); a process
    is recycled between theorems once it has grown `recycle_fraction` of the way from its
    post-import baseline to the cap; a cap below that baseline is refused (`EnvSetupError`).
    """

    cmd: tuple[str, ...] = ("lake", "exe", "repl")
    workspace: Path | None = None
    processes: int = 1
    memory_limit_mb: int | None = None
    recycle_fraction: float = 0.5
    max_restarts_in_a_row: int = 20  # in a row, without a successful call between them
    header_cache_size: int = 8
    header_timeout: float = 600.0
    start_timeout: float = 300.0
    verify_timeout: float = 600.0
    tactic_timeout: float | None = None
    heartbeats_per_second: int = 10_000
    max_heartbeats: int | None = None
    pickle_headers: bool = True
    policy: TacticPolicy = field(default_factory=TacticPolicy)

    def heartbeat_limit(self, tactic_timeout: float) -> int:
        """maxHeartbeats (thousands) for tactics that must stop within `tactic_timeout` seconds."""
        if self.max_heartbeats is not None:
            return self.max_heartbeats
        return max(1, int((self.tactic_timeout or tactic_timeout) * self.heartbeats_per_second))


class _Slot(Slot):
    """One REPL process of the pool and what it has elaborated."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.header_envs: OrderedDict[str, int] = OrderedDict()
        self.replayed: dict[tuple[Theorem, tuple[str, ...]], int] = {}
        self.baseline_rss = 0  # bytes, measured after the first header of this process

    def reset(self) -> None:
        self.header_envs.clear()
        self.replayed.clear()
        self.baseline_rss = 0


@dataclass
class _Verifier:
    """The warm checking process: whole theorems in command mode from a header env, never search."""

    process: ChildProcess | None = None
    header_envs: dict[str, int] = field(default_factory=dict)
    baseline_rss: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LeanRepl(ProcessPool[_Slot]):
    """`ProofEnv` over a pool of Lean REPL processes, plus one warm verifier process."""

    language: Language = "lean4"
    name = "Lean REPL"
    setup_hint = SETUP_HINT

    def __init__(self, config: LeanReplConfig = LeanReplConfig()) -> None:
        super().__init__([_Slot(i) for i in range(max(1, config.processes))], config.max_restarts_in_a_row)
        self.config = config
        self._pickles: OrderedDict[str, Path] = OrderedDict()
        self._pickle_dir: tempfile.TemporaryDirectory[str] | None = None
        self._verifier = _Verifier()
        self._cap_mb: int | None = config.memory_limit_mb
        self.header_elaborations = 0
        self.recycles = 0  # processes replaced between theorems because they had grown
        # the first run_tactic's timeout: later ones may be what is left of a search's time
        self._tactic_timeout: float | None = None
        self._limits: dict[Theorem, int] = {}  # a theorem's heartbeat limit, the same for its replays

    # ---- process management

    def _workspace(self) -> Path | None:
        return self.config.workspace

    def memory_cap_mb(self) -> int:
        if self._cap_mb is None:
            self._cap_mb = default_memory_limit_mb(len(self._slots))
        return self._cap_mb

    async def _spawn(self) -> ChildProcess:
        child = ChildProcess(self.config.cmd, self._workspace(), SETUP_HINT, memory_limit_mb=self.memory_cap_mb())
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

    def _below_baseline(self, baseline: int) -> str:
        return (
            f"the memory cap of {self.memory_cap_mb()} MiB is below the Lean REPL's post-import baseline"
            + (f" of {baseline >> 20} MiB" if baseline else "")
            + " (imported modules are mapped into memory): raise --memory-limit-mb or run fewer --processes"
        )

    def _refuse_cap_below(self, baseline: int) -> None:
        if baseline > self.memory_cap_mb() << 20:
            raise EnvSetupError(self._below_baseline(baseline))

    def _recycle_threshold(self, baseline: int) -> int:
        cap = self.memory_cap_mb() << 20
        return baseline + int((cap - baseline) * self.config.recycle_fraction)

    async def _check_memory(self, slot: _Slot) -> None:
        """After a step: over the hard cap, restart now (the state is replayed when needed)."""
        if slot.process is None:
            return
        rss = slot.process.rss_bytes()
        cap = self.memory_cap_mb()
        if rss > cap << 20:
            await self._restart(slot, f"memory {rss >> 20} MiB over the {cap} MiB cap")

    async def _recycle_if_grown(self, slot: _Slot) -> None:
        """Between theorems: replace a process that has grown past its threshold (not a restart)."""
        if slot.process is None or not slot.process.alive or not slot.baseline_rss:
            return
        rss = slot.process.rss_bytes()
        if rss > self._recycle_threshold(slot.baseline_rss):
            log.info(
                "recycling %s %d between theorems: %d MiB (post-import baseline %d MiB)",
                self.name,
                slot.index,
                rss >> 20,
                slot.baseline_rss >> 20,
            )
            self.recycles += 1
            await self._drop_session(slot)

    # ---- headers

    def _pickle_path(self, header: str) -> Path:
        if self._pickle_dir is None:
            self._pickle_dir = tempfile.TemporaryDirectory(prefix="prover-lean-env-")
        digest = hashlib.sha256(header.encode()).hexdigest()[:16]
        return Path(self._pickle_dir.name) / f"header-{digest}.olean"

    def _forget_pickle(self, header: str) -> None:
        path = self._pickles.pop(header, None)
        if path is not None:
            path.unlink(missing_ok=True)

    async def _header_env(self, slot: _Slot, child: ChildProcess, header: str) -> int | None:
        """The env id of `header` in `child` (the slot's current process), elaborated at most once.

        A pickled header is unpickled instead; the real REPL does not catch a failed unpickle and
        dies, so a death here forgets the pickle before it propagates: the retry elaborates the
        header once, and no pickle can cause a crash loop.
        """
        if not header.strip():
            return None
        if header in slot.header_envs:
            slot.header_envs.move_to_end(header)
            return slot.header_envs[header]
        env: int | None = None
        pickle = self._pickles.get(header)
        if pickle is not None and not pickle.exists():
            self._forget_pickle(header)
        elif pickle is not None:
            try:
                reply = parse_reply(
                    await self._request(child, {"unpickleEnvFrom": str(pickle)}, self.config.header_timeout)
                )
            except ProcessDied:
                log.warning("the REPL died unpickling the header environment; dropping the pickle")
                self._forget_pickle(header)
                raise
            if isinstance(reply, CommandReply) and not reply.errors:
                env = reply.env
            else:
                log.warning("could not unpickle the header environment; elaborating it again")
                self._forget_pickle(header)
        if env is None:
            self.header_elaborations += 1
            try:
                reply = parse_reply(await self._request(child, {"cmd": header}, self.config.header_timeout))
            except MemoryCapExceeded as exc:
                if not slot.baseline_rss:  # a fresh process cannot even import the header under the cap
                    raise EnvSetupError(f"{self._below_baseline(child.rss_bytes())} ({exc})") from exc
                raise
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
        if not slot.baseline_rss:
            slot.baseline_rss = child.rss_bytes()
            self._refuse_cap_below(slot.baseline_rss)
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

    async def _start_in(
        self, slot: _Slot, child: ChildProcess, theorem: Theorem, timeout: float | None = None
    ) -> tuple[int, str]:
        """Start `theorem` in `child` under the heartbeat limit: (proof state id, goal)."""
        env = await self._header_env(slot, child, theorem.header)
        limit = self._limits.get(theorem)
        if limit is None:
            limit = self.config.heartbeat_limit(self._tactic_timeout or DEFAULT_TACTIC_TIMEOUT)
            self._limits[theorem] = limit
        command = with_heartbeat_limit(statement_with_sorry(theorem.statement), limit)
        request: dict[str, Any] = {"cmd": command}
        if env is not None:
            request["env"] = env
        seconds = self.config.start_timeout if timeout is None else min(timeout, self.config.start_timeout)
        reply = parse_reply(await self._request(child, request, seconds))
        if isinstance(reply, CommandReply) and any(HEARTBEATS_EXHAUSTED in m.data for m in reply.errors):
            # the limit meant for tactics was too tight for the statement itself: start it as given
            log.info(
                "%s: the statement needs more than %d heartbeats; starting it without a limit", theorem.name, limit
            )
            request["cmd"] = statement_with_sorry(theorem.statement)
            reply = parse_reply(await self._request(child, request, seconds))
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
        # between theorems is the one place a grown process is replaced: no state of it is in use here
        await self._recycle_if_grown(slot)
        child = await self._ensure_process(slot)
        ps, goal = await self._start_in(slot, child, theorem)
        if slot.process is not child:
            raise ProcessDied("the REPL was replaced while the theorem was starting")
        if not slot.baseline_rss:  # no header to import: the baseline is the process as it starts
            slot.baseline_rss = child.rss_bytes()
        return ps, (goal,)

    def _affinity(self, slot: _Slot, handle: Handle) -> int:
        if handle.slot == slot.index and handle.generation == slot.generation:
            return 2
        return 1 if (handle.theorem, handle.path) in slot.replayed else 0

    async def _prepare(self, slot: _Slot, handle: Handle) -> None:
        # importing the header (Mathlib: seconds or minutes) is starting a theorem, not a tactic:
        # under the tactic's deadline it would be killed, restarted and killed again
        child = await self._ensure_process(slot)
        await self._header_env(slot, child, handle.theorem.header)

    async def _resolve(self, slot: _Slot, child: ChildProcess, handle: Handle, deadline: float) -> int:
        """The proof-state id of `handle` in `child` (the slot's current process), replaying if needed.

        `handle.ref` is trusted only when the state was made by this very slot and process;
        otherwise its path is replayed here (charged to `current_usage().replays`), every request
        under the caller's deadline.
        """
        if handle.slot == slot.index and handle.generation == slot.generation:
            return handle.ref
        key = (handle.theorem, handle.path)
        if key in slot.replayed:
            return slot.replayed[key]
        loop = asyncio.get_running_loop()
        done = next(
            (n for n in range(len(handle.path), 0, -1) if (handle.theorem, handle.path[:n]) in slot.replayed), 0
        )
        if done:
            ps = slot.replayed[(handle.theorem, handle.path[:done])]
        else:
            ps, _ = await self._start_in(slot, child, handle.theorem, max(0.0, deadline - loop.time()))
        for i in range(done, len(handle.path)):
            tactic = handle.path[i]
            current_usage().replays += 1
            raw = await self._request(
                child, {"tactic": tactic_text(tactic), "proofState": ps}, max(0.0, deadline - loop.time())
            )
            reply = parse_reply(raw)
            outcome = tactic_outcome(reply) if isinstance(reply, (TacticReply, ProtocolError)) else reply
            if not isinstance(outcome, TacticReply):
                raise ReplayFailed(
                    f"replaying step {i + 1} of {handle.theorem.name} gave a different result: {outcome}"
                )
            ps = outcome.proof_state
            slot.replayed[(handle.theorem, handle.path[: i + 1])] = ps
        slot.replayed[key] = ps
        return ps

    async def _step(self, slot: _Slot, handle: Handle, tactic: str, timeout: float) -> TacticResult:
        # The process and its generation are read ONCE: every request of this step goes to this
        # child, and a death midway raises ProcessDied (the pool restarts and retries the whole
        # step) instead of sending ids of the dead process to its successor.
        if self._tactic_timeout is None:
            self._tactic_timeout = timeout
        child = await self._ensure_process(slot)
        generation = slot.generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        ps = await self._resolve(slot, child, handle, deadline)
        raw = await self._request(
            child, {"tactic": tactic_text(tactic), "proofState": ps}, max(0.0, deadline - loop.time())
        )
        if slot.generation != generation or slot.process is not child:
            raise ProcessDied("the REPL was replaced during the step")
        reply = parse_reply(raw)
        if isinstance(reply, CommandReply):
            raise EnvError(f"the REPL answered a tactic with a command reply: {raw}")
        if _out_of_heartbeats(reply):
            return TimedOut(timeout)  # Lean stopped it; the process is fine
        outcome = tactic_outcome(reply)
        await self._check_memory(slot)
        if isinstance(outcome, TacticReply):
            made = Handle(slot.index, generation, outcome.proof_state, handle.theorem, (*handle.path, tactic))
            return Progress(ProofState(outcome.goals, made))
        return outcome

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        return theorem.header_block + render_proof_body(theorem.statement, proof)

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        """Check header + statement + proof as one command in the warm verifier, then its axioms.

        The verifier is a REPL process of its own, never used for search: each check starts from
        the header's env (envs are immutable snapshots), so checks cannot see each other, and
        the header is imported once per verifier process, not once per check.
        """
        for tactic in proof:
            if (reason := check_lean_tactic(tactic, self.config.policy)) is not None:
                return Verdict(False, reason=f"rejected tactic {tactic!r}: {reason}")
        statement, name = declared_name(theorem.statement)
        started = time.perf_counter()
        try:
            checked = await self._verify_in_warm_process(theorem.header, render_proof_body(statement, proof), name)
        finally:
            current_usage().verify_s += time.perf_counter() - started
        return checked.verdict(name)

    async def _verify_in_warm_process(self, header: str, body: str, name: str) -> SourceCheck:
        v = self._verifier
        async with v.lock:
            try:
                if v.process is not None and v.process.alive and v.baseline_rss:
                    if v.process.rss_bytes() > self._recycle_threshold(v.baseline_rss):
                        await self._drop_verifier()
                if v.process is None or not v.process.alive:
                    await self._drop_verifier()
                    v.process = await self._spawn()
                child = v.process
                env: int | None = None
                if header.strip():
                    if header not in v.header_envs:
                        reply = parse_reply(await self._request(child, {"cmd": header}, self.config.header_timeout))
                        if not isinstance(reply, CommandReply):
                            return SourceCheck(error=f"the header was rejected: {reply}")
                        if reply.errors:
                            return SourceCheck(reply.messages, error="the header has errors")
                        v.header_envs[header] = reply.env
                        if not v.baseline_rss:
                            v.baseline_rss = child.rss_bytes()
                    env = v.header_envs[header]
                return await self._check_command(child, env, body, [name], self.config.verify_timeout)
            except asyncio.CancelledError:
                await self._drop_verifier()  # its answer in flight would be read by the next check
                raise
            except (asyncio.TimeoutError, ProcessDied, EnvError) as exc:
                await self._drop_verifier()  # nothing is accepted from a checker that failed
                what = "timed out" if isinstance(exc, asyncio.TimeoutError) else f"crashed: {exc}"
                return SourceCheck(error=f"the checking REPL {what}")

    async def _drop_verifier(self) -> None:
        v = self._verifier
        if v.process is not None:
            await v.process.kill()
        v.process = None
        v.header_envs.clear()
        v.baseline_rss = 0

    async def _check_command(
        self, child: ChildProcess, env: int | None, body: str, names: Sequence[str], timeout: float
    ) -> SourceCheck:
        request: dict[str, Any] = {"cmd": body}
        if env is not None:
            request["env"] = env
        reply = parse_reply(await self._request(child, request, timeout))
        if not isinstance(reply, CommandReply):
            return SourceCheck(error=f"the REPL rejected the source: {reply}")
        axioms: dict[str, tuple[str, ...] | None] = {}
        for name in names:
            query = {"cmd": f"#print axioms {name}", "env": reply.env}
            ax_reply = parse_reply(await self._request(child, query, self.config.start_timeout))
            axioms[name] = parse_axioms(ax_reply.messages, name) if isinstance(ax_reply, CommandReply) else None
        return SourceCheck(reply.messages, axioms, sorries=bool(reply.sorries))

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
            return await self._check_command(child, env, body, names, self.config.start_timeout)
        except asyncio.TimeoutError:
            return SourceCheck(error="the check timed out")
        except ProcessDied as exc:  # nothing is accepted from a checker that died
            return SourceCheck(error=f"the checking REPL crashed: {exc}")
        finally:
            await child.kill()

    async def close(self) -> None:
        await super().close()
        await self._drop_verifier()
        if self._pickle_dir is not None:
            with contextlib.suppress(OSError):
                self._pickle_dir.cleanup()
            self._pickle_dir = None
            self._pickles.clear()


def _out_of_heartbeats(reply: TacticReply | ProtocolError) -> bool:
    """Lean's own stop: the heartbeat limit was reached (thrown, or logged by error recovery)."""
    if isinstance(reply, ProtocolError):
        return HEARTBEATS_EXHAUSTED in reply.message
    return any(m.severity == "error" and HEARTBEATS_EXHAUSTED in m.data for m in reply.messages)
