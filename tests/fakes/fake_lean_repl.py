#!/usr/bin/env python3
"""A fake Lean REPL with its own small model of Lean, speaking the REPL's wire protocol.

Nothing here comes from recorded third-party data: the theorems and tactic rules are ours
(generic rules below, goal-specific ones in tests/data/lean/fake_repl_rules.json). What is
faithful to the real REPL (leanprover-community/repl at v4.32.0) is the protocol:
- framing: request lines up to a whitespace-only line, trailing whitespace stripped and joined
  with nothing between them; a request starting with `#` or `--` is skipped; each answer is a
  pretty-printed JSON object followed by a blank line;
- `{"cmd", "env"?}`: Lean errors are `messages` (a new `env` is still returned), each tactic
  `sorry` yields a `proofState`; `{"tactic", "proofState"}` answers `proofState`, `goals`,
  `messages`/`sorries` when non-empty and `proofStatus`; exceptions thrown by a tactic are a bare
  `{"message": "Lean error:\\n..."}`; unknown ids are "Unknown environment." / "Unknown proof state.";
  `env`/`proofState` ids are indices into ever-growing arrays (nothing is ever freed);
- tactic mode parses exactly ONE tactic (`runParserCategory tactic`): `a; b` or two tactics on two
  lines answer "<input>:L:C: expected end of input"; `(a; b)` and `a <;> b` are one tactic;
- heartbeats: a theorem's proof states inherit the `maxHeartbeats` option in force at its command
  (`set_option maxHeartbeats N in theorem ...` or the env's `set_option`, default 200000, 0 = no
  limit); each tactic request gets a fresh budget; a runaway tactic runs forever without a limit
  and otherwise answers Lean's heartbeat error. A tactic-level `set_option maxHeartbeats N in tac`
  changes only the options, not the limit (as in Lean's `elabSetOption` tactic).
  `--tactic-heartbeats default` models the other reading of recent Lean sources:
  `ContextInfo.runCoreM` builds the proof state's `Core.Context` without the options, so tactic
  mode always runs under Lean's default limit, whatever the header or command says;
- `import` costs time and resident memory (a ballast), and so does `unpickleEnvFrom` (it calls
  `importModules`); a missing or corrupt pickle kills the process (the REPL does not catch it);
- `#print axioms NAME` answers an info message `'NAME' depends on axioms: [...]`.

Test hooks: `--runaway TACTIC` (a tactic that never finishes by itself), `--hang-on TACTIC`
(sleeps whatever the limit), `--hang-on-cmd TEXT`, `--exit-on TACTIC`, `--exit-on-cmd TEXT`,
`--exit-after-requests N`, `--bloat-on TACTIC` (allocates 200 MiB), `--axioms NAME=a,b`, one-shot
`--die-after TEXT` / `--hang-before TEXT` (armed while the `--marker` file exists),
`--fail-start`, `--import-seconds`, `--import-mb`, `--state-kb`, `--heartbeat-rate`, `--log FILE`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

RULES = Path(__file__).resolve().parents[1] / "data" / "lean" / "fake_repl_rules.json"
PICKLE_MAGIC = "fake-lean-repl-pickle/1"
DEFAULT_HEARTBEATS = 200000
STANDARD_AXIOMS = ["propext", "Classical.choice", "Quot.sound"]
HEARTBEAT_ERROR = (
    "(deterministic) timeout at `whnf`, maximum number of heartbeats ({n}) has been reached\n\n"
    "Note: Use `set_option maxHeartbeats <num>` to set the limit.\n\n"
    "Hint: Additional diagnostic information may be available using the `set_option diagnostics true` command."
)
KNOWN_MODULES = {"Mathlib", "Lean", "Init", "Std", "Aesop", "Batteries"}
KNOWN_CONSTANTS = {
    "Prop", "Type", "Sort", "True", "False", "Nat", "Int", "Real", "Rat", "Complex", "Finset", "Set",
    "And", "Or", "Not", "Iff", "Eq", "List", "Function", "Polynomial", "Real.sqrt", "Real.pi", "Nat.Prime",
    "Finset.range", "Finset.sum", "Int.floor", "Nat.factorial", "Real.log", "Real.exp", "Real.cos", "Real.sin",
}  # fmt: skip
TACTICS = {
    "exact", "apply", "intro", "intros", "constructor", "rfl", "norm_num", "simp", "linarith", "nlinarith",
    "omega", "ring", "decide", "subst", "sorry", "admit", "assumption", "trivial", "try", "all_goals",
    "set_option", "field_simp", "positivity", "simp_all", "aesop", "rw", "refine", "use", "cases", "induction",
    "have", "show", "calc", "exact?", "skip", "done", "nlinarith!", "polyrith", "interval_cases", "push_cast",
}  # fmt: skip
CLOSERS = {"norm_num", "simp", "decide", "linarith", "omega", "ring", "nlinarith", "positivity", "simp_all"}


class Die(Exception):
    """An uncaught exception in the REPL: it prints it and exits."""


class TacticError(Exception):
    """A tactic threw: the REPL answers `{"message": "Lean error:\\n..."}`."""


class Recovered(Exception):
    """An elaboration error Lean logs and recovers from: the goal is closed with `sorry`."""


# --------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class Goal:
    hyps: tuple[tuple[str, str], ...]
    target: str
    case: str | None = None

    def render(self) -> str:
        lines = [f"case {self.case}"] if self.case else []
        i = 0
        while i < len(self.hyps):
            names, kind = [self.hyps[i][0]], self.hyps[i][1]
            while i + 1 < len(self.hyps) and self.hyps[i + 1][1] == kind:
                i += 1
                names.append(self.hyps[i][0])
            lines.append(f"{' '.join(names)} : {kind}")
            i += 1
        lines.append(f"⊢ {self.target}")
        return "\n".join(lines)

    def without_case(self) -> str:
        return replace(self, case=None).render()

    def hyp(self, name: str) -> str | None:
        for n, t in reversed(self.hyps):
            if n == name:
                return t
        return None


def norm(text: str) -> str:
    return " ".join(text.split())


def split_top(text: str, sep: str) -> list[str]:
    """Split at `sep` outside brackets (and, for `;`, not as part of `<;>`)."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            if sep == ";" and (text[max(0, i - 2) : i] == "<;" or text[i - 1 : i] == "<"):
                i += 1
                continue
            if sep == ";" and text.startswith(";>", i):
                i += 1
                continue
            out.append(text[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    out.append(text[start:])
    return out


def strip_parens(text: str) -> str:
    """The inside of `( seq )`, the `(` replaced by a space so that columns are kept."""
    t = text.rstrip()
    while t.strip().startswith("(") and t.endswith(")"):
        lead = len(t) - len(t.lstrip())
        if _matching(t, lead) != len(t) - 1:
            break
        t = (" " * (lead + 1) + t[lead + 1 : -1]).rstrip()
    return t


def _matching(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] in "([{⟨":
            depth += 1
        elif text[i] in ")]}⟩":
            depth -= 1
            if depth == 0:
                return i
    return -1


def parse_binders(text: str) -> tuple[list[tuple[str, str]], str]:
    """`(a b : T) {c : U} [inst : V] : concl` -> hypotheses and the conclusion."""
    hyps: list[tuple[str, str]] = []
    rest = text.strip()
    while rest and rest[0] in "({[⦃":
        close = {"(": ")", "{": "}", "[": "]", "⦃": "⦄"}[rest[0]]
        depth, end = 0, -1
        for i, c in enumerate(rest):
            if c == rest[0]:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    end = i
                    break
        if end < 0:
            raise SyntaxError("unterminated binder")
        inner = rest[1:end]
        names, colon, kind = inner.partition(" : ")
        if not colon:
            names, kind = "inst✝", inner
        for name in names.split():
            hyps.append((name, norm(kind)))
        rest = rest[end + 1 :].strip()
    if not rest.startswith(":"):
        raise SyntaxError("expected ':'")
    return hyps, norm(rest[1:])


# --------------------------------------------------------------------------- the model


@dataclass
class Env:
    imports: tuple[str, ...] = ()
    options: dict[str, int] = field(default_factory=dict)
    decls: dict[str, list[str]] = field(default_factory=dict)  # name -> axioms


@dataclass
class ProofSnap:
    goals: tuple[str, ...]
    heartbeats: int  # the limit in force (thousands), 0 = none
    name: str
    sorry: bool = False  # the proof term so far contains a sorry


class Model:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rules: dict[str, dict[str, dict]] = {}
        data = json.loads(RULES.read_text()) if RULES.is_file() else {"rules": []}
        for rule in data["rules"]:
            self.rules.setdefault(norm(rule["goal"]), {})[norm(rule["tactic"])] = rule
        self.axioms_override = {}
        for item in args.axioms:
            name, _, names = item.partition("=")
            self.axioms_override[name] = [a for a in names.split(",") if a]
        self.envs: list[Env] = []
        self.states: list[ProofSnap] = []
        self.ballast: list[bytearray] = []

    # ---- ids

    def new_env(self, env: Env) -> int:
        self.envs.append(env)
        return len(self.envs) - 1

    def new_state(self, snap: ProofSnap) -> int:
        self.states.append(snap)
        if self.args.state_kb:
            self.ballast.append(bytearray(b"\x01" * (self.args.state_kb * 1024)))  # kept forever, as in the REPL
        return len(self.states) - 1

    def import_modules(self, modules: tuple[str, ...]) -> None:
        """What `importModules` costs: time and resident memory (mmapped .oleans count in RSS)."""
        for module in modules:
            big = module.split(".")[0] == "Mathlib"
            time.sleep(self.args.import_seconds * (1.0 if big else 0.1))
            mb = self.args.import_mb if big else max(1, self.args.import_mb // 10)
            self.ballast.append(bytearray(b"\x01" * (mb * 1024 * 1024)))

    # ---- commands

    def command(self, cmd: str, env_id: int | None) -> dict:
        if env_id is not None and not 0 <= env_id < len(self.envs):
            return {"message": "Unknown environment."}
        base = self.envs[env_id] if env_id is not None else Env()
        env = Env(base.imports, dict(base.options), dict(base.decls))
        messages: list[dict] = []
        sorries: list[dict] = []
        lines = cmd.split("\n")
        chunks = self.chunks(lines)
        imports: list[str] = []
        for start, text in chunks:
            head = text.split()[0] if text.split() else ""
            if head == "import":
                if env_id is not None or any(c[0] < start and c[1].split()[0] != "import" for c in chunks):
                    messages.append(
                        msg("error", "invalid 'import' command, it must be used in the beginning of the file", start)
                    )
                    continue
                for module in text.split()[1:]:
                    if module in self.args.broken_module:  # what a partial build cache looks like
                        where = f".lake/packages/mathlib/.lake/build/lib/lean/{module.replace('.', '/')}.olean"
                        messages.append(msg("error", f"object file {where} of module {module} does not exist", start))
                    elif module.split(".")[0] not in KNOWN_MODULES:
                        messages.append(msg("error", f"unknown module prefix '{module.split('.')[0]}'", start))
                    else:
                        imports.append(module)
            elif head == "set_option" and not re.match(r"^set_option \S+ \S+ in\b", text):
                self.set_option(env.options, text)
            elif head in ("open", "universe", "namespace", "section", "end", "noncomputable", "--", "variable"):
                continue
            elif head == "#print":
                messages.append(self.print_axioms(env, text, start))
            elif head in ("theorem", "lemma", "example", "set_option", "@[simp]", "private", "protected"):
                self.declaration(env, text, start, messages, sorries)
            elif head.startswith("--") or head.startswith("/-"):
                continue
            else:
                messages.append(msg("error", f"unexpected token '{head}'; expected command", start))
        if imports:
            self.import_modules(tuple(imports))
            env.imports = tuple(imports)
        out: dict = {"env": self.new_env(env)}
        if messages:
            out["messages"] = messages
        if sorries:
            out["sorries"] = sorries
        return out

    @staticmethod
    def chunks(lines: list[str]) -> list[tuple[int, str]]:
        """(1-based line, text) of each command: a new one starts at every unindented line."""
        out: list[tuple[int, list[str]]] = []
        pending_option = False
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if line[0] not in " \t" and not pending_option and not line.startswith("·"):
                out.append((i, [line]))
            elif out:
                out[-1][1].append(line)
            pending_option = bool(re.match(r"^set_option \S+ \S+ in\s*$", line))
        return [(i, "\n".join(ls)) for i, ls in out]

    @staticmethod
    def set_option(options: dict[str, int], text: str) -> None:
        parts = text.split()
        if len(parts) >= 3 and parts[2].isdigit():
            options[parts[1]] = int(parts[2])

    def print_axioms(self, env: Env, text: str, line: int) -> dict:
        name = text.split()[-1]
        if name not in env.decls:
            return msg("error", f"unknown constant '{name}'", line)
        axioms = self.axioms_override.get(name, env.decls[name])
        if not axioms:
            return msg("info", f"'{name}' does not depend on any axioms", line)
        return msg("info", f"'{name}' depends on axioms: [{', '.join(axioms)}]", line)

    def declaration(self, env: Env, text: str, line: int, messages: list[dict], sorries: list[dict]) -> None:
        options = dict(env.options)
        while m := re.match(r"^set_option (\S+) (\d+) in\s+", text):
            options[m.group(1)] = int(m.group(2))
            text = text[m.end() :]
        text = re.sub(r"^(@\[[^\]]*\]\s*|private\s+|protected\s+)+", "", text)
        m = re.match(r"^(theorem|lemma|example)\b\s*", text)
        if m is None:
            messages.append(msg("error", "unexpected token; expected command", line))
            return
        rest = text[m.end() :]
        if m.group(1) == "example":
            name = "_example"
        else:
            name, rest = rest.split(None, 1)[0], rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        statement, sep, proof = rest.partition(":=")
        if not sep:
            messages.append(msg("error", "unexpected end of input; expected ':='", line))
            return
        try:
            hyps, target = parse_binders(statement)
        except SyntaxError as exc:
            messages.append(msg("error", f"unexpected token; {exc}", line))
            return
        bound = {n for n, _ in hyps}
        for ident in re.findall(r"[A-Za-z_][\w.']*", " ".join([target, *(t for _, t in hyps)])):
            known = ident in KNOWN_CONSTANTS or ident.split(".")[0] in bound
            if (ident[0].isupper() or "." in ident) and not known:
                messages.append(msg("error", f"Unknown identifier `{ident}`", line))
                return
        heartbeats = options.get("maxHeartbeats", DEFAULT_HEARTBEATS)  # command mode: the command's options
        if heartbeats and self.args.statement_cost > heartbeats:
            messages.append(msg("error", HEARTBEAT_ERROR.format(n=heartbeats), line))
            return
        # tactic mode: proof states keep the limit of the command's options, or Lean's default
        tactic_heartbeats = heartbeats if self.args.tactic_heartbeats == "options" else DEFAULT_HEARTBEATS
        root = Goal(tuple(hyps), target).render()
        proof = proof.strip()
        snap = ProofSnap((root,), tactic_heartbeats, name)
        axioms: set[str] = set()
        uses_sorry = False
        if proof in ("by sorry", "sorry"):
            ps = self.new_state(snap)
            pos = {"line": line + text.count("\n", 0, text.rfind("sorry")), "column": 0}
            sorries.append({"proofState": ps, "pos": pos, "goal": root, "endPos": {**pos, "column": 5}})
            uses_sorry = True
        elif proof.startswith("by"):
            body = proof[2:]
            tactics = by_block(body)
            goals = snap.goals
            for offset, tactic in tactics:
                try:
                    goals, used, hit_sorry = self.run(goals, tactic, heartbeats)
                except (TacticError, Recovered) as exc:
                    messages.append(msg("error", str(exc), line + offset))
                    axioms.add("sorryAx")
                    goals = ()
                    break
                axioms |= used
                uses_sorry |= hit_sorry
                if not goals:
                    break
            if goals:
                messages.append(msg("error", "unsolved goals\n" + "\n\n".join(goals), line))
                axioms.add("sorryAx")
        elif proof == "rfl" and (
            closed_arithmetic(target) or norm(target.partition(" = ")[0]) == norm(target.partition(" = ")[2])
        ):
            pass  # a closed numeral equation holds by evaluation; `a = a` by reflexivity
        else:
            messages.append(msg("error", f"type mismatch\n  {proof}\nhas a type that is not\n  {target}", line))
            axioms.add("sorryAx")
        if uses_sorry:
            axioms.add("sorryAx")
            messages.append(msg("warning", "declaration uses `sorry`", line))
        if name != "_example" and not any(m["severity"] == "error" for m in messages if m["pos"]["line"] == line):
            env.decls[name] = sorted(axioms)
        elif name != "_example":
            env.decls[name] = sorted(axioms | {"sorryAx"})

    # ---- tactics

    def tactic(self, tactic: str, ps: int) -> dict:
        if not 0 <= ps < len(self.states):
            return {"message": "Unknown proof state."}
        snap = self.states[ps]
        position = single_tactic_error(tactic)
        if position is not None:
            return {"message": f"Lean error:\n<input>:{position[0]}:{position[1]}: expected end of input"}
        messages: list[dict] = []
        try:
            goals, _, hit_sorry = self.run(snap.goals, tactic, snap.heartbeats)
        except TacticError as exc:
            return {"message": f"Lean error:\n{exc}"}
        except Recovered as exc:  # logged at 0:0, the goal is elaborated as `sorry`
            messages.append(msg("error", str(exc), 0))
            messages[-1]["endPos"] = {"line": 0, "column": 0}
            goals, hit_sorry = snap.goals[1:], False
            snap = replace(snap, sorry=True)
        sorry = snap.sorry or hit_sorry
        out: dict = {"proofState": -1, "goals": list(goals)}
        if messages:
            out["messages"] = messages
        if hit_sorry:
            sorried = ProofSnap(snap.goals[:1], snap.heartbeats, snap.name)
            out["sorries"] = [{"proofState": self.new_state(sorried), "goal": snap.goals[0]}]
        status = "Incomplete: open goals remain" if goals else ("Incomplete: contains sorry" if sorry else "Completed")
        out["proofStatus"] = status
        out["proofState"] = self.new_state(ProofSnap(goals, snap.heartbeats, snap.name, sorry))
        return {k: out[k] for k in ("proofState", "goals", "messages", "sorries", "proofStatus") if k in out}

    def run(self, goals: tuple[str, ...], tactic: str, heartbeats: int) -> tuple[tuple[str, ...], set[str], bool]:
        """Run one tactic (or a parenthesised sequence / `<;>` chain): (goals, axioms used, used sorry)."""
        used: set[str] = set()
        flags = {"sorry": False}
        out = self._seq(goals, strip_parens(tactic), heartbeats, used, flags)
        return out, used, flags["sorry"]

    def _seq(self, goals: tuple[str, ...], text: str, hb: int, used: set[str], flags: dict) -> tuple[str, ...]:
        for item in sequence_items(text):
            goals = self._chain(goals, item, hb, used, flags)
        return goals

    def _chain(self, goals: tuple[str, ...], text: str, hb: int, used: set[str], flags: dict) -> tuple[str, ...]:
        parts = split_top(text, "<;>")
        goals = self._atom(goals, parts[0].strip(), hb, used, flags)
        for part in parts[1:]:
            produced = goals
            goals = ()
            for g in produced:
                goals += self._atom((g,), part.strip(), hb, used, flags)
        return goals

    def _atom(self, goals: tuple[str, ...], tactic: str, hb: int, used: set[str], flags: dict) -> tuple[str, ...]:
        inside = strip_parens(tactic)
        items = sequence_items(inside)
        if len(items) > 1:
            return self._seq(goals, inside, hb, used, flags)
        tactic = items[0] if items else ""
        if len(split_top(tactic, "<;>")) > 1:
            return self._chain(goals, tactic, hb, used, flags)
        head = tactic.split()[0] if tactic.split() else ""
        if head == "·" and goals:  # focus: the first goal must be closed by the rest
            left = self._seq(goals[:1], tactic[1:], hb, used, flags)
            if left:
                raise TacticError("unsolved goals\n" + "\n\n".join(left))
            return goals[1:]
        if head not in TACTICS:
            raise TacticError("<input>:1:1: unknown tactic")
        if tactic in self.args.hang_on:
            time.sleep(3600)
        if tactic in self.args.bloat_on:
            self.ballast.append(bytearray(b"\x01" * (200 * 1024 * 1024)))
        if head == "set_option":  # tactic-level: options only, the heartbeat limit is unchanged
            m = re.match(r"^set_option \S+ \S+ in\s+(.*)$", tactic, re.S)
            if m is None:
                raise TacticError("<input>:1:0: expected 'in'")
            return self._seq(goals, m.group(1), hb, used, flags)
        if head == "try":
            try:
                return self._seq(goals, tactic[3:].strip(), hb, used, flags)
            except TacticError:
                return goals
        if head == "all_goals":
            out: tuple[str, ...] = ()
            for g in goals:
                out += self._seq((g,), tactic[len("all_goals") :].strip(), hb, used, flags)
            return out
        if head in ("skip",):
            return goals
        if not goals:
            raise TacticError("no goals to be proved")
        goal = parse_goal(goals[0])
        rule = self.rules.get(norm(goal.without_case()), {}).get(norm(tactic))
        if tactic in self.args.runaway or (rule is not None and rule.get("runaway")):
            self.runaway(hb)
        if rule is not None:
            if "error" in rule:
                raise TacticError(rule["error"])
            used.update(rule.get("axioms", []))
            new = tuple(_with_case(g, goal.case) for g in rule["goals"])
            return new + goals[1:]
        new_goals = self.generic(goal, tactic, head, used, flags)
        return tuple(g.render() for g in new_goals) + goals[1:]

    def runaway(self, heartbeats: int) -> None:
        if heartbeats == 0:
            while True:  # Lean never stops it: only a kill does
                time.sleep(3600)
        time.sleep(heartbeats / self.args.heartbeat_rate)
        raise TacticError(HEARTBEAT_ERROR.format(n=heartbeats))

    def generic(self, goal: Goal, tactic: str, head: str, used: set[str], flags: dict) -> list[Goal]:
        args = tactic[len(head) :].strip()
        target = goal.target
        if head in ("sorry", "admit"):
            flags["sorry"] = True
            return []
        if head in ("exact", "assumption", "trivial"):
            if head == "trivial" and target == "True":
                return []
            if head == "assumption":
                if any(t == target for _, t in goal.hyps):
                    return []
                raise TacticError("Tactic `assumption` failed\n\n" + goal.render())
            term = args
            base, _, proj = term.partition(".")
            kind = goal.hyp(base)
            if kind is None and term not in ("True.intro", "rfl", "trivial"):
                raise Recovered(f"Unknown identifier `{base}`")
            if term in ("True.intro", "trivial") and target == "True":
                return []
            if term == "rfl":
                return self.rfl(goal)
            assert kind is not None
            if proj:
                sides = split_top(strip_parens(kind), "∧")
                if len(sides) < 2:
                    raise TacticError(f"Invalid projection: `{term}`")
                kind = norm(sides[0]) if proj in ("left", "1") else norm("∧".join(sides[1:]))
            if norm(strip_parens(kind)) == norm(strip_parens(target)):
                return []
            raise TacticError(
                f"Type mismatch\n  {term}\nhas type\n  {kind} : Prop\nbut is expected to have type\n  {target} : Prop"
            )
        if head in ("constructor",) or tactic in ("apply And.intro", "refine ⟨?_, ?_⟩"):
            sides = split_top(strip_parens(target), "∧")
            if len(sides) < 2:
                raise TacticError(f"Tactic `{head}` failed: no applicable constructor\n\n" + goal.render())
            left, right = norm(sides[0]), norm("∧".join(sides[1:]))
            return [Goal(goal.hyps, strip_parens(left), "left"), Goal(goal.hyps, strip_parens(right), "right")]
        if head == "apply":
            kind = goal.hyp(args)
            if kind is None:
                raise TacticError(f"Unknown identifier `{args}`")
            parts = split_top(kind, "→")
            if len(parts) >= 2 and norm(strip_parens(parts[-1])) == norm(strip_parens(target)):
                return [Goal(goal.hyps, strip_parens(norm(p)), goal.case) for p in parts[:-1]]
            raise TacticError(f"Tactic `apply` failed: could not unify\n  {kind}\nwith the goal\n  {target}")
        if head == "intro":
            parts = split_top(target, "→")
            if len(parts) < 2 or not args:
                raise TacticError("Tactic `intro` failed: no additional binders or let bindings")
            return [Goal((*goal.hyps, (args.split()[0], norm(parts[0]))), norm("→".join(parts[1:])), goal.case)]
        if head == "rfl":
            return self.rfl(goal)
        if head == "subst":
            return [self.subst(goal, args)]
        if head in CLOSERS:
            if closed_arithmetic(target) or any(norm(t) == norm(target) for _, t in goal.hyps):
                used.add("propext")
                return []
            if head in ("linarith", "nlinarith"):
                raise TacticError("linarith failed to find a contradiction\n" + goal.render() + "\n⊢ False failed")
            if head == "omega":
                raise TacticError("omega could not prove the goal")
            raise TacticError(f"{head} failed to prove the goal" if head != "simp" else "simp made no progress")
        raise TacticError(f"{head} failed")

    @staticmethod
    def rfl(goal: Goal) -> list[Goal]:
        lhs, sep, rhs = goal.target.partition(" = ")
        if sep and norm(lhs) == norm(rhs):
            return []
        raise TacticError("The rfl tactic failed. Possible reasons:\n- The goal is not a reflexive relation")

    @staticmethod
    def subst(goal: Goal, name: str) -> Goal:
        kind = goal.hyp(name)
        if kind is None:
            raise TacticError(f"Unknown identifier `{name}`")
        lhs, sep, rhs = kind.partition(" = ")
        if not sep:
            raise TacticError(
                f"Tactic `subst` failed: invalid equality proof, it is not of the form (x = t) or (t = x)\n  {kind}"
            )
        var, value = (lhs, rhs) if goal.hyp(lhs) is not None else (rhs, lhs)
        if goal.hyp(var) is None:
            raise TacticError(f"Tactic `subst` failed: neither side of the equation is a free variable\n  {kind}")
        value = value if re.fullmatch(r"[\w.]+", value) else f"({value})"

        def put(text: str) -> str:
            return re.sub(rf"(?<![\w.']){re.escape(var)}(?![\w'])", value, text)

        hyps = tuple((n, put(t)) for n, t in goal.hyps if n not in (var, name))
        return Goal(hyps, put(goal.target), goal.case)

    # ---- pickles

    def pickle_env(self, path: str, env_id: int) -> dict:
        if not 0 <= env_id < len(self.envs):
            return {"message": "Unknown environment."}
        env = self.envs[env_id]
        payload = {"magic": PICKLE_MAGIC, "imports": env.imports, "options": env.options, "decls": env.decls}
        Path(path).write_text(json.dumps(payload))
        return {"env": env_id}

    def unpickle_env(self, path: str) -> dict:
        try:
            payload = json.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise Die(f"no such file or directory (error code: 2)\n  file: {path}") from exc
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise Die(f"failed to read the compacted region {path}: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("magic") != PICKLE_MAGIC:
            raise Die(f"failed to read the compacted region {path}: bad header")
        self.import_modules(tuple(payload["imports"]))
        env = Env(tuple(payload["imports"]), dict(payload["options"]), dict(payload["decls"]))
        return {"env": self.new_env(env)}


def _with_case(goal_text: str, case: str | None) -> str:
    return f"case {case}\n{goal_text}" if case and not goal_text.startswith("case ") else goal_text


def parse_goal(text: str) -> Goal:
    lines = text.split("\n")
    case = None
    if lines and lines[0].startswith("case "):
        case, lines = lines[0][5:], lines[1:]
    hyps: list[tuple[str, str]] = []
    target_at = next(i for i, line in enumerate(lines) if line.startswith("⊢ "))
    for line in lines[:target_at]:
        names, _, kind = line.partition(" : ")
        hyps.extend((n, kind) for n in names.split())
    return Goal(tuple(hyps), " ".join(" ".join(lines[target_at:])[2:].split()), case)


def closed_arithmetic(target: str) -> bool:
    """A numeral (in)equality with no variables, evaluated exactly."""
    text = target.replace("≤", "<=").replace("≥", ">=").replace("≠", "!=").replace("^", "**").replace("(", " ( ")
    if not re.fullmatch(r"[\d\s+\-*/()<>=!.]+", text):
        return False
    text = re.sub(r"(?<![<>=!])=(?!=)", "==", text)
    try:
        from fractions import Fraction

        expr = re.sub(r"(\d+)", r"Fraction(\1)", text)
        return bool(eval(expr, {"Fraction": Fraction, "__builtins__": {}}))  # noqa: S307 - our own test data
    except Exception:
        return False


def sequence_items(text: str) -> list[str]:
    """The tactics of a tactic sequence: split at top-level `;` and at lines that start a tactic."""
    items: list[str] = []
    for part in split_top(text, ";"):
        current: list[str] = []
        for line in part.split("\n"):
            word = line.strip().split()[0] if line.strip() else ""
            new_item = word in TACTICS or word == "·"
            if current and new_item and _indent(line) <= _indent(current[0]):
                items.append("\n".join(current))
                current = []
            if line.strip():
                current.append(line)
        if current:
            items.append("\n".join(current))
    return [i.strip() for i in items if i.strip()]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def single_tactic_error(tactic: str) -> tuple[int, int] | None:
    """Where `runParserCategory tactic` stops with "expected end of input", if it does."""
    text = tactic.strip()
    if text.startswith("(") and _matching(text, 0) == len(text) - 1:
        return None
    if text.startswith("set_option") and re.match(r"^set_option \S+ \S+ in\s", text):
        return None
    depth = 0
    lines = tactic.split("\n")
    first_col = _indent(lines[0]) if lines[0].strip() else 0
    for lineno, line in enumerate(lines, 1):
        if lineno > 1 and depth == 0 and line.strip():
            word = line.strip().split()[0]
            if (word in TACTICS or word == "·") and _indent(line) <= max(first_col, 0):
                return lineno, _indent(line)
        for col, c in enumerate(line):
            if c in "([{⟨":
                depth += 1
            elif c in ")]}⟩":
                depth -= 1
            elif c == ";" and depth == 0 and line[col - 1 : col] != "<" and line[col + 1 : col + 2] != ">":
                return lineno, col
    return None


def by_block(body: str) -> list[tuple[int, str]]:
    """(line offset, tactic) of the tactics of `by ...` in command mode (a tacticSeq)."""
    lines = body.split("\n")
    out: list[tuple[int, str]] = []
    if lines[0].strip():
        for item in sequence_items(lines[0].strip()):
            out.append((0, item))
    rest = [(i, line) for i, line in enumerate(lines[1:], 1) if line.strip()]
    if not rest:
        return out
    col = _indent(rest[0][1])
    current: tuple[int, list[str]] | None = None
    for offset, line in rest:
        if _indent(line) <= col:
            if current is not None:
                out.extend((current[0], t) for t in sequence_items("\n".join(current[1]).strip()))
            current = (offset, [line[col:]])
        elif current is not None:
            current[1].append(line[col:])
    if current is not None:
        out.extend((current[0], t) for t in sequence_items("\n".join(current[1]).strip()))
    return out


def msg(severity: str, data: str, line: int, column: int = 0) -> dict:
    return {
        "pos": {"line": line, "column": column},
        "endPos": {"line": line, "column": column + 1},
        "severity": severity,
        "data": data,
    }


def read_request(stream) -> str | None:
    """The REPL's `getLines`: lines up to a whitespace-only one, trailing whitespace stripped, joined."""
    parts: list[str] = []
    while True:
        line = stream.readline()
        if not line:
            return "".join(parts) if parts else None
        if not line.strip():
            if parts:
                return "".join(parts)
            continue
        parts.append(line.rstrip())


def answer(model: Model, request: dict) -> dict:
    args = model.args
    if "tactic" in request and "proofState" in request:
        tactic = request["tactic"]
        if tactic in args.exit_on:
            sys.exit(1)
        return model.tactic(tactic, request["proofState"])
    if "pickleTo" in request and "env" in request:
        return model.pickle_env(request["pickleTo"], request["env"])
    if "unpickleEnvFrom" in request:
        return model.unpickle_env(request["unpickleEnvFrom"])
    if "pickleTo" in request and "proofState" in request:
        ps = request["proofState"]
        if not 0 <= ps < len(model.states):
            return {"message": "Unknown proof State."}
        snap = model.states[ps]
        Path(request["pickleTo"]).write_text(json.dumps({"magic": PICKLE_MAGIC, "goals": snap.goals}))
        status = "Incomplete: open goals remain" if snap.goals else "Completed"
        return {"proofState": model.new_state(snap), "goals": list(snap.goals), "proofStatus": status}
    if "cmd" in request:
        cmd = request["cmd"]
        if any(text in cmd for text in args.hang_on_cmd):
            time.sleep(3600)
        if any(text in cmd for text in args.exit_on_cmd):
            sys.exit(1)
        return model.command(cmd, request.get("env"))
    return {"message": "Could not parse as a valid JSON command:\nunsupported request"}


def armed(args: argparse.Namespace, query: str, texts: list[str]) -> bool:
    """Whether a one-shot hook fires on this request (and disarm it)."""
    if args.marker is None or not args.marker.exists():
        return False
    request = json.loads(query)
    text = request.get("cmd") or request.get("tactic") or ""
    if any(t in text for t in texts):
        args.marker.unlink(missing_ok=True)
        return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runaway", action="append", default=[], help="a tactic that runs until heartbeats stop it")
    ap.add_argument("--hang-on", action="append", default=[], help="a tactic that sleeps whatever the limit")
    ap.add_argument("--hang-on-cmd", action="append", default=[], help="hang on commands containing this text")
    ap.add_argument("--exit-on-cmd", action="append", default=[], help="exit on commands containing this text")
    ap.add_argument("--exit-on", action="append", default=[])
    ap.add_argument("--exit-after-requests", type=int, default=0, help="exit after answering N requests")
    ap.add_argument("--bloat-on", action="append", default=[])
    ap.add_argument("--axioms", action="append", default=[], help="NAME=ax1,ax2 (empty for none)")
    ap.add_argument("--fail-start", action="store_true")
    ap.add_argument("--broken-module", action="append", default=[], help="a module whose .olean is missing")
    ap.add_argument("--import-seconds", type=float, default=0.02, help="seconds to import Mathlib")
    ap.add_argument("--import-mb", type=int, default=20, help="resident MiB an `import Mathlib` adds")
    ap.add_argument("--state-kb", type=int, default=0, help="resident KiB each proof state keeps")
    ap.add_argument("--heartbeat-rate", type=float, default=2_000_000.0, help="thousand heartbeats per second")
    ap.add_argument(
        "--tactic-heartbeats",
        choices=("options", "default"),
        default="options",
        help="the limit in tactic mode: the theorem command's maxHeartbeats option, or always Lean's default",
    )
    ap.add_argument("--statement-cost", type=int, default=0, help="thousand heartbeats to elaborate a statement")
    ap.add_argument("--marker", type=Path, help="arms --die-after/--hang-before while this file exists (once)")
    ap.add_argument("--die-after", action="append", default=[], help="armed: exit after answering a request with it")
    ap.add_argument("--hang-before", action="append", default=[], help="armed: hang on a request with this text")
    ap.add_argument("--log", type=Path)
    args = ap.parse_args()
    if args.fail_start:
        print("fake REPL: failing at start as asked", file=sys.stderr)
        sys.exit(3)
    model = Model(args)
    answered = 0
    while (query := read_request(sys.stdin)) is not None:
        if query.startswith("#") or query.startswith("--"):
            continue
        try:
            request = json.loads(query)
        except json.JSONDecodeError as exc:
            print(f'uncaught exception: {{"message": "Could not parse JSON:\\n{exc}"}}', file=sys.stderr)
            sys.exit(1)
        if args.log:
            with args.log.open("a") as f:
                f.write(json.dumps({"pid": os.getpid(), "request": request}, ensure_ascii=False) + "\n")
        if armed(args, query, args.hang_before):
            time.sleep(3600)
        try:
            response = answer(model, request)
        except Die as exc:
            print(f"uncaught exception: {exc}", file=sys.stderr, flush=True)
            sys.exit(1)
        sys.stdout.write(json.dumps(response, indent=2, ensure_ascii=False) + "\n\n")
        sys.stdout.flush()
        answered += 1
        if armed(args, query, args.die_after):
            sys.exit(1)
        if args.exit_after_requests and answered >= args.exit_after_requests:
            sys.exit(1)


if __name__ == "__main__":
    main()
