"""`prover setup lean`: make the Lean workspace ready (elan, Mathlib's cache, the REPL).

Steps, each with a readable error when something is missing:
1. `elan`/`lake` on PATH (elan installs the toolchain named in `lean-toolchain`);
2. `lake exe cache get` downloads Mathlib's prebuilt .olean files;
3. `lake build repl` builds the REPL;
4. a smoke test through `lake exe repl`: a Lean-only command, then `import Mathlib` with a
   Mathlib tactic, so a broken or partial Mathlib cache is found here, not at the first theorem.

`lake-manifest.json` is not committed: it can only be written by `lake` resolving the
dependencies, which cannot run where this package is developed; Mathlib and the REPL are pinned
to release tags in `lakefile.lean`, and Mathlib's own manifest at its tag pins its dependencies.
`lake` writes the manifest into the workspace at the first setup; keep it to freeze a workspace.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from envs.types import EnvSetupError
from prover.paths import nonempty_path

ELAN_HINT = (
    "install elan first: `curl https://elan.lean-lang.org/elan-init.sh -sSf | sh` "
    "(see https://github.com/leanprover/elan), then open a new shell"
)


def _run(argv: list[str], cwd: Path, what: str) -> str:
    print(f"$ {' '.join(argv)}   # {what}", flush=True)
    try:
        done = subprocess.run(argv, cwd=cwd, text=True, capture_output=True, check=False)
    except OSError as exc:
        raise EnvSetupError(f"cannot run {argv[0]}: {exc}; {ELAN_HINT}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise EnvSetupError(f"`{' '.join(argv)}` failed ({what}):\n" + "\n".join(tail))
    return done.stdout


def workspace_template(name: str) -> Path:
    """`lakefile.lean` / `lean-toolchain`: in the checkout, or where an installed wheel put them."""
    from prover.wiring import PROJECT_ROOT

    for place in (PROJECT_ROOT, Path(sys.prefix) / "share" / "prover"):
        if (place / name).is_file():
            return place / name
    raise EnvSetupError(f"{name} is missing from this install: reinstall the package or pass --workspace")


def setup_lean(workspace: Path) -> None:
    workspace.mkdir(parents=True, exist_ok=True)
    for name in ("lakefile.lean", "lean-toolchain"):
        target = workspace / name
        if not target.exists():
            shutil.copyfile(workspace_template(name), target)
    for tool in ("elan", "lake"):
        if shutil.which(tool) is None:
            raise EnvSetupError(f"`{tool}` was not found on PATH; {ELAN_HINT}")
    _run(["lake", "exe", "cache", "get"], workspace, "download Mathlib's build cache")
    _run(["lake", "build", "repl"], workspace, "build the Lean REPL")
    print("$ lake exe repl   # smoke test: Lean, then `import Mathlib`", flush=True)
    smoke_test(("lake", "exe", "repl"), workspace)
    print(f"Lean workspace ready at {workspace}")


SMOKE_REQUESTS = (
    ("Lean", {"cmd": "example : 1 + 1 = 2 := rfl"}),
    ("Mathlib", {"cmd": "import Mathlib\nexample : 2 + 2 = 4 := by norm_num"}),
)


def smoke_test(cmd: Sequence[str], cwd: Path | None, timeout: float = 1800.0) -> None:
    """Each smoke request, in a REPL of its own (imports need a fresh environment), must elaborate cleanly."""
    from envs.lean_repl import CommandReply, encode_request, parse_reply

    for what, request in SMOKE_REQUESTS:
        try:
            done = subprocess.run(
                list(cmd), cwd=cwd, input=encode_request(request).decode(), text=True, capture_output=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise EnvSetupError(f"the REPL did not answer the {what} smoke test within {timeout:g}s") from exc
        except OSError as exc:
            raise EnvSetupError(f"cannot run `{' '.join(cmd)}`: {exc}; {ELAN_HINT}") from exc
        text = done.stdout.strip()
        try:
            reply = parse_reply(json.loads(text)) if text else None
        except (ValueError, EnvSetupError, RuntimeError):
            reply = None
        if not isinstance(reply, CommandReply):
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise EnvSetupError(f"the REPL did not answer the {what} smoke test (exit code {done.returncode}):\n{tail}")
        if reply.errors:
            hint = (
                " (a broken or missing Mathlib build cache? run `lake exe cache get` again)"
                if what == "Mathlib"
                else ""
            )
            errors = "\n".join(m.render() for m in reply.errors)
            raise EnvSetupError(f"the {what} smoke test failed{hint}:\n{errors}")


def cmd_setup(args: argparse.Namespace) -> int:
    from prover.wiring import default_workspace

    if args.target == "lean":
        setup_lean(args.workspace or default_workspace())
    elif args.target == "coq":
        for tool in ("coqidetop.opt", "coqc"):
            if shutil.which(tool) is None:
                raise EnvSetupError(f"`{tool}` was not found; install Coq (`apt-get install coq` or opam)")
        print("Coq is ready: " + subprocess.run(["coqc", "--version"], capture_output=True, text=True).stdout.strip())
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "setup",
        help="prepare a proof assistant: the Lean workspace or Coq",
        description="`prover setup lean` checks elan/lake, fetches Mathlib's cache and builds the "
        "REPL in the workspace; `prover setup coq` checks the Coq install.",
    )
    p.add_argument("target", choices=("lean", "coq"), help="what to set up")
    p.add_argument(
        "--workspace",
        type=nonempty_path,
        help="Lean workspace directory (default: the project's checkout, else ~/.cache/prover/lean)",
    )
    p.set_defaults(func=cmd_setup)
