"""Build envs and generators from resolved options. The only place that picks backends."""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from envs.coq import CoqConfig, CoqIde
from envs.lean_repl import LeanRepl, LeanReplConfig
from envs.tactic_guard import TacticPolicy
from envs.types import EnvSetupError, Language, ProofEnv, TacticGenerator
from prover.options import EnvOptions, GeneratorOptions

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "EleutherAI/llemma_7b"


def default_workspace() -> Path:
    """The project's own Lean workspace when run from a checkout, else the cache's."""
    if (PROJECT_ROOT / "lakefile.lean").is_file():
        return PROJECT_ROOT
    return Path(os.environ.get("PROVER_CACHE", Path.home() / ".cache" / "prover")) / "lean"


def env_language(options: EnvOptions) -> Language:
    return {"coq": "coq", "isabelle": "isabelle"}.get(options.env, "lean4")  # type: ignore[return-value]


def tactic_policy(options: EnvOptions) -> TacticPolicy:
    """The run's untrusted-tactic policy: the env and the generator filter with the same one."""
    return TacticPolicy(allow_native_decide=options.allow_native_decide)


def make_env(options: EnvOptions, tactic_timeout: float | None = None) -> ProofEnv:
    """The env `options` name; `tactic_timeout` (the search's) sets Lean's heartbeat limit from the start."""
    policy = tactic_policy(options)
    if options.env == "isabelle":
        from envs.isabelle import IsabelleConfig, PisaIsabelle, parse_ports

        config = IsabelleConfig(
            ports=parse_ports(options.pisa_ports),
            host=options.pisa_host,
            workdir=options.isabelle_workdir,
            policy=policy,
            memory_limit_mb=options.memory_limit_mb,
            verify_port=options.pisa_verify_port,
        )
        if options.isabelle_path is not None:
            config = dataclasses.replace(config, isabelle_path=options.isabelle_path)
        return PisaIsabelle(config)
    if options.env == "leandojo":
        from envs.leandojo import LeanDojoConfig, LeanDojoEnv

        return LeanDojoEnv(LeanDojoConfig(processes=options.processes, policy=policy))
    if options.env == "coq":
        return CoqIde(
            CoqConfig(
                cmd=tuple(shlex.split(options.coq_cmd)),
                processes=options.processes,
                policy=policy,
                memory_limit_mb=options.memory_limit_mb,
            )
        )
    workspace = options.workspace
    if options.repl_cmd:
        cmd = tuple(shlex.split(options.repl_cmd))
    else:
        cmd = ("lake", "exe", "repl")
        workspace = workspace or default_workspace()
        if not (workspace / "lakefile.lean").is_file():
            raise EnvSetupError(f"no Lean workspace at {workspace}: run `prover setup lean` or pass --repl-cmd")
    return LeanRepl(
        LeanReplConfig(
            cmd=cmd,
            workspace=workspace,
            processes=options.processes,
            memory_limit_mb=options.memory_limit_mb,
            policy=policy,
            tactic_timeout=tactic_timeout,
        )
    )


def make_generator(
    options: GeneratorOptions, language: Language, policy: TacticPolicy = TacticPolicy()
) -> TacticGenerator:
    """`policy` is the run's (`tactic_policy(env_options)`): every suggestion passes it."""
    if options.generator == "automation":
        from prover.generators.automation import AutomationGenerator, read_tactic_file

        tactics = read_tactic_file(options.tactics) if options.tactics else None
        return AutomationGenerator(language, tactics, policy)
    from prover.generators.prompts import load_prompt

    prompt = load_prompt(options.prompt, language)
    model = options.model or DEFAULT_MODEL
    if options.generator == "hf":
        from prover.generators.hf import HFGenerator

        return HFGenerator(model, prompt, language, options, policy=policy)
    if options.generator == "vllm":
        from prover.generators.vllm_engine import VLLMGenerator

        return VLLMGenerator(model, prompt, language, options, policy=policy)
    if options.generator == "openai":
        from prover.generators.openai_api import OpenAIGenerator

        return OpenAIGenerator(model, prompt, language, options, policy=policy)
    raise ValueError(f"unknown generator {options.generator!r}")
