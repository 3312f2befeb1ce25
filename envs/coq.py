"""Coq through `coqidetop`'s XML protocol (`-main-channel stdfds`), checked with Coq 8.16.

One process holds one linear document of sentences, each with a state id. A tactic runs as
one write of `Edit_at` (back to its state, when needed), `Add` of the sentence and `Goal`
(which executes it and reports errors), then one read of their answers. `Edit_at` discards
later sentences, so a state whose id left the document (or was made by another process of the
pool) is rebuilt by replaying its tactic path from the theorem's root, under the caller's
deadline. A slow tactic is stopped by Coq itself: the sentence runs as `Timeout N <tactic>.`
(the wrapper never enters a proof's path); killing the process is the pool's backstop.
A state with no goals left is `proved` only if `Qed.` is accepted.

`verify` checks the whole theorem in command mode in a warm verifier: a separate `coqidetop`
per header that never runs search tactics, reset to the header's state before each theorem,
then audits `Print Assumptions` with every axiom resolved to its full path by `Locate`. Proof
text that our sentence splitter might read differently from Coq's parser (strings, comments,
`..`) goes to a fresh `coqc` instead, as does `prover check` (`check_file`), per theorem.
The audit asks for each theorem by its full path (`Top.M.t`) and reads only that command's own
output: in coqidetop the notices of its own state, with `coqc` the file its `Redirect` writes in a
fresh directory of random name, so nothing a file or a proof prints can pass for it.
Both processes run in a private temporary directory (Coq writes `.lia.cache` into its cwd).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from envs.declarations import DeclarationError, declaration_name, declarations
from envs.pool import Handle, ProcessPool, Slot
from envs.process import ChildProcess, ProcessDied, ProtocolError, run_command
from envs.tactic_guard import TacticPolicy, check_coq_tactic
from envs.types import (
    CHECKED_FILE,
    EnvError,
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
    TimedOut,
    Verdict,
    current_usage,
)

log = logging.getLogger(__name__)

LIBRARY = "Top"  # the module coqidetop's document and our checked `Top.v` files define
SETUP_HINT = "Coq is needed: install it with `apt-get install coq` (Debian/Ubuntu) or `opam install coq`."
# The standard library's axioms a proof may rest on (full paths, as `Locate` prints them):
# classical logic, choice/description, extensionality, proof irrelevance, and the axioms of the
# classical reals. Anything else (an `Axiom`, `Parameter` or `Admitted` lemma of the checked file
# or of another library) makes a proof unaccepted.
STANDARD_AXIOMS = frozenset({
    "Coq.Logic.Classical_Prop.classic",
    "Coq.Logic.ClassicalEpsilon.constructive_indefinite_description",
    "Coq.Logic.IndefiniteDescription.constructive_indefinite_description",
    "Coq.Logic.Epsilon.epsilon_statement",
    "Coq.Logic.ClassicalUniqueChoice.dependent_unique_choice",
    "Coq.Logic.ClassicalChoice.choice",
    "Coq.Logic.Description.constructive_definite_description",
    "Coq.Logic.FunctionalExtensionality.functional_extensionality_dep",
    "Coq.Logic.PropExtensionality.propositional_extensionality",
    "Coq.Logic.ProofIrrelevance.proof_irrelevance",
    "Coq.Logic.Eqdep.Eq_rect_eq.eq_rect_eq",
    "Coq.Logic.JMeq.JMeq_eq",
    "Coq.Reals.ClassicalDedekindReals.sig_forall_dec",
    "Coq.Reals.ClassicalDedekindReals.sig_not_dec",
})  # fmt: skip
_BULLET = re.compile(r"^\s*(?:[-+*]+|\{|\})\s*$")
_PROOF_END = re.compile(r"^(?:Qed|Defined|Admitted|Abort|Save)\b")
_TIMEOUT_MESSAGES = ("Timeout!", "Tactic timeout!")
_INIT_TIMEOUT = 20.0  # coqidetop answers Init in well under a second; anything else is not coqidetop
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SID = re.compile(rb'<state_id val="(\d+)"')


@dataclass(frozen=True, slots=True)
class CoqConfig:
    cmd: tuple[str, ...] = ("coqidetop.opt", "-main-channel", "stdfds")
    coqc: str = "coqc"
    processes: int = 1
    max_restarts_in_a_row: int = 20  # in a row, without a successful call between them
    start_timeout: float = 120.0
    verify_timeout: float = 300.0
    allowed_axioms: frozenset[str] = STANDARD_AXIOMS
    policy: TacticPolicy = field(default_factory=TacticPolicy)
    memory_limit_mb: int | None = None  # per process, with its children; killed at the cap
    interrupt: Literal["timeout", "kill"] = "timeout"  # stop a slow tactic with Coq's `Timeout`, or kill
    warm_verifier: bool = True  # False: every `verify` runs a fresh `coqc`


# --------------------------------------------------------------------------- XML


def _xml(data: bytes) -> ET.Element:
    """Parse one element; control characters (e.g. printed by `idtac`) are not valid XML 1.0."""
    data = data.replace(b"&nbsp;", b" ")
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        pass
    try:
        return ET.fromstring(_CONTROL.sub(b"?", data))
    except ET.ParseError as exc:
        raise ProtocolError(f"coqidetop sent unreadable XML ({exc}): {data[:200]!r}") from exc


def _text(elem: ET.Element | None) -> str:
    return "" if elem is None else "".join(elem.itertext())


@dataclass(frozen=True, slots=True)
class Reply:
    """The bytes of one answer: feedback messages, then `<value ...>...</value>` from `start`."""

    raw: bytes
    start: int

    @classmethod
    def of(cls, raw: bytes) -> Reply:
        start = raw.rfind(b"<value ")
        if start < 0:
            raise ProtocolError(f"coqidetop answered without a value: {raw[-300:]!r}")
        return cls(raw, start)

    @property
    def good(self) -> bool:
        return self.raw.startswith(b'<value val="good"', self.start)

    def value(self) -> ET.Element:
        return _xml(self.raw[self.start :])

    def messages(self, level: str, sid: int | None = None) -> list[str]:
        """Feedback messages of `level` (error, notice, ...), parsed only when there are any; with
        `sid`, only those of that state (what one sentence printed, not what the others did)."""
        if f'message_level val="{level}"'.encode() not in self.raw[: self.start]:
            return []
        out = []
        for feedback in _xml(b"<r>" + self.raw[: self.start] + b"</r>").iter("feedback"):
            state = feedback.find("state_id")
            if sid is not None and (state is None or state.get("val") != str(sid)):
                continue
            for fb in feedback.iter("feedback_content"):
                if fb.get("val") == "message":
                    lvl = fb.find("./message/message_level")
                    if lvl is not None and lvl.get("val") == level:
                        out.append(_text(fb.find("./message/richpp")).strip())
        return out

    def failure(self) -> str:
        value = self.value()
        return _text(value.find("richpp")).strip() or "; ".join(self.messages("error")) or "Coq error"

    def added_sid(self) -> int:
        m = _SID.search(self.raw, self.start)
        if m is None:
            raise ProtocolError("coqidetop answered Add without a state id")
        return int(m.group(1))


def _render_goal(goal: ET.Element) -> str:
    children = list(goal)
    hyps = [_text(h).strip() for h in children[1]] if len(children) > 1 else []
    ccl = _text(children[2]).strip() if len(children) > 2 else ""
    return "\n".join([*hyps, "============================", ccl])


@dataclass(frozen=True, slots=True)
class Goals:
    foreground: tuple[str, ...]
    background: tuple[str, ...]
    shelved: int
    given_up: int


def parse_goals(value: ET.Element) -> Goals | None:
    option = value.find("option")
    if option is None or option.get("val") == "none":
        return None
    goals = option.find("goals")
    if goals is None:
        return None
    lists = list(goals)
    fg = tuple(_render_goal(g) for g in lists[0].findall("goal"))
    bg = tuple(_render_goal(g) for g in lists[1].iter("goal")) if len(lists) > 1 else ()
    shelved = len(list(lists[2].iter("goal"))) if len(lists) > 2 else 0
    given_up = len(list(lists[3].iter("goal"))) if len(lists) > 3 else 0
    return Goals(fg, bg, shelved, given_up)


def add_call(sentence: str, sid: int) -> bytes:
    return (
        f'<call val="Add"><pair><pair><pair><pair><string>{escape(sentence)}</string><int>-1</int></pair>'
        f'<pair><state_id val="{sid}"/><bool val="false"/></pair></pair><int>0</int></pair>'
        f"<pair><int>0</int><int>0</int></pair></pair></call>"
    ).encode()


def edit_at_call(sid: int) -> bytes:
    return f'<call val="Edit_at"><state_id val="{sid}"/></call>'.encode()


GOAL_CALL = b'<call val="Goal"><unit/></call>'
INIT_CALL = b'<call val="Init"><option val="none"/></call>'


# --------------------------------------------------------------------------- sentences


def as_sentence(tactic: str) -> str:
    t = tactic.strip()
    if _BULLET.match(t) or t.endswith("."):
        return t
    return t + "."


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each Coq sentence: a `.` followed by space or end, outside comments and
    strings; bullets (`-`, `+`, `*` runs) and braces at the start of a sentence are sentences
    of their own, as Coq parses them. Comments between sentences belong to none."""
    spans: list[tuple[int, int]] = []
    depth = 0
    in_string = False
    start: int | None = None
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if in_string:
            in_string = c != '"'
        elif depth and c == '"':
            # Coq lexes strings inside comments too: `(* "*)" *)` is one comment, and
            # `(* "(*" *) x. (* "*)" *)` is code between two comments
            in_string = True
        elif text.startswith("(*", i):
            depth += 1
            i += 2
            continue
        elif depth and text.startswith("*)", i):
            depth -= 1
            i += 2
            continue
        elif depth:
            pass
        elif start is None:
            if c in "-+*":
                j = i
                while j < n and text[j] == c:
                    j += 1
                spans.append((i, j))
                i = j
                continue
            if c in "{}":
                spans.append((i, i + 1))
            elif not c.isspace():
                start = i
                in_string = c == '"'
        elif c == '"':
            in_string = True
        elif c == "." and (i + 1 == n or text[i + 1].isspace()) and text[i - 1] != ".":
            spans.append((start, i + 1))
            start = None
        i += 1
    if start is not None or depth or in_string:
        rest = text[start if start is not None else len(text) - 80 :].strip()
        raise TheoremStartError(f"Coq source does not end with a full sentence: {rest[:80]!r}")
    return spans


