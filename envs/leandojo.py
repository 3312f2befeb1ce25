"""Lean 4 through LeanDojo (`lean_dojo.Dojo`) on a traced repository.

A theorem is a `LeanDojoTheorem`: a `Theorem` that also says where it lives (repository URL,
commit, file, start position), as LeanDojo Benchmark 4 records it. Contracts:
- one `Dojo` (one Lean process) per theorem, opened by `start`; `run_tactic` calls
  `Dojo.run_tac` on the state's `TacticState`. Its results map to ours: `TacticState` is
  `Progress`, `ProofFinished` is `Proved` (LeanDojo's REPL has already checked that no goal,
  `sorry` or metavariable is left and that the kernel accepts the term), `LeanError` and
  `ProofGivenUp` are `Failed`, `DojoTacticTimeoutError` is `TimedOut`;
- a timed-out or crashed Dojo is closed and reopened; states remember their tactic path from
  the root and are replayed into the new Dojo when used (restarts and replays are charged to
  the caller's `Usage`). A crash loop (more than `max_restarts_in_a_row` in a row) is an `EnvError`;
- at most `processes` Dojos stay open; opening another closes the least recently used idle one;
- `verify` is a fresh check: a new Dojo in command mode at the theorem's line of its file
  elaborates the declaration with the proof, then `#print axioms` (only the standard axioms
  pass). The search's Dojo is never reused for it;
- model output is untrusted: every tactic passes `check_lean_tactic` before it reaches Lean.

`lean_dojo` is imported on first use only: importing it reads `.env`, configures loguru, runs
`git --version` and creates its cache directory (`CACHE_DIR`, default `~/.cache/lean_dojo`).
Its `os.chdir` windows are serialized by `CHDIR_LOCK`, since Dojos open in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import shutil
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from envs.declarations import DeclarationError, find_declaration, first_declaration
from envs.lean_repl import render_proof_body, tactic_text
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

T = TypeVar("T")

STANDARD_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
INSTALL_HINT = "install it with `pip install 'prover[leandojo]'` (lean-dojo 4.20.0, Python 3.10-3.12)"
LEAN_HINT = "install Lean 4 with elan (https://github.com/leanprover/elan): LeanDojo runs `lake env lean`"

# names may end in `'` (`foo'` prints as 'foo''), so the name is the shortest text before the quote
_AXIOMS_RE = re.compile(r"'(?P<name>[^\n]+?)' depends on axioms: \[(?P<axioms>[^\]]*)\]")
_NO_AXIOMS_RE = re.compile(r"'(?P<name>[^\n]+?)' does not depend on any axioms")


@dataclass(frozen=True, slots=True)
class LeanDojoTheorem(Theorem):
    """A theorem of a traced repository: `name` is its fully qualified name.

    `statement` is the declaration up to `:=` when the data carries it (`theorem_statement`);
    otherwise the env reads it from the traced source. `start` is (line, column), 1-based.
    """

    url: str = ""
    commit: str = ""
    file_path: str = ""
    start: tuple[int, int] | None = None
    end: tuple[int, int] | None = None

    @property
    def location(self) -> str:
        return f"{self.url}@{self.commit[:12]}:{self.file_path}"


@dataclass(frozen=True, slots=True)
class LeanDojoConfig:
    processes: int = 1  # Dojos (Lean processes) open at once
    start_timeout: float = 600.0  # opening a Dojo elaborates the file up to the theorem
    max_restarts_in_a_row: int = 20  # in a row, without a successful call between them
    policy: TacticPolicy = field(default_factory=TacticPolicy)


def import_lean_dojo() -> ModuleType:
    """The `lean_dojo` module, or an `EnvSetupError` that says how to install it."""
    try:
        import lean_dojo
    except ImportError as exc:
        raise EnvSetupError(f"--env leandojo needs the lean-dojo package: {INSTALL_HINT} ({exc})") from exc
    except Exception as exc:  # its import runs git and creates directories
        raise EnvSetupError(f"lean_dojo failed to import: {type(exc).__name__}: {exc}") from exc
    _serialize_chdir()
    return lean_dojo


# LeanDojo changes the process's working directory (`os.chdir`) while it spawns Lean in a
# Dojo and while it opens a local repository. We call it from worker threads, so two of those
# at once would spawn Lean in the wrong folder: one process-wide lock serializes those moments
# (only the chdir windows, not Lean's elaboration, so Dojos still open in parallel).
CHDIR_LOCK = threading.RLock()


def _serialize_chdir() -> None:
    for name in ("lean_dojo.interaction.dojo", "lean_dojo.data_extraction.lean"):
        module = sys.modules.get(name)
        original = getattr(module, "working_directory", None)
        if module is None or original is None or getattr(original, "serialized", False):
            continue

        def serialized(path: Any = None, _original: Any = original) -> Any:
            @contextlib.contextmanager
            def inside() -> Iterator[Any]:
                with CHDIR_LOCK, _original(path) as where:
                    yield where

            return inside()

        serialized.serialized = True  # type: ignore[attr-defined]
        module.working_directory = serialized  # type: ignore[attr-defined]


OFFLINE_HINT = " (LeanDojo asks GitHub's API about GitHub repositories: it needs the network)"


def _brief(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence a chatty library logger below ERROR for the duration."""
    log_ = logging.getLogger(logger)
    level = log_.level
    log_.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log_.setLevel(level)


