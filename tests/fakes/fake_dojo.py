"""A scripted `lean_dojo.Dojo` for machines without Lean, and an isolated import of `lean_dojo`.

`FakeDojo` subclasses the real `lean_dojo.Dojo` (its constructor and mode checks run) and answers
with LeanDojo's own result types (`TacticState`, `ProofFinished`, `LeanError`, `ProofGivenUp`,
`CommandState`) and exceptions. Like the real one:
- tactic mode opens at the theorem's root state; an unknown theorem is a `DojoInitError`;
- a tactic slower than the pexpect timeout (`proc.timeout`) raises `DojoTacticTimeoutError`,
  and Lean keeps working on it: the next call on that Dojo gets the late answer (which is why
  the env must not reuse it);
- a crash raises `DojoCrashError` and leaves the process dead;
- command mode elaborates `theorem ... := by <tactics>` by running the script, prints
  `declaration uses 'sorry'` for a given-up proof, and answers `#print axioms NAME` (with
  `sorryAx` for such a proof).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FINISHED = "FINISHED"
SORRY = "SORRY"
CRASH = "CRASH"


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class Slow:
    seconds: float
    then: Any


@dataclass
class FakeLean:
    """What the fake Lean knows. `steps[(pp, tactic)]` is a next pp, FINISHED, SORRY, CRASH, Error or Slow."""

    roots: dict[str, str]
    steps: dict[tuple[str, str], Any]
    axioms: dict[str, list[str]] = field(default_factory=dict)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    crash_once: set[tuple[str, str]] = field(default_factory=set)  # (pp, tactic) that crash the first time

    def tactics_sent(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "run_tac"]

    def count(self, kind: str) -> int:
        return sum(e[0] == kind for e in self.events)


@contextmanager
def isolated_import(cache: Path) -> Iterator[ModuleType]:
    """Import `lean_dojo` with its cache in `cache`, no remote cache and no GitHub token.

    lean_dojo reads these at import time (and creates CACHE_DIR), so they are set around the
    first import and its module-level cache objects are pointed at `cache` in any case.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CACHE_DIR", str(cache))
        mp.setenv("DISABLE_REMOTE_CACHE", "1")
        mp.delenv("GITHUB_ACCESS_TOKEN", raising=False)
        import lean_dojo
        from lean_dojo.data_extraction import cache as cache_module
        from lean_dojo.data_extraction import lean as lean_module
        from lean_dojo.data_extraction import trace as trace_module

        isolated = cache_module.Cache(cache)
        mp.setattr(cache_module, "DISABLE_REMOTE_CACHE", True)
        mp.setattr(cache_module, "cache", isolated)
        mp.setattr(trace_module, "cache", isolated)
        mp.setattr(lean_module, "repo_cache", isolated)
        yield lean_dojo


class _Proc:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.alive = True
        self.pid = -1


def _tactics_of(body: str) -> list[str]:
    """The tactics of `... := by` followed by two-space indented lines (deeper lines continue one)."""
    _, _, block = body.partition(":= by\n")
    tactics: list[str] = []
    for line in block.splitlines():
        if line.startswith("   ") and tactics:
            tactics[-1] += "\n" + line[2:]
        elif line.strip():
            tactics.append(line.strip())
    return tactics


def _one_group(text: str) -> bool:
    """`text` is one bracketed group: its first `(` closes at its last character."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(text) - 1
    return False


def _sequence_parts(text: str) -> list[str]:
    """The tactics of a sequence: split at top-level `;` (not `<;>`) and at lines that start at the
    first line's column or left of it."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{⟨"
        depth -= ch in ")]}⟩"
        if depth == 0 and ch == ";" and text[i - 1 : i] != "<" and text[i + 1 : i + 2] != ">":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    out: list[str] = []
    for part in parts:
        lines = [line for line in part.split("\n") if line.strip()]
        if not lines:
            continue
        column = len(lines[0]) - len(lines[0].lstrip())
        for line in lines:
            if out and len(line) - len(line.lstrip()) > column and out[-1] is not None:
                out[-1] += "\n" + line
            else:
                out.append(line)
    return [p.strip() for p in out if p.strip()]