def split_sentences(text: str) -> list[str]:
    """Split Coq source into sentences (see `sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def tactic_sentences(tactic: str) -> list[str]:
    """The sentences of one search step (`- lia` is a bullet then `lia.`; `intros. lia` two)."""
    return split_sentences(as_sentence(tactic))


_OPENS_MODULE = re.compile(
    r"^(?:#\[[^\]]*\]\s*)?(?:(?:Local|Global)\s+)?Module\s+(?:Type\s+)?(?:(?:Import|Export)\s+)?([^\W\d][\w']*)"
)
_OPENS_SECTION = re.compile(r"^Section\s+([^\W\d][\w']*)")
_ENDS = re.compile(r"^End\s+([^\W\d][\w']*)")


def modules_at_each(text: str, spans: Sequence[tuple[int, int]], sections: bool = False) -> list[tuple[str, ...]]:
    """The Modules (and Module Types) open at the start of each sentence, and after the last,
    outermost first: what qualifies a name declared there once its Sections are closed (with
    `sections`, the Sections too: its name while they are open). `Module M := N.` opens nothing."""
    stack: list[tuple[str, bool]] = []  # (name, is a module)
    out = []
    for a, b in spans:
        out.append(tuple(name for name, module in stack if module or sections))
        sentence = " ".join(text[a:b].split())
        if m := _OPENS_MODULE.match(sentence):
            body = re.sub(r"\bwith\s+(?:Definition|Module)\b[^:]*:=", "", sentence[m.end() :])
            if ":=" not in body:
                stack.append((m.group(1), True))
        elif m := _OPENS_SECTION.match(sentence):
            stack.append((m.group(1), False))
        elif (m := _ENDS.match(sentence)) and stack and stack[-1][0] == m.group(1):
            stack.pop()
    out.append(tuple(name for name, module in stack if module or sections))  # after the last sentence
    return out


def open_scopes(text: str) -> tuple[str, ...]:
    """The Modules and Sections still open at the end of `text` (a header): the path of a theorem
    declared after it is `Top.<these>.name` until they close."""
    return modules_at_each(text, sentence_spans(text), sections=True)[-1]


def reads_unambiguously(sentence: str) -> bool:
    """True when our splitter and Coq's parser cannot disagree about where `sentence` ends."""
    return '"' not in sentence and "(*" not in sentence and ".." not in sentence


