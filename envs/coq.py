"""Coq through `coqidetop`'s XML protocol (`-main-channel stdfds`), checked with Coq 8.16.

One process holds one linear document of sentences, each with a state id. A tactic
runs by `Edit_at` to its state's id, `Add` of the sentence and `Goal` (which forces
execution and reports errors). `Edit_at` discards later sentences, so a state whose
id left the document is rebuilt by replaying its tactic path from the theorem's root.
A state with no goals left is `proved` only if `Qed.` is accepted.
`verify` runs a fresh `coqc` on the whole file and audits `Print Assumptions`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from envs.pool import Handle, ProcessPool, Slot
from envs.process import ChildProcess, run_command
from envs.tactic_guard import TacticPolicy, check_coq_tactic
from envs.types import (
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
    Verdict,
)

log = logging.getLogger(__name__)

SETUP_HINT = "Coq is needed: install it with `apt-get install coq` (Debian/Ubuntu) or `opam install coq`."
# Axioms of Coq's standard library that a user's header may legitimately import.
STANDARD_AXIOMS = frozenset({
    "Classical_Prop.classic", "FunctionalExtensionality.functional_extensionality_dep",
    "PropExtensionality.propositional_extensionality", "ProofIrrelevance.proof_irrelevance",
    "ClassicalDedekindReals.sig_forall_dec", "ClassicalDedekindReals.sig_not_dec",
    "ClassicalEpsilon.constructive_indefinite_description",
})  # fmt: skip
_BULLET = re.compile(r"^\s*(?:[-+*]+|\{|\})\s*$")


@dataclass(frozen=True, slots=True)
class CoqConfig:
    cmd: tuple[str, ...] = ("coqidetop.opt", "-main-channel", "stdfds")
    coqc: str = "coqc"
    processes: int = 1
    max_restarts: int = 20  # in a row, without a successful call between them
    start_timeout: float = 120.0
    verify_timeout: float = 300.0
    allowed_axioms: frozenset[str] = STANDARD_AXIOMS
    policy: TacticPolicy = field(default_factory=TacticPolicy)


# --------------------------------------------------------------------------- XML


@dataclass(frozen=True, slots=True)
class Answer:
    good: bool
    value: ET.Element
    error: str = ""
    error_state: int | None = None


def _text(elem: ET.Element | None) -> str:
    return "" if elem is None else "".join(elem.itertext())


def parse_answer(raw: bytes) -> tuple[Answer, list[str]]:
    """Split one exchange's bytes into the `<value>` answer and error feedback messages."""
    text = raw.decode(errors="replace").replace("&nbsp;", " ")
    root = ET.fromstring(f"<root>{text}</root>")
    errors: list[str] = []
    for fb in root.iter("feedback"):
        content = fb.find("feedback_content")
        if content is not None and content.get("val") == "message":
            level = content.find("./message/message_level")
            if level is not None and level.get("val") == "error":
                errors.append(_text(content.find("./message/richpp")).strip())
    value = root.find("value")
    if value is None:
        raise EnvError(f"coqidetop answered without a value: {text[:300]}")
    if value.get("val") == "good":
        return Answer(True, value), errors
    sid = value.find("state_id")
    message = _text(value.find("richpp")).strip() or "; ".join(errors) or "Coq error"
    return Answer(False, value, message, int(sid.get("val", "0")) if sid is not None else None), errors


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


def as_sentence(tactic: str) -> str:
    t = tactic.strip()
    if _BULLET.match(t) or t.endswith("."):
        return t
    return t + "."


def split_sentences(text: str) -> list[str]:
    """Split Coq source into sentences (a `.` followed by space or end, outside comments and strings)."""
    out: list[str] = []
    depth = 0
    in_string = False
    start = 0
    i = 0
    while i < len(text):
        two = text[i : i + 2]
        if in_string:
            if text[i] == '"':
                in_string = False
        elif two == "(*":
            depth += 1
            i += 1
        elif two == "*)" and depth:
            depth -= 1
            i += 1
        elif depth == 0 and text[i] == '"':
            in_string = True
        elif (
            depth == 0
            and text[i] == "."
            and (i + 1 == len(text) or text[i + 1].isspace())
            and not text[i - 1 : i] == "."
        ):
            sentence = text[start : i + 1].strip()
            if sentence:
                out.append(sentence)
            start = i + 1
        i += 1
    rest = re.sub(r"\(\*.*?\*\)", "", text[start:], flags=re.S).strip()
    if rest:
        raise TheoremStartError(f"Coq source does not end with a full sentence: {rest[:80]!r}")
    return out


# --------------------------------------------------------------------------- the pool