def make_fake_dojo(lean_dojo: ModuleType, lean: FakeLean) -> type:
    class FakeDojo(lean_dojo.Dojo):  # type: ignore[misc,name-defined]
        def __enter__(self) -> tuple[Any, Any]:
            self.proc = _Proc(self.timeout)
            self._pps: list[str] = []
            self._late: Any = None
            if self.uses_tactics:
                name = self.entry.full_name
                lean.events.append(("open", name))
                if name not in lean.roots:
                    raise lean_dojo.DojoInitError(f"Failed to locate the theorem with `{name}` as its full name.")
                self._pps.append(lean.roots[name])
                return self, lean_dojo.TacticState(lean.roots[name], 0)
            lean.events.append(("open_command", str(self.entry[1]), self.entry[2]))
            self._declared: dict[str, str] = {}
            self._uses_sorry: set[str] = set()
            self._messages: dict[int, str] = {0: ""}  # a command state's messages, all of them so far
            return self, lean_dojo.CommandState(0)

        def __exit__(self, *exc: Any) -> None:
            lean.events.append(("close",))
            self.proc.alive = False

        def _answer(self, pp: str, tactic: str) -> Any:
            """As LeanDojo's `handleRunTac`, which parses exactly one tactic: `a; b` or two lines
            answer "expected end of input"; a parenthesised sequence runs its tactics in turn."""
            text = tactic.strip()
            if text.startswith("(") and text.endswith(")") and _one_group(text):
                for part in _sequence_parts(" " + text[1:-1]):  # the `(` keeps its column
                    outcome = self._answer_one(pp, part)
                    if not isinstance(outcome, str) or outcome in (FINISHED, SORRY, CRASH):
                        return outcome
                    pp = outcome
                return pp
            if len(_sequence_parts(text)) > 1:
                return Error("<stdin>:1:0: expected end of input")
            return self._answer_one(pp, text)

        def _answer_one(self, pp: str, tactic: str) -> Any:
            key = (pp, tactic)
            if key in lean.crash_once:
                lean.crash_once.discard(key)
                self.proc.alive = False
                raise lean_dojo.DojoCrashError("Unexpected EOF")
            outcome = lean.steps.get(key, Error(f"<stdin>:1:0: unknown tactic or it failed: {tactic}"))
            if isinstance(outcome, Slow):
                time.sleep(min(outcome.seconds, self.proc.timeout, 0.05))
                if outcome.seconds > self.proc.timeout:
                    self.has_timedout = True
                    self._late = outcome.then  # Lean answers it later, out of turn
                    raise lean_dojo.DojoTacticTimeoutError()
                outcome = outcome.then
            if outcome == CRASH:
                self.proc.alive = False
                raise lean_dojo.DojoCrashError("Unexpected EOF")
            return outcome

        def _result(self, outcome: Any) -> Any:
            if isinstance(outcome, Error):
                return lean_dojo.LeanError(outcome.message)
            if outcome == SORRY:
                return lean_dojo.ProofGivenUp()
            self._pps.append("" if outcome == FINISHED else outcome)
            if outcome == FINISHED:
                self.is_successful = True
                return lean_dojo.ProofFinished(len(self._pps) - 1, None)
            return lean_dojo.TacticState(outcome, len(self._pps) - 1)

        def run_tac(self, state: Any, tactic: str) -> Any:
            if not isinstance(state, lean_dojo.TacticState):
                raise RuntimeError(f"Attempting to run a tactic on an invalid state {state}.")
            if not self.proc.alive:
                raise lean_dojo.DojoCrashError("Unexpected exit code: 1")
            lean.events.append(("run_tac", tactic))
            if self._late is not None:  # the answer to the tactic that timed out
                late, self._late = self._late, None
                return self._result(late)
            return self._result(self._answer(self._pps[state.id], tactic))

        def run_cmd(self, state: Any, command: str) -> Any:
            """As LeanDojo's `handleRunCmd`: the new state's `message` holds every message of the
            command state so far (the earlier commands' too), one per line."""
            result = self._run_cmd(state, command)
            if isinstance(result, lean_dojo.CommandState):
                earlier = self._messages.get(state.id, "")
                joined = "\n".join(m for m in (earlier, result.message or "") if m)
                self._messages[result.id] = joined
                return lean_dojo.CommandState(result.id, joined or None)
            return result

        def _run_cmd(self, state: Any, command: str) -> Any:
            if not self.proc.alive:
                raise lean_dojo.DojoCrashError("Unexpected exit code: 1")
            lean.events.append(("run_cmd", command))
            if m := re.match(r"#print axioms (\S+)", command):
                name = m.group(1)
                if name not in self._declared:
                    return lean_dojo.LeanError(f"unknown constant '{name}'")
                axioms = lean.axioms.get(name, ["propext"]) + (["sorryAx"] if name in self._uses_sorry else [])
                text = f"'{name}' depends on axioms: [{', '.join(axioms)}]" if axioms else ""
                return lean_dojo.CommandState(state.id + 1, text or f"'{name}' does not depend on any axioms")
            decl = re.search(r"theorem\s+(\S+)", command)
            name = next((n for n in lean.roots if decl and n.rsplit(".", 1)[-1] == decl.group(1)), None)
            if name is None:
                return lean_dojo.LeanError("unexpected declaration")
            pp = lean.roots[name]
            logged: list[str] = []
            for tactic in _tactics_of(command):
                if m := re.fullmatch(r'trace "([^"]*)"', tactic):  # logs its text at info, changes nothing
                    logged.append(m.group(1))
                    continue
                outcome = self._answer(pp, tactic)
                if isinstance(outcome, Error):
                    return lean_dojo.LeanError(outcome.message)
                if outcome == SORRY:
                    self._declared[name] = command
                    self._uses_sorry.add(name)
                    return lean_dojo.CommandState(state.id + 1, "\n".join([*logged, "declaration uses 'sorry'"]))
                if outcome == FINISHED:
                    self._declared[name] = command
                    return lean_dojo.CommandState(state.id + 1, "\n".join(logged))
                pp = outcome
            return lean_dojo.LeanError("unsolved goals\n" + pp)

    return FakeDojo