def split_goals(pp: str) -> tuple[str, ...]:
    """The goals of a pretty-printed tactic state (LeanDojo joins them with a blank line)."""
    return tuple(g.strip() for g in pp.split("\n\n") if g.strip())


def parse_axioms(message: str, *names: str) -> tuple[str, ...] | None:
    """Axioms of the LAST `#print axioms` report in `message` about one of `names` (a theorem's
    full name, and the name it was queried by), or None if there is no such report.

    The last, because `#print axioms` answers after everything the proof itself printed: a proof
    that prints a report of its own (`trace "'T' depends on axioms: [propext]"`) cannot stand in
    for the real one. Names are compared exactly: `'Other.foo'` is not a report about `Demo.foo`.
    """
    reports = [
        (m.start(), tuple(a.strip() for a in m.group("axioms").replace("\n", " ").split(",") if a.strip()))
        for m in _AXIOMS_RE.finditer(message)
        if m.group("name") in names
    ]
    reports += [(m.start(), ()) for m in _NO_AXIOMS_RE.finditer(message) if m.group("name") in names]
    return max(reports)[1] if reports else None


def axiom_query_name(full_name: str, head: str) -> str:
    """The name to give `#print axioms` right after `head` was declared.

    The full name, unless it is a private name (`_private.Module.0.foo`), which cannot be
    written: then the name as declared, which resolves to it in the declaration's own scope.
    """
    if not full_name.startswith("_private."):
        return full_name
    try:
        return first_declaration(head, "lean4").name or full_name
    except DeclarationError:
        return full_name


def _offset(text: str, line: int, column: int) -> int:
    """Character offset of a 1-based (line, column) position."""
    lines = text.splitlines(keepends=True)
    return sum(len(x) for x in lines[: max(0, line - 1)]) + max(0, column - 1)


def declaration_head(source: str, start: int, end: int | None = None) -> str | None:
    """The declaration starting at `start` up to and including its top-level `:=`, or None.

    None for declarations without one (pattern-matching equations, `where`).
    """
    depth = 0
    i = start
    stop = len(source) if end is None else end
    pairs = {"(": 1, "[": 1, "{": 1, "⦃": 1, "⟨": 1, ")": -1, "]": -1, "}": -1, "⦄": -1, "⟩": -1}
    while i < stop:
        two = source[i : i + 2]
        if two == "--":
            nl = source.find("\n", i)
            i = stop if nl < 0 else nl
            continue
        if two == "/-":
            close = source.find("-/", i + 2)
            i = stop if close < 0 else close + 2
            continue
        ch = source[i]
        if ch in pairs:
            depth = max(0, depth + pairs[ch])
        elif depth == 0 and two == ":=":
            return source[start : i + 2].strip()
        elif depth == 0 and ch == "|" and source[:i].rstrip(" \t").endswith("\n"):
            return None  # `| pattern => ...`: equations, no single proof to replace
        i += 1
    return None


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class _Handle:
    theorem: LeanDojoTheorem
    generation: int
    path: tuple[str, ...]
    state: Any = field(compare=False)  # lean_dojo.TacticState in that generation's Dojo


