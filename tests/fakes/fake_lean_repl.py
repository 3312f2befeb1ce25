#!/usr/bin/env python3
"""A fake Lean REPL that replays the real REPL's recorded answers over stdin/stdout.

It reads requests with the REPL's framing (lines up to a blank line, joined with
nothing between them) and answers with the recorded pretty-printed JSON and a blank
line. `env` and `proofState` numbers are its own and are translated to and from the
recorded ones, so any client sequence that the transcripts cover can be replayed.
States with the same goal text share recorded tactics, whatever session they came from.

What it synthesises (shapes all taken from the transcripts):
- a header-only command (imports, `open`, `set_option`) answers `{"env": n}`;
- a whole proof `STATEMENT := by\\n  tac...` is checked by walking the recorded
  tactic answers from the statement's `by sorry` state; `Completed` gives a clean
  `{"env": n}`, anything else an `unsolved goals` error message;
- `#print axioms NAME` answers an info message; the axioms are `--axioms NAME=a,b`;
- pickling writes a small JSON file.

Test hooks: `--hang-on TACTIC`, `--hang-on-cmd TEXT`, `--exit-on TACTIC`, `--exit-on-cmd TEXT`,
`--bloat-on TACTIC` (allocates 200 MiB), `--fail-start`, `--log FILE` (one JSON line per request).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

DEFAULT_TRANSCRIPTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "lean-repl" / "transcripts.jsonl"
HEADER_LINE = re.compile(r"^\s*(import|open|set_option|universe|--)\b|^\s*$")


def goals_key(goals: list[str] | str) -> str:
    return goals if isinstance(goals, str) else "\n\n".join(goals)


class Replay:
    def __init__(self, records: list[dict], axioms: dict[str, list[str]]) -> None:
        self.axioms = axioms
        self.commands: dict[str, tuple[str, dict]] = {}
        # (goal text, tactic) -> (session, recorded response)
        self.tactics: dict[tuple[str, str], tuple[str, dict]] = {}
        recorded_goals: dict[tuple[str, int], str] = {}
        for rec in sorted(records, key=lambda r: (r["session"], r["step"])):
            session, req, resp = rec["session"], rec["request"], rec["response"]
            for s in resp.get("sorries", []):
                recorded_goals[(session, s["proofState"])] = s["goal"]
            if "cmd" in req:
                self.commands.setdefault(req["cmd"].strip(), (session, resp))
            elif "tactic" in req:
                src = recorded_goals.get((session, req["proofState"]))
                if src is not None:
                    self.tactics.setdefault((src, req["tactic"].strip()), (session, resp))
                if "goals" in resp:
                    recorded_goals[(session, resp["proofState"])] = goals_key(resp["goals"])
        self.envs = 0
        self.states: list[str] = []  # our proofState id -> goal text

    def new_env(self) -> int:
        self.envs += 1
        return self.envs - 1

    def new_state(self, goal: str) -> int:
        self.states.append(goal)
        return len(self.states) - 1

    def translate(self, resp: dict) -> dict:
        out = json.loads(json.dumps(resp))
        for s in out.get("sorries", []):
            s["proofState"] = self.new_state(s["goal"])
        if "env" in out:
            out["env"] = self.new_env()
        if "proofState" in out and "goals" in out:
            out["proofState"] = self.new_state(goals_key(out["goals"]))
        return out

    def command(self, cmd: str, env: int | None) -> dict:
        if env is not None and env >= self.envs:
            return {"message": "Unknown environment."}
        text = cmd.strip()
        if text in self.commands:
            return self.translate(self.commands[text][1])
        if text.startswith("#print axioms"):
            name = text.split()[-1]
            axioms = self.axioms.get(name, ["propext"])
            data = (
                f"'{name}' depends on axioms: [{', '.join(axioms)}]"
                if axioms
                else f"'{name}' does not depend on any axioms"
            )
            return {"messages": [self.message("info", data, 1, 0)], "env": self.new_env()}
        if all(HEADER_LINE.match(line) for line in text.splitlines()):
            return {"env": self.new_env()}
        whole = self.check_whole_proof(text)
        if whole is not None:
            return whole
        return {
            "messages": [self.message("error", "fake REPL: no recorded answer for this command", 1, 0)],
            "env": self.new_env(),
        }

    @staticmethod
    def message(severity: str, data: str, line: int, column: int) -> dict:
        return {
            "severity": severity,
            "pos": {"line": line, "column": column},
            "endPos": {"line": line, "column": column + 1},
            "data": data,
        }

    def check_whole_proof(self, text: str) -> dict | None:
        head, sep, proof = text.partition(":= by\n")
        if not sep:
            return None
        recorded = self.commands.get(head + ":= by sorry")
        if recorded is None or not recorded[1].get("sorries"):
            return None
        goal = recorded[1]["sorries"][0]["goal"]
        tactics: list[str] = []
        for line in proof.splitlines():
            if line.startswith("   ") and tactics:
                tactics[-1] += "\n" + line[2:]
            elif line.strip():
                tactics.append(line[2:] if line.startswith("  ") else line)
        status = None
        for tactic in tactics:
            step = self.tactics.get((goal, tactic.strip()))
            if step is None or "goals" not in step[1] or step[1].get("messages"):
                status = None
                break
            goal = goals_key(step[1]["goals"])
            status = step[1].get("proofStatus")
        if status == "Completed":
            return {"env": self.new_env()}
        return {"messages": [self.message("error", f"unsolved goals\n{goal}", 1, 0)], "env": self.new_env()}

    def tactic(self, tactic: str, ps: int) -> dict:
        if not 0 <= ps < len(self.states):
            return {"message": "Unknown proof state."}
        found = self.tactics.get((self.states[ps], tactic.strip()))
        if found is None:
            return {"message": "Lean error:\n<input>:1:1: fake REPL has no recorded answer for this tactic"}
        return self.translate(found[1])


def read_request(stream) -> str | None:
    lines: list[str] = []
    for line in stream:
        if not line.strip():
            if lines:
                return "".join(lines)
            continue
        lines.append(line.rstrip())
    return "".join(lines) if lines else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--transcripts", type=Path, default=Path(os.environ.get("PROVER_LEAN_TRANSCRIPTS", DEFAULT_TRANSCRIPTS))
    )
    ap.add_argument("--hang-on", action="append", default=[])
    ap.add_argument("--hang-on-cmd", action="append", default=[], help="hang on commands containing this text")
    ap.add_argument("--exit-on-cmd", action="append", default=[], help="exit on commands containing this text")
    ap.add_argument("--exit-on", action="append", default=[])
    ap.add_argument("--bloat-on", action="append", default=[])
    ap.add_argument("--axioms", action="append", default=[], help="NAME=ax1,ax2 (empty for none)")
    ap.add_argument("--fail-start", action="store_true")
    ap.add_argument("--log", type=Path)
    args = ap.parse_args()
    if args.fail_start:
        print("fake REPL: failing at start as asked", file=sys.stderr)
        sys.exit(3)
    axioms = {}
    for item in args.axioms:
        name, _, names = item.partition("=")
        axioms[name] = [a for a in names.split(",") if a]
    records = [json.loads(line) for line in args.transcripts.read_text().splitlines() if line.strip()]
    replay = Replay(records, axioms)
    ballast: list[bytes] = []
    while (text := read_request(sys.stdin)) is not None:
        request = json.loads(text)
        if args.log:
            with args.log.open("a") as f:
                f.write(json.dumps({"pid": os.getpid(), "request": request}) + "\n")
        if "tactic" in request:
            tactic = request["tactic"]
            if tactic in args.hang_on:
                time.sleep(3600)
            if tactic in args.exit_on:
                sys.exit(1)
            if tactic in args.bloat_on:
                ballast.append(b"\x01" * (200 * 1024 * 1024))  # written, so resident
            response = replay.tactic(tactic, request["proofState"])
        elif "cmd" in request:
            if any(text in request["cmd"] for text in args.hang_on_cmd):
                time.sleep(3600)
            if any(text in request["cmd"] for text in args.exit_on_cmd):
                sys.exit(1)
            response = replay.command(request["cmd"], request.get("env"))
        elif "pickleTo" in request:
            Path(request["pickleTo"]).write_text(json.dumps(request))
            response = (
                {"env": request["env"]} if "env" in request else {"message": "fake REPL: proof states are not pickled"}
            )
        elif "unpickleEnvFrom" in request:
            path = Path(request["unpickleEnvFrom"])
            response = {"env": replay.new_env()} if path.exists() else {"message": f"no such file {path}"}
        else:
            response = {"message": "fake REPL: unsupported request"}
        sys.stdout.write(json.dumps(response, indent=2, ensure_ascii=False) + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
