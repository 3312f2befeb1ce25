"""Draft, Sketch, Prove: informal statement and proof -> formal sketch -> gaps closed by automation.

1. Draft: the theorem's informal proof (miniF2F's informal data), or one written by the model.
2. Sketch: the model (or `--sketch FILE`) writes a tactic proof whose hard steps are gaps:
   `have h : P := by sorry` in Lean 4, `assert (h : P) by admit.` in Coq; a bare gap closes
   the current goal.
3. Prove: the sketch runs step by step in the proof assistant; each gap is replaced by the
   first closing tactic (the automation list, or `--closers FILE`) that the assistant accepts.
   On Coq the list ends with CoqHammer (`sauto`, `hammer`), as DSP ends with Sledgehammer; the
   Coq prelude (`prover.datasets.coq_prelude`) loads it.
   A complete proof is re-checked by `verify` in a fresh process, like every search result.
"""

from __future__ import annotations

import logging
import re
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envs.types import EnvError, EnvSetupError, Failed, Progress, ProofEnv, Proved, Theorem, TheoremStartError
from prover.generators.prompts import PROMPT_DIR

log = logging.getLogger(__name__)

GAP = {"lean4": "sorry", "coq": "admit", "isabelle": "sorry"}
SKETCH_STOP = ("\n---",)


def split_steps(sketch: str, language: str) -> list[str]:
    """Top-level proof steps. Lean: a line and the more-indented lines under it. Coq: sentences.
    Isabelle: lines."""
    if language == "coq":
        from envs.coq import split_sentences

        return split_sentences(sketch)
    if language == "isabelle":  # Isar: one command per line (`proof -`, `have ...`, `qed`)
        return [line.strip() for line in sketch.splitlines() if line.strip()]
    steps: list[str] = []
    for line in textwrap.dedent(sketch).splitlines():
        if not line.strip():
            continue
        if line[0].isspace() and steps:
            steps[-1] += "\n" + line
        else:
            steps.append(line.rstrip())
    return steps


def gap_pattern(language: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.']){GAP[language]}(?![\w'])")


def fill_gaps(step: str, closer: str, language: str) -> str:
    """`step` with every gap replaced by `closer` (a bare Coq gap keeps its full stop; a Coq closer
    that chains tactics is parenthesised inside a sentence, so `by (intros; lia)` stays one closer)."""
    pattern = gap_pattern(language)
    if language == "coq":
        closer = closer.strip().rstrip(".")
        bare = pattern.sub("", step).strip(" .") == ""
        if not bare and re.search(r"[;|]", closer):
            closer = f"({closer})"
    return pattern.sub(lambda _: closer, step)


@dataclass(slots=True)
class SketchResult:
    status: str  # proved | failed
    sketch: str
    tactics: list[str] = field(default_factory=list)
    gaps: int = 0
    gaps_closed: int = 0
    message: str = ""
    proof: str = ""
    axioms: list[str] = field(default_factory=list)


