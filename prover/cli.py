"""`prover`: prove | check | eval | report | draft | serve | setup. Parses the command line and dispatches.

What a command runs lives elsewhere (`prover.session` owns a run); nothing imports this module.

Exit codes: 0 proved (and verified) / everything checked, 1 not proved, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from envs.types import CHECKED_FILE, EnvSetupError, Theorem
from prover import __version__
from prover.datasets import DatasetError
from prover.options import EnvOptions, add_options, resolve
from prover.paths import check_output_file, nonempty_path, read_text_file
from prover.session import (
    ENV_OF_SUFFIX,
    EXIT_NOT_PROVED,
    EXIT_PROVED,
    EXIT_USAGE,
    ProveConfig,
    Session,
    UsageError,
    add_prove_options,
    default_config,
    resolve_prove_config,
    select_theorem,
)
from search.best_first import SearchProgress, SearchResult

log = logging.getLogger("prover")


class ProgressLine:
    """A live line on stderr: expansions, open states, best score, elapsed."""

    def __init__(self, total: int, name: str, enabled: bool) -> None:
        from tqdm import tqdm

        live = enabled and sys.stderr.isatty()  # a live line only where someone watches
        self.bar = tqdm(total=total, desc=name, unit="exp", disable=not live, file=sys.stderr, leave=False)

    def __call__(self, p: SearchProgress) -> None:
        self.bar.n = p.expansions
        self.bar.set_postfix(open=p.open_states, best=f"{p.best_score:.3f}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


async def prove_one(config: ProveConfig, theorem: Theorem, show_progress: bool) -> SearchResult:
    progress = ProgressLine(config.search.expansions, theorem.name, show_progress)
    try:
        async with Session(config) as session:
            return await session.prove(theorem, on_progress=progress)
    finally:
        progress.close()


def write_tree(result: SearchResult, path: Path) -> None:
    import networkx as nx

    if result.tree is None:
        raise UsageError("no search tree to write (the search did not start)")
    graph = result.tree.to_networkx()
    if path.suffix == ".graphml":
        nx.write_graphml(graph, path)
    else:
        path.write_text(json.dumps(nx.node_link_data(graph, edges="edges"), ensure_ascii=False, indent=1))


def print_result(result: SearchResult, theorem: Theorem, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_record(), ensure_ascii=False))
    elif result.status == "proved":
        axioms = ", ".join(result.verdict.axioms) if result.verdict and result.verdict.axioms else "none"
        print(
            f"proved {theorem.name} (verified by a fresh check; axioms: {axioms}) "
            f"in {result.expansions} expansions, {result.wall_s:.1f}s\n"
        )
        print(result.proof_text)
    else:
        why = result.error or result.stop_reason
        print(
            f"not proved: {theorem.name}: {result.status} ({why}) after {result.expansions} expansions, "
            f"{result.tactic_calls} tactics, {result.wall_s:.1f}s"
        )
        if result.verification_failures:
            print(
                f"warning: {result.verification_failures} proof(s) closed by the assistant failed the fresh "
                "check (a backend bug worth reporting)"
            )
    sys.stdout.flush()


def cmd_prove(args: argparse.Namespace) -> int:
    config = resolve_prove_config(args)
    theorem = select_theorem(config, args.name)
    if args.tree:
        check_output_file(args.tree, "--tree")  # before the search, not after it
    result = asyncio.run(prove_one(config, theorem, show_progress=not args.json))
    print_result(result, theorem, args.json)  # the proof first: extras must never lose it
    code = EXIT_PROVED if result.status == "proved" else EXIT_NOT_PROVED
    if args.tree:
        try:
            write_tree(result, args.tree)
        except (OSError, UsageError) as exc:
            print(f"prover: error: the search tree was not written to {args.tree}: {exc}", file=sys.stderr)
    return code


def cmd_check(args: argparse.Namespace) -> int:
    env_options = resolve(EnvOptions, args)
    path: Path = args.path
    if path.suffix not in (".lean", ".v"):
        raise UsageError(f"{path}: prover check reads a .lean or .v file")
    expected = ENV_OF_SUFFIX[path.suffix]
    if "env" in vars(args) and env_options.env != expected:
        raise UsageError(f"{path}: --env {env_options.env} cannot check a {path.suffix} file (use --env {expected})")
    env_options = EnvOptions(**{**env_options.__dict__, "env": expected})
    text = read_text_file(path, "file")

    async def run() -> list[Any]:
        async with Session(default_config(env_options), generator=False) as session:
            return await session.env.check_file(text)

    checks = asyncio.run(run())
    if not checks:
        raise UsageError(f"{path} declares no theorem")
    if args.json:
        print(
            json.dumps(
                {
                    "file": str(path),
                    "theorems": [
                        {
                            "name": c.name,
                            "proved": c.verdict.accepted,
                            **c.verdict.to_dict(),
                            "messages": [m.replace(CHECKED_FILE, str(path)) for m in c.verdict.messages],
                        }
                        for c in checks
                    ],
                },
                ensure_ascii=False,
            )
        )
    else:
        for c in checks:
            mark = "proved" if c.verdict.accepted else "NOT proved"
            axioms = ", ".join(c.verdict.axioms) or "none"
            print(f"{c.name}: {mark} (axioms: {axioms}){' - ' + c.verdict.reason if c.verdict.reason else ''}")
            for m in c.verdict.messages:  # messages name the file CHECKED_FILE: show the user's path
                print("    " + m.replace(CHECKED_FILE, str(path)).replace("\n", "\n    "))
    return EXIT_PROVED if all(c.verdict.accepted for c in checks) else EXIT_NOT_PROVED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prover",
        description="Best-first proof search with a math language model, checked by a real proof assistant.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prove = sub.add_parser(
        "prove",
        help="prove one theorem and print the verified proof",
        description="Prove one theorem: a miniF2F NAME, --file F --theorem NAME, or "
        "--statement. Exit code 0 proved, 1 not proved, 2 usage/setup error.",
    )
    prove.add_argument("name", nargs="?", help="theorem name (miniF2F, or inside --file)")
    add_prove_options(prove)
    out = prove.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    out.add_argument("--tree", type=nonempty_path, help="write the search tree to FILE (.graphml, otherwise JSON)")
    prove.set_defaults(func=cmd_prove)

    check = sub.add_parser(
        "check",
        help="check a .lean or .v file: proved or not, messages, axioms",
        description="Check every theorem of a file in a fresh proof-assistant process: "
        "errors, sorry, and the axioms each depends on.",
    )
    check.add_argument("path", type=nonempty_path, help="a .lean or .v file")
    add_options(check, EnvOptions, "proof assistant")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    check.set_defaults(func=cmd_check)

    from prover import drafting, evaluate, serve, setup

    evaluate.add_parsers(sub)
    drafting.add_parser(sub)
    serve.add_parser(sub)
    setup.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (UsageError, DatasetError, EnvSetupError, ValueError) as exc:
        print(f"prover: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("prover: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