class _Slot(Slot):
    """One coqidetop process: its document (`chain` of live state ids) and known states."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.chain: list[int] = []
        self.known: dict[tuple[str, Theorem | None, tuple[str, ...]], int] = {}

    def reset(self) -> None:
        self.chain = []
        self.known.clear()

    def alive_sid(self, sid: int) -> bool:
        return sid in self.chain


class CoqIde(ProcessPool[_Slot]):
    """`ProofEnv` over a pool of `coqidetop` processes."""

    language: Language = "coq"
    name = "coqidetop"
    setup_hint = SETUP_HINT

    def __init__(self, config: CoqConfig = CoqConfig()) -> None:
        super().__init__([_Slot(i) for i in range(max(1, config.processes))], config.max_restarts)
        self.config = config

    # ---- protocol

    async def _call(self, slot: _Slot, call: bytes, timeout: float | None) -> tuple[Answer, list[str]]:
        child = await self._ensure_process(slot)

        async def exchange() -> tuple[Answer, list[str]]:
            await child.write(call + b"\n")
            raw = await child.read_until(b"</value>")
            return parse_answer(raw)

        return await asyncio.wait_for(exchange(), timeout)

    async def _ensure_process(self, slot: _Slot) -> ChildProcess:
        if slot.process is not None and slot.process.alive:
            return slot.process
        if slot.process is not None:
            await self._restart(slot, "the process had exited")
        child = ChildProcess(self.config.cmd, None, SETUP_HINT)
        await child.start()
        slot.process = child
        answer, _ = await self._call(slot, b'<call val="Init"><option val="none"/></call>', self.config.start_timeout)
        if not answer.good:
            raise EnvSetupError(f"coqidetop refused Init: {answer.error}")
        sid = answer.value.find("state_id")
        slot.chain = [int(sid.get("val", "1")) if sid is not None else 1]
        slot.known.clear()
        return child

    async def _edit_at(self, slot: _Slot, sid: int) -> None:
        if slot.chain and slot.chain[-1] == sid:
            return
        answer, _ = await self._call(slot, f'<call val="Edit_at"><state_id val="{sid}"/></call>'.encode(), 60)
        if not answer.good:
            raise EnvError(f"Edit_at {sid} failed: {answer.error}")
        del slot.chain[slot.chain.index(sid) + 1 :]

    async def _add(self, slot: _Slot, sentence: str, sid: int, timeout: float) -> tuple[int | None, str, Goals | None]:
        """Add `sentence` after `sid` and execute it: (new sid, "", goals) or (None, error, None)."""
        await self._edit_at(slot, sid)
        answer, errors = await self._call(slot, add_call(sentence, sid), timeout)
        if not answer.good:
            await self._edit_at(slot, sid)
            return None, answer.error, None
        sid_elem = answer.value.find("./pair/state_id")
        if sid_elem is None:
            raise EnvError("coqidetop answered Add without a state id")
        new_sid = int(sid_elem.get("val", "0"))
        slot.chain.append(new_sid)
        goal_answer, goal_errors = await self._call(slot, b'<call val="Goal"><unit/></call>', timeout)
        if not goal_answer.good or errors or goal_errors:
            await self._edit_at(slot, sid)
            return None, goal_answer.error if not goal_answer.good else "; ".join(errors + goal_errors), None
        return new_sid, "", parse_goals(goal_answer.value)

    # ---- theorem roots

    async def _root(self, slot: _Slot, theorem: Theorem, timeout: float) -> tuple[int, Goals | None]:
        await self._ensure_process(slot)
        header_key = ("header", None, (theorem.header,))
        header_sid = slot.known.get(header_key)
        if header_sid is None or not slot.alive_sid(header_sid):
            sid = slot.chain[0]
            for sentence in split_sentences(theorem.header):
                new, error, _ = await self._add(slot, sentence, sid, timeout)
                if new is None:
                    raise TheoremStartError(f"the header sentence {sentence!r} failed: {error}")
                sid = new
            header_sid = slot.known[header_key] = sid
        sentences = [*split_sentences(theorem.statement), "Proof."]
        sid = header_sid
        goals = None
        for sentence in sentences:
            new, error, goals = await self._add(slot, sentence, sid, timeout)
            if new is None:
                raise TheoremStartError(f"{theorem.name}: {sentence[:80]!r} failed: {error}")
            sid = new
        slot.known[("root", theorem, ())] = sid
        return sid, goals

    # ---- ProofEnv

    def _check(self, tactic: str) -> str | None:
        return check_coq_tactic(tactic, self.config.policy)

    async def _open(self, slot: _Slot, theorem: Theorem) -> tuple[int, tuple[str, ...]]:
        sid, goals = await self._root(slot, theorem, self.config.start_timeout)
        if goals is None or not goals.foreground:
            raise TheoremStartError(f"{theorem.name}: Coq opened no goal for the statement")
        return sid, goals.foreground

    async def _resolve(self, slot: _Slot, handle: Handle, timeout: float) -> int:
        if handle.generation == slot.generation and slot.alive_sid(handle.ref):
            return handle.ref
        key = ("path", handle.theorem, handle.path)
        known = slot.known.get(key)
        if known is not None and slot.alive_sid(known):
            return known
        sid, _ = await self._root(slot, handle.theorem, timeout)
        for i, tactic in enumerate(handle.path):
            new, error, _ = await self._add(slot, as_sentence(tactic), sid, timeout)
            if new is None:
                raise EnvError(f"replaying step {i + 1} of {handle.theorem.name} failed: {error}")
            sid = new
        slot.known[key] = sid
        return sid

    async def _step(self, slot: _Slot, handle: Handle, tactic: str, timeout: float) -> TacticResult:
        sid = await self._resolve(slot, handle, timeout)
        new, error, goals = await self._add(slot, as_sentence(tactic), sid, timeout)
        if new is None:
            return Failed(error)
        assert goals is not None
        if goals.given_up:
            return Failed("the tactic gave up on a goal")
        if goals.foreground or goals.background:
            shown = goals.foreground or tuple("(unfocused)\n" + g for g in goals.background)
            return Progress(ProofState(shown, handle.child(slot.generation, new, tactic)))
        qed, error, _ = await self._add(slot, "Qed.", new, timeout)
        if qed is None:
            return Failed(f"no goals left but Qed failed: {error}")
        return Proved("Qed accepted")

    def render_proof(self, theorem: Theorem, proof: Sequence[str]) -> str:
        body = "\n".join("  " + as_sentence(t) for t in proof)
        return f"{theorem.header_block}{theorem.statement.strip()}\nProof.\n{body}\nQed.\n"

    async def verify(self, theorem: Theorem, proof: Sequence[str]) -> Verdict:
        for tactic in proof:
            if (reason := check_coq_tactic(tactic, self.config.policy)) is not None:
                return Verdict(False, reason=f"rejected tactic {tactic!r}: {reason}")
        name = theorem.statement.split()[1] if len(theorem.statement.split()) > 1 else theorem.name
        return (await self.check_source(self.render_proof(theorem, proof), [name]))[0].verdict

    async def check_file(self, text: str) -> list[TheoremCheck]:
        """Compile the whole file once with a fresh `coqc`; each theorem gets its own axioms."""
        names = re.findall(r"^[ \t]*(?:Theorem|Lemma|Corollary|Proposition|Fact|Remark)[ \t]+([^\s:(]+)", text, re.M)
        return await self.check_source(text, names)

    async def check_source(self, source: str, names: Sequence[str]) -> list[TheoremCheck]:
        """Compile `source` with a fresh `coqc` and audit `Print Assumptions` of each of `names`."""
        text = source.rstrip() + "\n" + "".join(f"Print Assumptions {n}.\n" for n in names)
        with tempfile.TemporaryDirectory(prefix="prover-coq-") as tmp:
            path = Path(tmp) / "Check.v"
            path.write_text(text, encoding="utf-8")
            ran = await run_command(
                [self.config.coqc, "-q", str(path)], Path(tmp), self.config.verify_timeout, SETUP_HINT
            )
        if ran is None:
            return [TheoremCheck(n, Verdict(False, reason="coqc timed out")) for n in names]
        code, output = ran
        messages = tuple(line for line in output.splitlines() if line.strip())
        if code != 0:
            failed = Verdict(False, messages, reason=f"coqc rejected the file (exit {code})")
            return [TheoremCheck(n, failed) for n in names]
        per_name = parse_assumptions_by_name(messages, names)
        out = []
        for name in names:
            axioms = per_name.get(name)
            if axioms is None:
                out.append(TheoremCheck(name, Verdict(False, messages, reason="no Print Assumptions output")))
                continue
            extra = sorted(set(axioms) - self.config.allowed_axioms)
            reason = "non-standard axioms: " + ", ".join(extra) if extra else ""
            out.append(TheoremCheck(name, Verdict(not extra, (), tuple(axioms), reason=reason)))
        return out


def parse_assumptions_by_name(lines: Sequence[str], names: Sequence[str]) -> dict[str, list[str]]:
    """Split `Print Assumptions` output: each name's block starts with `Axioms:` or `Closed under...`."""
    blocks: list[list[str]] = []
    for line in lines:
        if line.startswith(("Axioms:", "Closed under the global context")):
            blocks.append([])
        if blocks:
            blocks[-1].append(line)
    return {name: parse_assumptions("\n".join(block)) for name, block in zip(names, blocks, strict=False)}


def parse_assumptions(output: str) -> list[str]:
    """Names listed by `Print Assumptions` (nothing for "Closed under the global context")."""
    axioms: list[str] = []
    in_block = False
    for line in output.splitlines():
        if line.startswith("Axioms:"):
            in_block = True
            continue
        if in_block:
            m = re.match(r"^(\S+) :", line)
            if m:
                axioms.append(m.group(1))
            elif line and not line[0].isspace():
                in_block = False
    return axioms