# --------------------------------------------------------------------------- one document


class _Slot(Slot):
    """One coqidetop process: its document (`chain` of live state ids) and known states.

    `dirty` is a sentence at the tip that failed to execute: the next Add first goes back.
    """

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.chain: list[int] = []
        self.dirty: int | None = None
        self.headers: dict[str, int] = {}
        self.known: dict[tuple[Theorem, tuple[str, ...]], int] = {}

    def reset(self) -> None:
        self.chain = []
        self.dirty = None
        self.headers.clear()
        self.known.clear()

    def alive_sid(self, sid: int) -> bool:
        return sid in self.chain

    def knows(self, key: tuple[Theorem, tuple[str, ...]]) -> int | None:
        sid = self.known.get(key)
        return sid if sid is not None and sid in self.chain else None


@dataclass(frozen=True, slots=True)
class _AuditFailed:
    """An audit command (`Print Assumptions`, `Locate`) that Coq refused, and why."""

    why: str


class _Timeout(Exception):
    """Coq's own `Timeout` stopped a sentence."""


class CoqIde(ProcessPool[_Slot]):
    """`ProofEnv` over a pool of `coqidetop` processes, plus a warm verifier per header."""

    language: Language = "coq"
    name = "coqidetop"
    setup_hint = SETUP_HINT

    def __init__(self, config: CoqConfig = CoqConfig()) -> None:
        super().__init__([_Slot(i) for i in range(max(1, config.processes))], config.max_restarts_in_a_row)
        self.config = config
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._verifiers: dict[str, _Slot] = {}  # header -> its verifier document

    # ---- processes

    def _workdir(self) -> Path:
        """A private cwd for coqidetop and coqc (they write `.lia.cache`/`.nia.cache` there)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="prover-coq-")
        return Path(self._tmp.name)

    async def _spawn(self, slot: _Slot) -> ChildProcess:
        child = ChildProcess(self.config.cmd, self._workdir(), SETUP_HINT, self.config.memory_limit_mb)
        await child.start()
        slot.process = child
        slot.reset()
        try:
            (answer,) = await asyncio.wait_for(self._exchange(slot, [INIT_CALL]), _INIT_TIMEOUT)
        except asyncio.TimeoutError as exc:
            await child.kill()
            slot.process = None
            raise EnvSetupError(
                f"`{' '.join(self.config.cmd)}` did not answer coqidetop's Init within {_INIT_TIMEOUT:g}s. {SETUP_HINT}"
            ) from exc
        if not answer.good:
            raise EnvSetupError(f"coqidetop refused Init: {answer.failure()}")
        slot.chain = [answer.added_sid()]
        return child

    async def _ensure_process(self, slot: _Slot) -> ChildProcess:
        if slot.process is not None and slot.process.alive:
            return slot.process
        if slot.process is not None:
            await self._restart(slot, "the process had exited")
        return await self._spawn(slot)

    async def _exchange(self, slot: _Slot, calls: Sequence[bytes]) -> list[Reply]:
        """Send `calls` in one write and read their answers. Never restarts: a dead process raises."""
        child = slot.process
        if child is None or not child.alive:
            raise ProcessDied("coqidetop is not running")
        await child.write(b"\n".join(calls) + b"\n")
        return [Reply.of(await child.read_until(b"</value>")) for _ in calls]

    # ---- sentences

    def _wrap(self, sentence: str, seconds: float | None) -> str:
        if seconds is None or self.config.interrupt != "timeout" or _BULLET.match(sentence):
            return sentence
        return f"Timeout {max(1, math.ceil(seconds))} {sentence}"

    async def _run(
        self,
        slot: _Slot,
        base: int,
        sentence: str,
        seconds: float | None = None,
        execute: bool = True,
        notices: list[str] | None = None,
    ) -> tuple[int | None, str, Goals | None]:
        """Add `sentence` after state `base` (and execute it): (new sid, "", goals) or (None, error, None).

        Raises `_Timeout` when Coq's `Timeout` (after `seconds`) stopped it. `notices` collects
        the sentence's printed output (`Print Assumptions`, `Locate`).
        """
        calls = []
        going_back = slot.dirty is not None or slot.chain[-1] != base
        if going_back:
            if base not in slot.chain:
                raise ProtocolError(f"state {base} is not in the document")
            calls.append(edit_at_call(base))
        calls.append(add_call(self._wrap(sentence, seconds), base))
        if execute:
            calls.append(GOAL_CALL)
        replies = await self._exchange(slot, calls)
        if going_back:
            edit = replies[0]
            if not edit.good or b'val="in_r"' in edit.raw[edit.start :]:
                raise ProtocolError(f"Edit_at {base} was refused: {edit.raw[edit.start :][:200]!r}")
            del slot.chain[slot.chain.index(base) + 1 :]
            slot.dirty = None
        add = replies[1 if going_back else 0]
        if not add.good:
            return None, add.failure(), None  # nothing was added
        new = add.added_sid()
        if not execute:
            slot.chain.append(new)
            return new, "", None
        goal = replies[-1]
        errors = add.messages("error") + goal.messages("error")
        if not goal.good or errors:
            slot.dirty = new
            message = goal.failure() if not goal.good else "; ".join(errors)
            if message in _TIMEOUT_MESSAGES:
                raise _Timeout(message)
            return None, message, None
        slot.chain.append(new)
        if notices is not None:  # this sentence's own output, never what an earlier one printed
            notices.extend(goal.messages("notice", new))
        return new, "", parse_goals(goal.value())

    async def _header(self, slot: _Slot, header: str, seconds: float | None) -> int:
        """The state after `header` in the slot's document, adding it if needed."""
        sid = slot.headers.get(header)
        if sid is not None and slot.alive_sid(sid):
            return sid
        sid = slot.chain[0]
        for sentence in split_sentences(header):
            new, error, _ = await self._run(slot, sid, sentence)
            if new is None:
                raise TheoremStartError(f"the header sentence {sentence!r} failed: {error}")
            sid = new
        slot.headers[header] = sid
        return sid

    # ---- theorem roots and replays

    async def _root(self, slot: _Slot, theorem: Theorem, seconds: float | None) -> tuple[int, Goals | None]:
        live = set(slot.chain)  # forget states that left the document, so `known` stays small
        slot.known = {key: sid for key, sid in slot.known.items() if sid in live}
        sid = await self._header(slot, theorem.header, seconds)
        goals = None
        for sentence in [*split_sentences(theorem.statement), "Proof."]:
            new, error, goals = await self._run(slot, sid, sentence)
            if new is None:
                raise TheoremStartError(f"{theorem.name}: {sentence[:80]!r} failed: {error}")
            sid = new
        slot.known[(theorem, ())] = sid
        return sid, goals

    def _affinity(self, slot: _Slot, handle: Handle) -> int:
        if handle.slot == slot.index and handle.generation == slot.generation and slot.alive_sid(handle.ref):
            return 2
        if slot.knows((handle.theorem, handle.path)) is not None:
            return 2
        return 1 if slot.knows((handle.theorem, ())) is not None else 0

    async def _prepare(self, slot: _Slot, handle: Handle) -> None:
        # importing a header (Reals: seconds) is starting a theorem, not a tactic: no tactic deadline
        await asyncio.wait_for(self._header(slot, handle.theorem.header, None), self.config.start_timeout)

    async def _resolve(self, slot: _Slot, handle: Handle, deadline: float) -> int | str:
        """The state's id in this slot's document, replaying its path if needed; or why not."""
        if handle.slot == slot.index and handle.generation == slot.generation and slot.alive_sid(handle.ref):
            return handle.ref
        theorem, path = handle.theorem, handle.path
        done = next((n for n in range(len(path), -1, -1) if slot.knows((theorem, path[:n])) is not None), None)
        if done is None:
            sid, _ = await self._root(slot, theorem, None)
            done = 0
        else:
            sid = slot.known[(theorem, path[:done])]
        loop = asyncio.get_running_loop()
        for i in range(done, len(path)):
            current_usage().replays += 1
            for sentence in tactic_sentences(path[i]):
                new, error, _ = await self._run(slot, sid, sentence, deadline - loop.time())
                if new is None:
                    return f"replaying step {i + 1} of {theorem.name} failed: {error}"
                sid = new
            slot.known[(theorem, path[: i + 1])] = sid
        return sid

    # ---- ProofEnv

    def _check(self, tactic: str) -> str | None:
        return check_coq_tactic(tactic, self.config.policy)

    async def _open(self, slot: _Slot, theorem: Theorem) -> tuple[int, tuple[str, ...]]:
        await self._ensure_process(slot)
        sid, goals = await asyncio.wait_for(self._root(slot, theorem, None), self.config.start_timeout)
        if goals is None or not goals.foreground:
            raise TheoremStartError(f"{theorem.name}: Coq opened no goal for the statement")
        return sid, goals.foreground

    async def _step(self, slot: _Slot, handle: Handle, tactic: str, timeout: float) -> TacticResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout  # replays count against the caller's timeout
        try:
            sentences = tactic_sentences(tactic)
        except TheoremStartError as exc:
            return Failed(str(exc))
        try:
            sid = await self._resolve(slot, handle, deadline)
            if isinstance(sid, str):
                return Failed(sid)
            goals: Goals | None = None
            for sentence in sentences:
                new, error, goals = await self._run(slot, sid, sentence, deadline - loop.time())
                if new is None:
                    return Failed(error)
                sid = new
            if goals is None:
                raise ProtocolError("coqidetop answered Goal without goals inside a proof")
            if goals.given_up:
                return Failed("the tactic gave up on a goal")
            if goals.foreground or goals.background:
                shown = goals.foreground or tuple("(unfocused)\n" + g for g in goals.background)
                return Progress(ProofState(shown, handle.child(slot.generation, sid, tactic)))
            qed, error, _ = await self._run(slot, sid, "Qed.", deadline - loop.time())
        except _Timeout:
            return TimedOut(timeout)
        if qed is None:
            return Failed(f"no goals left but Qed failed: {error}")
        return Proved("Qed accepted")

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        body = "\n".join("  " + as_sentence(t) for t in proof)
        return f"{theorem.header_block}{theorem.statement.strip()}\nProof.\n{body}\nQed.\n"

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        """Whole theorem in command mode + axiom audit, in the warm verifier or a fresh `coqc`."""
        started = time.perf_counter()
        try:
            for tactic in proof:
                if (reason := check_coq_tactic(tactic, self.config.policy)) is not None:
                    return Verdict(False, reason=f"rejected tactic {tactic!r}: {reason}")
            try:
                name = declaration_name(theorem.statement, "coq") or theorem.name
            except DeclarationError as exc:
                return Verdict(False, reason=str(exc))
            try:
                sentences = [*split_sentences(theorem.statement), "Proof."]
                sentences += [s for t in proof for s in tactic_sentences(t)] + ["Qed."]
                scopes = open_scopes(theorem.header_block)
            except TheoremStartError as exc:
                return Verdict(False, reason=str(exc))
            path = ".".join((LIBRARY, *scopes, name))  # the full path: no later name can shadow it
            if self.config.warm_verifier and all(reads_unambiguously(s) for s in sentences):
                try:
                    return await self._verify_warm(theorem, path, sentences)
                except (EnvError, asyncio.TimeoutError) as exc:  # EnvError includes ProcessDied
                    log.info("the warm Coq verifier failed (%s); checking with coqc", exc)
                    await self._drop_verifier(theorem.header)
            return (await self.check_source(self.render_proof(theorem, proof), [path]))[0].verdict
        finally:
            current_usage().verify_s += time.perf_counter() - started

    async def _drop_verifier(self, header: str) -> None:
        verifier = self._verifiers.pop(header, None)
        if verifier is None:
            return
        async with verifier.lock:  # never kill a verifier in the middle of another search's check
            if verifier.process is not None:
                await verifier.process.kill()

    async def _verifier(self, header: str) -> _Slot:
        verifier = self._verifiers.get(header)
        if verifier is None:
            if len(self._verifiers) >= max(1, self.config.processes):  # bounded: drop the oldest
                await self._drop_verifier(next(iter(self._verifiers)))
            verifier = self._verifiers[header] = _Slot(-1)
        return verifier

    async def _verify_warm(self, theorem: Theorem, name: str, sentences: Sequence[str]) -> Verdict:
        verifier = await self._verifier(theorem.header)
        async with verifier.lock:
            try:
                return await asyncio.wait_for(
                    self._verify_in(verifier, theorem, name, sentences), self.config.verify_timeout
                )
            except BaseException:
                # a check cut short leaves answers in flight: the next check (queued on this lock)
                # must start a clean process, never read them
                process, verifier.process = verifier.process, None
                verifier.reset()
                if process is not None:
                    await process.kill()
                raise

    async def _verify_in(self, verifier: _Slot, theorem: Theorem, name: str, sentences: Sequence[str]) -> Verdict:
        if verifier.process is None or not verifier.process.alive:
            await self._spawn(verifier)
        sid = await self._header(verifier, theorem.header, None)
        for sentence in sentences:  # parsed one by one, executed once at the end
            new, error, _ = await self._run(verifier, sid, sentence, execute=False)
            if new is None:
                return Verdict(False, (error,), reason="Coq rejected the proof")
            sid = new
        (goal,) = await self._exchange(verifier, [GOAL_CALL])
        errors = goal.messages("error")
        if not goal.good or errors:
            verifier.dirty = sid
            return Verdict(False, tuple(errors or [goal.failure()]), reason="Coq rejected the proof")
        printed: list[str] = []
        new, error, _ = await self._run(verifier, sid, f"Print Assumptions {name}.", notices=printed)
        if new is None:
            return Verdict(False, (error,), reason="Print Assumptions failed")
        axioms = parse_assumptions("\n".join(printed))
        paths = []
        for axiom in axioms:
            if not locatable(axiom):
                paths.append(axiom)
                continue
            located: list[str] = []
            new, error, _ = await self._run(verifier, new, f"Locate {axiom}.", notices=located)
            if new is None:
                return Verdict(False, (error,), axioms=tuple(axioms), reason=f"cannot locate axiom {axiom}")
            paths.append(parse_locate(located) or axiom)
        return self._audit(paths)

    def _audit(self, axioms: Sequence[str]) -> Verdict:
        extra = sorted(set(axioms) - self.config.allowed_axioms)
        reason = "non-standard axioms: " + ", ".join(extra) if extra else ""
        return Verdict(not extra, (), tuple(axioms), reason=reason)

    # ---- fresh coqc

    async def _coqc(self, text: str) -> tuple[int, list[str]] | None:
        """Compile `text` with a fresh `coqc`: (exit code, output lines naming the file CHECKED_FILE)."""
        with tempfile.TemporaryDirectory(prefix="check-", dir=self._workdir()) as tmp:
            path = Path(tmp) / "Top.v"  # the module is `Top`, as in coqidetop
            path.write_text(text, encoding="utf-8")
            ran = await run_command(
                [self.config.coqc, "-q", str(path)], Path(tmp), self.config.verify_timeout, SETUP_HINT
            )
        if ran is None:
            return None
        code, output = ran
        output = output.replace(f'"{path}"', f'"{CHECKED_FILE}"').replace(str(path), CHECKED_FILE)
        return code, [line for line in output.splitlines() if line.strip()]

    async def _redirected(self, source: str, commands: Sequence[str]) -> list[str | _AuditFailed]:
        """What each of `commands` printed after `source` (which must compile), or why it failed.

        Each command runs as `Redirect "<dir>/out_<i>" <command>`: Coq writes its output into a
        file of its own, in a fresh directory of random name inside our private one, so nothing
        the source prints (an `idtac`, its own `Print Assumptions`) can be read as the command's.
        A command that fails is reported on its own and the others are run again without it.
        """
        prefix = source if source.endswith("\n") else source + "\n"
        first_line = prefix.count("\n") + 1
        results: dict[int, str | _AuditFailed] = {}
        pending = list(range(len(commands)))
        with tempfile.TemporaryDirectory(prefix="audit-", dir=self._workdir()) as tmp:
            out = Path(tmp) / secrets.token_hex(16)
            quoted = str(out).replace('"', '""')  # a Coq string
            while pending:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(mode=0o700)
                text = prefix + "".join(f'Redirect "{quoted}/out_{i}" {commands[i]}\n' for i in pending)
                ran = await self._coqc(text)
                if ran is None:
                    results.update({i: _AuditFailed("coqc timed out") for i in pending})
                    break
                code, lines = ran
                if code == 0:
                    for i in pending:
                        file = out / f"out_{i}.out"
                        printed = file.read_text(encoding="utf-8") if file.is_file() else None
                        results[i] = printed if printed is not None else _AuditFailed(f"{commands[i]} printed nothing")
                    break
                line, message = _error_at(lines)
                k = line - first_line
                if not 0 <= k < len(pending):
                    why = "coqc rejected the file: " + " ".join(message[-3:])
                    results.update({i: _AuditFailed(why) for i in pending})
                    break
                error = (
                    " ".join(m.strip() for m in message[1:] if not m.startswith("File ")).removeprefix("Error: ")
                    or "Coq error"
                )
                results[pending.pop(k)] = _AuditFailed(error)
        return [results[i] for i in range(len(commands))]

    async def _axioms(self, source: str, paths: Sequence[str]) -> dict[str, list[str] | str]:
        """Each theorem's axioms as full paths (by `Locate`), from `source` (which must compile);
        or why they could not be read. `paths` are full paths (`Top.M.t`): no name can shadow them."""
        printed = await self._redirected(source, [f"Print Assumptions {p}." for p in paths])
        result: dict[str, list[str] | str] = {}
        for path, out in zip(paths, printed, strict=True):
            result[path] = parse_assumptions(out) if isinstance(out, str) else f"Print Assumptions failed: {out.why}"
        short = sorted({a for axioms in result.values() if isinstance(axioms, list) for a in axioms if locatable(a)})
        if not short:
            return result
        located = await self._redirected(source, [f"Locate {a}." for a in short])
        full = {
            a: parse_locate(out.splitlines()) or a
            for a, out in zip(short, located, strict=True)
            if isinstance(out, str)
        }
        for path, axioms in result.items():
            if isinstance(axioms, list):
                lost = [a for a in axioms if locatable(a) and a not in full]
                result[path] = f"cannot locate axiom {lost[0]}" if lost else [full.get(a, a) for a in axioms]
        return result

    def _audited(self, axioms: list[str] | str) -> Verdict:
        return Verdict(False, reason=axioms) if isinstance(axioms, str) else self._audit(axioms)

    async def check_source(self, source: str, paths: Sequence[str]) -> list[TheoremCheck]:
        """Compile `source` with a fresh `coqc` and audit `Print Assumptions` of each of `paths`
        (full paths, `Top.M.t`)."""
        ran = await self._coqc(source)
        if ran is None:
            return [TheoremCheck(p, Verdict(False, reason="coqc timed out")) for p in paths]
        code, lines = ran
        if code != 0:
            failed = Verdict(False, tuple(lines), reason=f"coqc rejected the file (exit {code})")
            return [TheoremCheck(p, failed) for p in paths]
        axioms = await self._axioms(source, paths)
        return [TheoremCheck(p, self._audited(axioms[p])) for p in paths]

    async def check_file(self, text: str) -> list[TheoremCheck]:
        """Check each theorem of a file on its own (a fresh `coqc` per round).

        A theorem whose proof fails is reported with Coq's message (naming the file CHECKED_FILE,
        with the file's own line numbers) and is then admitted, so the theorems after it are still
        checked; one that uses it shows it among its axioms and is not accepted either.
        """
        try:
            spans = sentence_spans(text)
        except TheoremStartError as exc:
            return [TheoremCheck(d.name or d.kind, Verdict(False, reason=str(exc))) for d in declarations(text, "coq")]
        theorems = _proof_blocks(text, spans)
        verdicts: dict[int, Verdict] = {}
        for i, block in enumerate(theorems):
            if block.closing is None:
                verdicts[i] = Verdict(False, reason="the proof is not closed (no Qed)")
            elif block.closing.startswith("Abort"):  # an Admitted one is audited: it is its own axiom
                verdicts[i] = Verdict(False, reason="the proof ends with Abort")
        for _ in range(2 * len(theorems) + 2):  # each round settles a theorem or cuts the text shorter
            source = _admit(text, [theorems[i] for i in verdicts if theorems[i].closing is not None])
            ran = await self._coqc(source)
            if ran is None:
                for i in range(len(theorems)):
                    verdicts.setdefault(i, Verdict(False, reason="coqc timed out"))
                break
            code, lines = ran
            if code == 0:
                break
            line, message = _error_at(lines)
            culprit = next(
                (i for i, b in enumerate(theorems) if i not in verdicts and b.first_line <= line <= b.last_line), None
            )
            if culprit is not None:
                verdicts[culprit] = Verdict(False, tuple(message), reason="Coq rejected the proof")
                continue
            # the file fails outside every open theorem: what comes after it cannot be checked
            for i, b in enumerate(theorems):
                if b.last_line >= line or line < 0:
                    verdicts.setdefault(i, Verdict(False, tuple(message), reason=f"the file fails at line {line}"))
            text = text[: _line_offset(text, line)] if line > 0 else ""
            if all(i in verdicts for i in range(len(theorems))):
                break
        else:
            for i in range(len(theorems)):
                verdicts.setdefault(i, Verdict(False, reason="coqc kept rejecting the file"))
        todo = [i for i in range(len(theorems)) if i not in verdicts]
        if todo:  # each theorem by its full path; one that cannot be audited fails alone
            source = _admit(text, [theorems[i] for i in verdicts if theorems[i].closing is not None])
            axioms = await self._axioms(source, [theorems[i].path for i in todo])
            for i in todo:
                audited = axioms[theorems[i].path]
                if isinstance(audited, str):  # at the theorem's own line, never past the file's end
                    where = f'File "{CHECKED_FILE}", line {theorems[i].first_line}: {audited}'
                    verdicts[i] = Verdict(False, (where,), reason=audited)
                else:
                    verdicts[i] = self._audit(audited)
        return [TheoremCheck(b.name, verdicts[i]) for i, b in enumerate(theorems)]

    async def close(self) -> None:
        await super().close()
        for header in list(self._verifiers):
            await self._drop_verifier(header)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