class _Session:
    """The Dojo of one theorem and the states it has handed out."""

    def __init__(self, theorem: LeanDojoTheorem, target: Any) -> None:
        self.theorem = theorem
        self.target = target  # lean_dojo.Theorem
        self.lock = asyncio.Lock()
        self.dojo: Any = None
        self.generation = 0
        self.states: dict[tuple[str, ...], Any] = {}  # path -> TacticState in the open Dojo
        self.crashes_in_a_row = 0


class LeanDojoEnv:
    """`ProofEnv` over `lean_dojo.Dojo`: one Dojo per theorem, at most `processes` open."""

    language: Language = "lean4"

    def __init__(self, config: LeanDojoConfig = LeanDojoConfig()) -> None:
        self.config = config
        self._sessions: OrderedDict[LeanDojoTheorem, _Session] = OrderedDict()
        self._repos: dict[tuple[str, str], Any] = {}
        self._declarations: dict[LeanDojoTheorem, str | None] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._opening: set[_Session] = set()
        self._setup_lock = asyncio.Lock()

    @property
    def size(self) -> int:
        return self.config.processes

    # ---- blocking LeanDojo calls run in threads

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.processes + 1, thread_name_prefix="leandojo")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ---- repositories

    def _require(self, theorem: Theorem) -> LeanDojoTheorem:
        if not isinstance(theorem, LeanDojoTheorem) or not (theorem.url and theorem.commit and theorem.file_path):
            raise EnvSetupError(
                f"--env leandojo runs theorems of a traced repository, and {theorem.name} does not say which: "
                "select it with --benchmark leandojo --data DIR (LeanDojo Benchmark 4 JSON)"
            )
        return theorem

    async def _repo(self, theorem: LeanDojoTheorem) -> tuple[ModuleType, Any, Path]:
        """(lean_dojo, its LeanGitRepo, the traced repo's path); setup errors say what is missing."""
        lean_dojo = import_lean_dojo()
        if shutil.which("lake") is None:
            raise EnvSetupError(f"--env leandojo needs Lean 4 and `lake` is not on PATH: {LEAN_HINT}")
        key = (theorem.url, theorem.commit)
        async with self._setup_lock:
            if key not in self._repos:
                self._repos[key] = await self._call(self._open_repo, lean_dojo, theorem)
        repo, traced = self._repos[key]
        return lean_dojo, repo, traced

    @staticmethod
    def _open_repo(lean_dojo: ModuleType, theorem: LeanDojoTheorem) -> tuple[Any, Path]:
        # PyGithub logs every retry as a warning; the error below says it once
        with _quiet("urllib3"):
            try:
                repo = lean_dojo.LeanGitRepo(theorem.url, theorem.commit)
            except Exception as exc:  # GitHub API, git, or a missing lean-toolchain
                raise EnvSetupError(
                    f"LeanDojo cannot open the repository {theorem.url} at {theorem.commit[:12]}: {_brief(exc)}"
                    + (OFFLINE_HINT if "github.com" in theorem.url else "")
                ) from exc
            try:
                available = lean_dojo.is_available_in_cache(repo)
            except Exception as exc:  # the remote cache lookup needs the network
                raise EnvSetupError(f"LeanDojo cannot look up the trace of {theorem.url}: {_brief(exc)}") from exc
        if not available:
            raise EnvSetupError(
                f"{theorem.url} at {theorem.commit[:12]} is not traced in LeanDojo's cache: trace it first "
                f"(python -c \"import lean_dojo; lean_dojo.trace(lean_dojo.LeanGitRepo('{theorem.url}', "
                f"'{theorem.commit}'))\"), or point CACHE_DIR at a cache that has it"
            )
        return repo, Path(lean_dojo.get_traced_repo_path(repo))

    async def _declaration(self, theorem: LeanDojoTheorem, traced: Path) -> str | None:
        """The theorem's declaration up to `:=`, from the traced source (else the data's statement)."""
        if theorem not in self._declarations:
            self._declarations[theorem] = await self._call(self._read_declaration, theorem, traced)
        return self._declarations[theorem]

    @staticmethod
    def _read_declaration(theorem: LeanDojoTheorem, traced: Path) -> str | None:
        try:
            source = (traced / theorem.file_path).read_text(encoding="utf-8")
        except OSError:
            return theorem.statement or None
        head = None
        if theorem.start is not None:
            end = _offset(source, *theorem.end) if theorem.end is not None else None
            head = declaration_head(source, _offset(source, *theorem.start), end)
        if head is None:
            for name in (theorem.name, theorem.name.rsplit(".", 1)[-1]):
                if (decl := find_declaration(source, name, "lean4")) is not None:
                    head = declaration_head(source, decl.start)
                    break
        return head or theorem.statement or None

    # ---- Dojos

    async def _session(self, theorem: LeanDojoTheorem) -> _Session:
        session = self._sessions.get(theorem)
        if session is None:
            lean_dojo, repo, traced = await self._repo(theorem)
            await self._declaration(theorem, traced)
            target = lean_dojo.Theorem(repo, Path(theorem.file_path), theorem.name)
            session = self._sessions.setdefault(theorem, _Session(theorem, target))
        self._sessions.move_to_end(theorem)
        return session

    def _enter(self, target: Any) -> tuple[Any, Any]:
        lean_dojo = import_lean_dojo()
        dojo = lean_dojo.Dojo(target, timeout=math.ceil(self.config.start_timeout))
        try:
            _, state = self._enter_or_clean_up(dojo)
        except lean_dojo.DojoInitError as exc:
            raise TheoremStartError(f"{target.full_name}: LeanDojo cannot start it: {exc}") from exc
        except (lean_dojo.DojoCrashError, lean_dojo.DojoTacticTimeoutError, EOFError) as exc:
            raise TheoremStartError(f"{target.full_name}: Lean failed while opening the theorem: {exc!r}") from exc
        except AssertionError as exc:  # LeanDojo asserts on outdated traces and odd first states
            raise TheoremStartError(f"{target.full_name}: LeanDojo refused the theorem: {exc}") from exc
        if not isinstance(state, lean_dojo.TacticState):
            self._exit(dojo)
            raise TheoremStartError(f"{target.full_name}: LeanDojo gave no tactic state but {state!r}")
        return dojo, state

    def _exit_when_entered(self, entering: asyncio.Future[tuple[Any, Any]]) -> None:
        """Close a Dojo that finished opening after its caller gave up on it."""
        if entering.cancelled() or entering.exception() is not None:
            return
        dojo, _ = entering.result()
        threading.Thread(target=self._exit, args=(dojo,), name="leandojo-exit", daemon=True).start()

    @classmethod
    def _enter_or_clean_up(cls, dojo: Any) -> tuple[Any, Any]:
        """`dojo.__enter__()`; if it fails, the Lean process and temporary file it made are removed."""
        try:
            return dojo.__enter__()  # type: ignore[no-any-return]
        except BaseException:
            cls._exit(dojo)
            raise

    @staticmethod
    def _exit(dojo: Any) -> None:
        try:
            dojo.__exit__(None, None, None)
        except Exception:  # a dead Dojo may fail to clean up; it is gone either way
            log.debug("closing a Dojo failed", exc_info=True)

    async def _evict(self, keep: _Session) -> None:
        """Close least recently used idle Dojos until a new one fits in `processes`."""
        open_ = [s for s in self._sessions.values() if s.dojo is not None and s is not keep]
        opening = len(self._opening - {keep})  # Dojos being opened count as open
        excess = len(open_) + opening + 1 - self.config.processes
        for s in open_:
            if excess <= 0:
                break
            if s.lock.locked():
                continue
            await self._close_dojo(s)
            excess -= 1

    async def _close_dojo(self, session: _Session) -> None:
        dojo, session.dojo = session.dojo, None
        session.generation += 1
        session.states.clear()
        if dojo is not None:
            await self._call(self._exit, dojo)

    async def _open_dojo(self, session: _Session) -> Any:
        """The session's root state in a live Dojo (opening one if needed)."""
        if session.dojo is None:
            self._opening.add(session)
            try:
                await self._evict(session)
                entering = asyncio.ensure_future(self._call(self._enter, session.target))
                try:
                    session.dojo, root = await asyncio.shield(entering)
                except asyncio.CancelledError:
                    entering.add_done_callback(self._exit_when_entered)  # its thread goes on opening it
                    raise
            finally:
                self._opening.discard(session)
            session.states = {(): root}
        return session.states[()]

    async def _restart(self, session: _Session, crashed: bool) -> None:
        """Close the session's Dojo; its states are replayed into the next one when used."""
        current_usage().restarts += 1
        await self._close_dojo(session)
        session.crashes_in_a_row = session.crashes_in_a_row + 1 if crashed else 0
        if session.crashes_in_a_row > self.config.max_restarts_in_a_row:
            raise EnvError(
                f"{session.theorem.name}: LeanDojo restarted {session.crashes_in_a_row} times in a row; giving up"
            )

    async def _resolve(self, lean_dojo: ModuleType, session: _Session, handle: _Handle, timeout: float) -> Any:
        """The handle's TacticState in the session's live Dojo, replaying its path if needed."""
        if handle.generation == session.generation and session.dojo is not None:
            return handle.state
        state = await self._open_dojo(session)
        for i, tactic in enumerate(handle.path):
            prefix = handle.path[: i + 1]
            if prefix in session.states:
                state = session.states[prefix]
                continue
            result = await self._run(session, state, tactic, timeout)
            current_usage().replays += 1
            if not isinstance(result, lean_dojo.TacticState):
                raise ReplayFailed(
                    f"replaying step {i + 1} of {session.theorem.name} gave a different result: {result}"
                )
            session.states[prefix] = state = result
        return state

    async def _run(self, session: _Session, state: Any, tactic: str, timeout: float) -> Any:
        return await self._call(self._run_tac, session.dojo, state, tactic, timeout)

    @staticmethod
    def _run_tac(dojo: Any, state: Any, tactic: str, timeout: float) -> Any:
        # LeanDojo applies its timeout through pexpect, which reads `proc.timeout` at every read:
        # setting it per call gives a per-tactic limit without a new process.
        dojo.proc.timeout = max(0.1, timeout)
        # LeanDojo's `run_tac` parses exactly one tactic (as the Lean REPL): a sequence is grouped
        return dojo.run_tac(state, tactic_text(tactic))

    # ---- ProofEnv

    async def start(self, theorem: Theorem) -> ProofState:
        t = self._require(theorem)
        session = await self._session(t)
        async with session.lock:
            root = await self._open_dojo(session)
        return ProofState(split_goals(root.pp), _Handle(t, session.generation, (), root))

    async def run_tactic(self, state: ProofState, tactic: str, timeout: float) -> TacticResult:
        if (reason := check_lean_tactic(tactic, self.config.policy)) is not None:
            return Failed(f"rejected before reaching Lean: {reason}")
        handle = state.handle
        if not isinstance(handle, _Handle):
            raise EnvError(f"not a LeanDojo proof state: {state!r}")
        lean_dojo = import_lean_dojo()
        session = await self._session(handle.theorem)
        async with session.lock:
            for attempt in (1, 2):
                try:
                    current = await self._resolve(lean_dojo, session, handle, timeout)
                    result = await self._run(session, current, tactic, timeout)
                except asyncio.CancelledError:
                    # the thread still runs the tactic on this Dojo and would answer out of turn
                    await self._close_dojo(session)
                    raise
                except ReplayFailed as exc:
                    log.warning("%s", exc)
                    return Failed(str(exc))
                except lean_dojo.DojoTacticTimeoutError:
                    # Lean is still busy with the tactic and would answer out of turn: start afresh
                    await self._restart(session, crashed=False)
                    return TimedOut(timeout)
                except (lean_dojo.DojoCrashError, EOFError) as exc:
                    log.warning("%s: Lean crashed (%s); reopening the Dojo", handle.theorem.name, exc)
                    await self._restart(session, crashed=True)
                    if attempt == 2:
                        return Failed(f"Lean crashed twice on this tactic: {exc}")
                    continue
                session.crashes_in_a_row = 0
                return self._outcome(lean_dojo, session, handle, tactic, result)
        raise AssertionError("unreachable")  # pragma: no cover

    def _outcome(
        self, lean_dojo: ModuleType, session: _Session, handle: _Handle, tactic: str, result: Any
    ) -> TacticResult:
        if isinstance(result, lean_dojo.TacticState):
            path = (*handle.path, tactic)
            session.states[path] = result
            return Progress(
                ProofState(split_goals(result.pp), _Handle(handle.theorem, session.generation, path, result))
            )
        if isinstance(result, lean_dojo.ProofFinished):
            return Proved(result.message or "")
        if isinstance(result, lean_dojo.LeanError):
            return Failed(result.error)
        if isinstance(result, lean_dojo.ProofGivenUp):
            return Failed("the proof gives up (`sorry`)")
        raise EnvError(f"LeanDojo returned an unknown result: {result!r}")

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        statement = theorem.statement
        if isinstance(theorem, LeanDojoTheorem):
            statement = self._declarations.get(theorem) or statement
            if not statement:
                return f"-- {theorem.name} ({theorem.location})\nby\n" + "".join(
                    "  " + line + "\n" for tactic in proof for line in tactic_text(tactic).splitlines()
                )
        return theorem.header_block + render_proof_body(statement, proof)

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        """Declaration + proof in a fresh command-mode Dojo at the theorem's line, then its axioms."""
        for tactic in proof:
            if (reason := check_lean_tactic(tactic, self.config.policy)) is not None:
                return Verdict(False, reason=f"rejected tactic {tactic!r}: {reason}")
        t = self._require(theorem)
        lean_dojo, repo, traced = await self._repo(t)
        head = await self._declaration(t, traced)
        if head is None:
            return Verdict(False, reason=f"cannot find the declaration of {t.name} in {t.file_path} to re-check it")
        line = t.start[0] if t.start is not None else await self._call(self._find_line, t, traced)
        if line is None:
            return Verdict(False, reason=f"cannot find the line of {t.name} in {t.file_path} to re-check it")
        started = time.monotonic()
        try:
            body = render_proof_body(head, proof)
            return await self._call(self._check, lean_dojo, repo, t, line, body, axiom_query_name(t.name, head))
        finally:
            current_usage().verify_s += time.monotonic() - started

    @staticmethod
    def _find_line(theorem: LeanDojoTheorem, traced: Path) -> int | None:
        try:
            source = (traced / theorem.file_path).read_text(encoding="utf-8")
        except OSError:
            return None
        for name in (theorem.name, theorem.name.rsplit(".", 1)[-1]):
            if (decl := find_declaration(source, name, "lean4")) is not None:
                return source.count("\n", 0, decl.start) + 1
        return None

    def _check(
        self, lean_dojo: ModuleType, repo: Any, theorem: LeanDojoTheorem, line: int, body: str, name: str
    ) -> Verdict:
        entry = (repo, Path(theorem.file_path), line)
        try:
            dojo = lean_dojo.Dojo(entry, timeout=math.ceil(self.config.start_timeout))
            _, state = self._enter_or_clean_up(dojo)
        except Exception as exc:  # nothing is accepted from a checker that did not start
            return Verdict(False, reason=f"the fresh check could not start: {type(exc).__name__}: {exc}")
        try:
            declared = dojo.run_cmd(state, body)
            if isinstance(declared, lean_dojo.LeanError):
                return Verdict(False, (declared.error,), reason="the proof has errors")
            # no test of the printed messages for "declaration uses 'sorry'": the command state may
            # carry messages of earlier declarations of the file; a sorry shows as `sorryAx` below
            message = declared.message or ""
            printed = dojo.run_cmd(declared, f"#print axioms {name}")
            if isinstance(printed, lean_dojo.LeanError):
                return Verdict(False, (printed.error,), reason="#print axioms failed")
            # the command state's messages accumulate: read only what `#print axioms` added
            printed_text = printed.message or ""
            if message and printed_text.startswith(message):
                printed_text = printed_text[len(message) :]
            axioms = parse_axioms(printed_text, theorem.name, name)
            if axioms is None:
                return Verdict(False, (printed.message or "",), reason="no axiom report for the theorem")
            extra = sorted(set(axioms) - STANDARD_AXIOMS)
            if extra:
                return Verdict(False, axioms=axioms, reason=f"non-standard axioms: {', '.join(extra)}")
            return Verdict(True, tuple(m for m in (message,) if m), axioms=axioms)
        except (lean_dojo.DojoCrashError, lean_dojo.DojoTacticTimeoutError, EOFError) as exc:
            return Verdict(False, reason=f"the checking Lean process failed: {exc!r}")
        finally:
            self._exit(dojo)

    async def check_file(self, text: str) -> list[TheoremCheck]:
        raise EnvSetupError("LeanDojo checks theorems of a traced repository, not files: use `prover check` --env lean")

    async def close(self) -> None:
        for session in list(self._sessions.values()):
            await self._close_dojo(session)
        self._sessions.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