async def prove_sketch(
    env: ProofEnv, theorem: Theorem, sketch: str, closers: Sequence[str], timeout: float
) -> SketchResult:
    """Run the sketch; close each gap with the first accepted closer; verify a finished proof."""
    language = theorem.language
    try:
        steps = split_steps(sketch, language)
    except TheoremStartError as exc:  # model output that is not even a list of sentences
        return SketchResult("failed", sketch, message=f"malformed sketch: {exc}")
    gap = gap_pattern(language)
    result = SketchResult("failed", sketch, gaps=sum(bool(gap.search(s)) for s in steps))
    if not steps:
        result.message = "the sketch is empty"
        return result
    state = await env.start(theorem)
    for number, step in enumerate(steps, 1):
        has_gap = bool(gap.search(step))
        bare_gap = has_gap and fill_gaps(step, "", language).strip(" .") == ""
        candidates = [fill_gaps(step, c, language) for c in closers] if has_gap else [step]
        outcome: Any = None
        for candidate in candidates:
            outcome = await env.run_tactic(state, candidate, timeout)
            # a bare gap stands for the current goal: its closer must close it, not just succeed
            if bare_gap and isinstance(outcome, Progress) and len(outcome.state.goals) >= len(state.goals):
                outcome = Failed(f"{candidate!r} does not close the goal")
            if isinstance(outcome, (Progress, Proved)):
                result.tactics.append(candidate)
                result.gaps_closed += has_gap
                break
        if not isinstance(outcome, (Progress, Proved)):
            reason = outcome.message if isinstance(outcome, Failed) else f"timed out after {outcome.seconds:g}s"
            kind = "no closer closes the gap in" if has_gap else "fails:"
            result.message = f"step {number} {kind} {step!r}: {reason}"[:2000]
            return result
        if isinstance(outcome, Proved):
            if number < len(steps):
                log.info("%s: proved after step %d of %d", theorem.name, number, len(steps))
            verdict = await env.verify(theorem, result.tactics)
            if not verdict.accepted:
                result.message = f"the fresh check rejected the proof: {verdict.reason}"
                return result
            result.status = "proved"
            result.proof = env.render_proof(theorem, result.tactics)
            result.axioms = list(verdict.axioms)
            return result
        state = outcome.state
    result.message = "the sketch ends with goals left"
    return result


def render_template(name: str, **fields: str) -> str:
    text = (PROMPT_DIR / name).read_text()
    for key, value in fields.items():
        text = text.replace("{" + key + "}", value.strip())
    return text


def sketch_prompt_name(language: str) -> str:
    name = f"dsp_sketch_{language}.txt"
    if not (PROMPT_DIR / name).is_file():
        raise ValueError(f"no sketch prompt for {language}")
    return name


async def write_sketches(generator: Any, theorem: Theorem, samples: int) -> tuple[list[str], str, str]:
    """(sketches, informal proof, where it came from) from a model generator."""
    from prover.generators.postprocess import cut_at_stop

    informal_statement = theorem.informal_statement or theorem.statement
    informal_proof, source = theorem.informal_proof or "", "dataset"
    if not informal_proof:
        drafts = await generator.complete_text(
            [render_template("dsp_draft.txt", informal_statement=informal_statement)], 1
        )
        informal_proof, source = cut_at_stop(drafts[0][0].tactic, SKETCH_STOP).strip(), "model"
    prompt = render_template(
        sketch_prompt_name(theorem.language),
        informal_statement=informal_statement,
        informal_proof=informal_proof or "(none)",
        formal_statement=theorem.statement,
    )
    raw = await generator.complete_text([prompt], samples)
    sketches = []
    for s in sorted(raw[0], key=lambda s: -s.logprob):
        text = cut_at_stop(s.tactic, SKETCH_STOP).strip("\n")
        if text.strip() and text not in sketches:
            sketches.append(text)
    return sketches, informal_proof, source


@dataclass(slots=True)
class DraftResult:
    theorem: str
    status: str
    sketches_tried: int
    best: SketchResult | None
    informal_source: str
    wall_s: float
    error: str = ""

    def to_record(self) -> dict[str, Any]:
        best = self.best
        return {
            "theorem": self.theorem,
            "status": self.status,
            "verified": self.status == "proved",
            "proof": best.proof if best else "",
            "tactics": best.tactics if best else [],
            "sketch": best.sketch if best else "",
            "gaps": best.gaps if best else 0,
            "gaps_closed": best.gaps_closed if best else 0,
            "axioms": best.axioms if best else [],
            "message": best.message if best else self.error,
            "sketches_tried": self.sketches_tried,
            "informal_proof_source": self.informal_source,
            "wall_s": round(self.wall_s, 3),
            "error": self.error,
        }


async def draft_sketch_prove(
    env: ProofEnv,
    theorem: Theorem,
    sketches: Sequence[str],
    closers: Sequence[str],
    timeout: float,
    informal_source: str = "none",
) -> DraftResult:
    """Try sketches in order; the first verified one wins, else the one that got furthest."""
    started = time.monotonic()
    best: SketchResult | None = None
    for tried, sketch in enumerate(sketches, 1):
        result = await prove_sketch(env, theorem, sketch, closers, timeout)
        if result.status == "proved":
            return DraftResult(theorem.name, "proved", tried, result, informal_source, time.monotonic() - started)
        if best is None or len(result.tactics) > len(best.tactics):
            best = result
    return DraftResult(theorem.name, "failed", len(sketches), best, informal_source, time.monotonic() - started)