@dataclass(frozen=True, slots=True)
class _Block:
    """A theorem of a checked file: its name (qualified by its Modules), its full path, the span
    from its statement's end to its proof's end."""

    name: str
    path: str
    statement_end: int
    end: int
    closing: str | None  # the sentence that ends the proof (Qed., Admitted., ...), None if none
    first_line: int
    last_line: int


def _proof_blocks(text: str, spans: Sequence[tuple[int, int]]) -> list[_Block]:
    """The theorems of a file: each sentence that is a declaration (`Module M. Theorem t ...` on
    one line included; one inside a comment never), named by the Modules open around it."""
    blocks = []
    modules = modules_at_each(text, spans)
    for k, (a, b) in enumerate(spans):
        decl = next(iter(declarations(text[a:b], "coq")), None)
        if decl is None or decl.start != 0:
            continue
        close = next((j for j in range(k + 1, len(spans)) if _PROOF_END.match(text[slice(*spans[j])])), None)
        end = spans[close][1] if close is not None else len(text)
        closing = text[slice(*spans[close])] if close is not None else None
        first, last = text.count("\n", 0, a) + 1, text.count("\n", 0, end) + 1
        name = ".".join((*modules[k], decl.name or decl.kind))
        blocks.append(_Block(name, f"{LIBRARY}.{name}", b, end, closing, first, last))
    return blocks