def install(monkeypatch: pytest.MonkeyPatch, lean_dojo: ModuleType, lean: FakeLean) -> None:
    """Replace `lean_dojo.Dojo` by a fake answering from `lean`."""
    monkeypatch.setattr(lean_dojo, "Dojo", make_fake_dojo(lean_dojo, lean))


def fake_lake(monkeypatch: pytest.MonkeyPatch, bin_dir: Path) -> None:
    """A `lake` on PATH (the env checks that Lean is installed before starting LeanDojo)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    lake = bin_dir / "lake"
    lake.write_text("#!/bin/sh\nexit 1\n")
    lake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ.get('PATH', '')}")


def git_repo(path: Path) -> str:
    """Make `path` a git repository with one commit; its hash."""
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "demo"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Traced:
    lean_dojo: ModuleType
    url: str
    commit: str
    cache: Path
    traced: Path  # the traced repo's folder in the cache


def traced_repo(source: Path, workdir: Path) -> Traced:
    """A local git repo holding a copy of `source`, "traced" into an isolated LeanDojo cache in `workdir`.

    The real `LeanGitRepo` opens it; its trace is the source copied where LeanDojo's cache keeps it.
    """
    cache = workdir / "lean_dojo_cache"
    repo = workdir / "src" / source.name
    shutil.copytree(source, repo)
    commit = git_repo(repo)
    with isolated_import(cache) as lean_dojo:
        opened = lean_dojo.LeanGitRepo(str(repo), commit)
        traced = cache / opened.get_cache_dirname() / opened.name
    shutil.copytree(repo, traced, ignore=shutil.ignore_patterns(".git"))
    return Traced(lean_dojo, str(repo), commit, cache, traced)


def loaded() -> bool:
    return "lean_dojo" in sys.modules