# --------------------------------------------------------------------------- CLI


def cmd_draft(args: Any) -> int:
    import asyncio
    import dataclasses
    import json

    from prover.datasets import coq_prelude
    from prover.generators.automation import CLOSERS, read_tactic_file
    from prover.options import DraftOptions, resolve, to_jsonable
    from prover.session import EXIT_NOT_PROVED, EXIT_PROVED, Session, UsageError, resolve_prove_config, select_theorem

    config = resolve_prove_config(args)
    draft = resolve(DraftOptions, args)
    theorem = select_theorem(config, args.name)
    if theorem.language == "coq":  # the closers' libraries, CoqHammer included when installed
        theorem = dataclasses.replace(theorem, header=coq_prelude(theorem.header) + theorem.header)
    closers = read_tactic_file(draft.closers) if draft.closers else CLOSERS[theorem.language]
    if draft.sketch is None and config.generator.generator == "automation":
        raise UsageError("draft needs --sketch FILE or a model: --generator hf|vllm|openai --model M")

    async def run() -> DraftResult:
        if draft.sketch is not None:
            try:
                sketches, source = [draft.sketch.read_text(encoding="utf-8")], "none"
            except OSError as exc:
                raise UsageError(f"cannot read {draft.sketch}: {exc}") from exc
        # sketches end at the `---` delimiter of the DSP prompts, whatever --prompt says
        options = dataclasses.replace(config.generator, prompt="llemma")
        # one sketch request at a time (`complete_text` is the model's own, not batched)
        only_env = draft.sketch is not None
        async with Session(config, generator=not only_env, generator_options=options, concurrency=1) as session:
            if draft.sketch is None:
                sketches, _, source = await write_sketches(session.generator, theorem, draft.sketches)
            try:
                return await draft_sketch_prove(
                    session.env, theorem, sketches, closers, config.search.tactic_timeout, source
                )
            except EnvSetupError:
                raise
            except EnvError as exc:  # e.g. the statement does not elaborate
                return DraftResult(theorem.name, "error", 0, None, source, 0.0, error=str(exc))

    result = asyncio.run(run())
    record = result.to_record()
    if args.json:  # with the resolved options, as every results file has them
        resolved = {**to_jsonable(config), "draft": to_jsonable(draft)}
        print(json.dumps({**record, "config": resolved}, ensure_ascii=False))
    elif result.status == "proved":
        print(
            f"proved {theorem.name} from a sketch ({record['gaps_closed']} gaps closed by automation; "
            f"verified by a fresh check)\n"
        )
        print(record["proof"])
    else:
        print(f"not proved: {theorem.name}: {result.sketches_tried} sketch(es) tried; best: {record['message']}")
    return EXIT_PROVED if result.status == "proved" else EXIT_NOT_PROVED


def add_parser(sub: Any) -> None:
    from prover.options import DraftOptions, add_options
    from prover.session import add_prove_options

    p = sub.add_parser(
        "draft",
        help="informal proof -> formal sketch -> gaps closed by automation (Draft, Sketch, Prove)",
        description="Draft, Sketch, Prove. The model writes formal sketches from the theorem's informal statement "
        "and proof (miniF2F's informal data, or a proof it drafts itself); each gap (`sorry` in Lean, "
        "`admit` in Coq) is closed by the first automation tactic the proof assistant accepts; a "
        "finished proof is re-checked in a fresh process. --sketch FILE skips the model.",
    )
    p.add_argument("name", nargs="?", help="theorem name (miniF2F, or inside --file)")
    add_prove_options(p)
    add_options(p, DraftOptions, "drafting")
    p.add_argument_group("output").add_argument(
        "--json", action="store_true", help="print one JSON object (with the resolved options) instead of text"
    )
    p.set_defaults(func=cmd_draft)