def _admit(text: str, blocks: Sequence[_Block]) -> str:
    """`text` with these theorems' proofs replaced by `Admitted.`, keeping every line number."""
    for b in sorted(blocks, key=lambda b: b.statement_end, reverse=True):
        if b.end <= len(text):
            text = (
                text[: b.statement_end] + " Admitted." + "\n" * text.count("\n", b.statement_end, b.end) + text[b.end :]
            )
    return text


def _error_at(lines: Sequence[str]) -> tuple[int, list[str]]:
    """The line of coqc's error (-1 if it names none) and the error's message lines."""
    for i in range(len(lines) - 1, -1, -1):
        m = re.match(r'^File "[^"]*", line (\d+)', lines[i])
        if m and any(line.startswith("Error") for line in lines[i + 1 : i + 3]):
            return int(m.group(1)), list(lines[i:])
    return -1, list(lines)


def _line_offset(text: str, line: int) -> int:
    """Offset of the start of 1-based `line`."""
    offset = 0
    for _ in range(line - 1):
        offset = text.find("\n", offset) + 1
        if offset == 0:
            return len(text)
    return offset


def parse_locate(lines: Sequence[str]) -> str | None:
    """The full path `Locate` prints first for a constant (`Constant Coq.Logic.Classical_Prop.classic`).
    A long path is printed on the indented line below `Constant`: continuation lines are joined."""
    entries: list[str] = []
    for line in "\n".join(lines).splitlines():
        if line[:1].isspace() and entries:
            entries[-1] += " " + line.strip()
        elif line.strip():
            entries.append(line.strip())
    for entry in entries:
        m = re.match(r"^Constant\s+(\S+)", entry)
        if m:
            return m.group(1)
    return None


def parse_assumptions(output: str) -> list[str]:
    """What `Print Assumptions` lists (nothing for "Closed under the global context").

    Every unindented line of a section (`Axioms:`, `Section Variables:`, ...) starts an entry:
    `name : type`, or a long `name` alone with its type on the indented lines below, or a sentence
    (`f is assumed to be guarded.`), which is kept whole so that no allowlist can match it.
    """
    axioms: list[str] = []
    in_block = False
    for line in output.splitlines():
        if not line.strip() or line[0].isspace() or line.startswith(":"):
            continue  # a type's continuation lines (or a section variable's `: type`)
        if re.fullmatch(r"[A-Z]\w*(?: \w+)*:", line.rstrip()):
            in_block = True  # a section header: `Axioms:`, `Section Variables:`
            continue
        if in_block:
            m = re.match(r"^([\w.']+)(?: :|$)", line.rstrip())
            axioms.append(m.group(1) if m else line.strip())
    return axioms


def locatable(axiom: str) -> bool:
    """True for a name `Locate` can resolve (not a sentence such as `f is assumed to be guarded.`)."""
    return re.fullmatch(r"[\w.']+", axiom) is not None
