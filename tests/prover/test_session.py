"""`prover.session`: one place builds, batches, reseeds and closes; the module graph has no cycle;
no capability is probed with getattr/hasattr."""

from __future__ import annotations

import ast
import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from envs.leandojo import LeanDojoTheorem
from envs.types import ProofState, TacticGenerator, Theorem
from prover import wiring
from prover.cli import build_parser, main
from prover.generators.batching import BatchingGenerator
from prover.options import EnvOptions, GeneratorOptions
from prover.session import ProveConfig, Session, default_config, resolve_prove_config
from tests.conftest import ROOT
from tests.fakes.scripted import QED, FixedGenerator, ScriptedEnv

ROOMS = ("envs", "search", "prover")
THM = Theorem("t", "theorem t : True :=")


# --------------------------------------------------------------------------- the module graph


def project_modules() -> dict[str, Path]:
    modules = {}
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(path: Path, name: str, known: set[str]) -> Iterator[str]:
    """Every project module `path` imports, at the top or inside functions (TYPE_CHECKING included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from prover import wiring` imports the module prover.wiring
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: set(imported_modules(path, name, known)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_sees_function_local_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = import_graph()
    assert "prover.session" in graph["prover.cli"]
    assert "prover.tactic_eval" in graph["prover.evaluate"]  # imported inside cmd_eval only
    assert "prover.wiring" in graph["prover.session"]  # `from prover import wiring`


def test_no_import_cycle_among_project_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_nothing_imports_the_cli():
    importers = sorted(m for m, deps in import_graph().items() if "prover.cli" in deps)
    assert importers == [], f"{importers} import prover.cli: the CLI only parses and dispatches"


# --------------------------------------------------------------------------- capabilities are contracts

# getattr/hasattr with a literal name, kept on purpose: objects of third-party libraries and argparse
ALLOWED_PROBES = {
    ("envs/leandojo.py", "working_directory"): "lean_dojo's module, patched for a sandbox",
    ("envs/leandojo.py", "serialized"): "lean_dojo's function, patched once",
    ("envs/process.py", "_transport"): "asyncio's private transport, closed on teardown",
    ("prover/generators/hf.py", "max_position_embeddings"): "a transformers model config",
    ("prover/generators/vllm_engine.py", "beam_search"): "vLLM versions differ",
    ("prover/serve.py", "port"): "the argparse namespace",
}


def literal_probes() -> Iterator[tuple[str, str, int]]:
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr")
                    and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)
                ):
                    yield rel, node.args[1].value, node.lineno


def test_no_capability_is_probed_with_getattr_or_hasattr():
    found = [(rel, attr, line) for rel, attr, line in literal_probes() if (rel, attr) not in ALLOWED_PROBES]
    assert found == [], "capability probes (put the capability in the protocol instead): " + ", ".join(
        f"{rel}:{line} {attr!r}" for rel, attr, line in found
    )


def test_every_generator_implements_the_protocol():
    from prover.generators.automation import AutomationGenerator
    from prover.generators.base import ModelGenerator

    members = ("load", "generate", "suggest_many", "reseed", "close")
    for cls in (AutomationGenerator, ModelGenerator, BatchingGenerator):
        missing = [m for m in members if not callable(vars(cls).get(m))]
        assert missing == [], f"{cls.__name__} lacks {missing}"
    assert isinstance(AutomationGenerator("coq"), TacticGenerator)


def test_only_the_session_builds_envs_and_generators():
    builders = {"make_env", "make_generator"}
    callers = set()
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in builders:
                        callers.add(path.relative_to(ROOT).as_posix())
    assert callers == {"prover/session.py"}


# --------------------------------------------------------------------------- the session


@dataclass
class RecordingEnv(ScriptedEnv):
    started: list[Theorem] = field(default_factory=list)

    async def start(self, theorem: Theorem) -> ProofState:
        self.started.append(theorem)
        return await super().start(theorem)


class Built:
    """What `wiring` built for the sessions of a test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, size: int = 1, fail_generator: bool = False) -> None:
        self.envs: list[RecordingEnv] = []
        self.generators: list[FixedGenerator] = []

        def make_env(options: EnvOptions, tactic_timeout: float | None = None) -> RecordingEnv:
            env = RecordingEnv({"root": {"trivial": QED}}, size=size)
            self.envs.append(env)
            return env

        def make_generator(options: GeneratorOptions, language: str, policy: object) -> FixedGenerator:
            if fail_generator:
                raise ValueError("no such model")
            generator = FixedGenerator({}, default=[("trivial", 0.0)])
            self.generators.append(generator)
            return generator

        monkeypatch.setattr(wiring, "make_env", make_env)
        monkeypatch.setattr(wiring, "make_generator", make_generator)


def model_config(seed: int = 7) -> ProveConfig:
    config = default_config()
    return ProveConfig(config.theorem, config.env, GeneratorOptions(generator="openai", seed=seed), config.search)


async def test_a_session_proves_reseeds_per_attempt_and_closes_both(monkeypatch):
    built = Built(monkeypatch)
    async with Session(model_config(seed=7)) as session:
        first = await session.attempt(THM, 0)
        again = await session.attempt(THM, 0)
        other = await session.attempt(THM, 2)
    assert [r["status"] for r in (first, again, other)] == ["proved"] * 3
    assert [first["seed"], other["seed"]] == [7, 9]
    assert built.generators[0].seeds == [7, 9]  # reseeded when the attempt changes, not per search
    assert built.envs[0].closed and built.generators[0].closed


async def test_a_session_closes_both_when_the_run_fails(monkeypatch):
    built = Built(monkeypatch)
    with pytest.raises(RuntimeError, match="boom"):
        async with Session(default_config()):
            raise RuntimeError("boom")
    assert built.envs[0].closed and built.generators[0].closed


async def test_a_generator_that_cannot_be_built_still_closes_the_env(monkeypatch):
    built = Built(monkeypatch, fail_generator=True)
    with pytest.raises(ValueError, match="no such model"):
        async with Session(default_config()):
            pass
    assert built.envs[0].closed


async def test_searches_sharing_a_model_are_batched(monkeypatch):
    built = Built(monkeypatch, size=4)
    async with Session(model_config()) as session:
        assert session.concurrency == 4 and isinstance(session.generator, BatchingGenerator)
        assert session.generator.max_batch == 4
    assert built.generators[0].closed  # closing the batching layer closes the model
    async with Session(model_config(), concurrency=1) as session:
        assert not isinstance(session.generator, BatchingGenerator)
    async with Session(default_config()) as session:  # the automation list has nothing to batch
        assert not isinstance(session.generator, BatchingGenerator)


async def test_a_session_builds_only_what_it_is_asked_for(monkeypatch):
    built = Built(monkeypatch)
    async with Session(default_config(), generator=False) as session:
        assert session.env is built.envs[0]
        with pytest.raises(RuntimeError, match="no generator"):
            session.generator  # noqa: B018
    assert built.generators == [] and built.envs[0].closed


def test_ray_workers_receive_the_theorem_objects(monkeypatch):
    """A LeanDojo theorem keeps its subclass and fields on its way to a worker (it used to be
    rebuilt as a plain `Theorem` from `dataclasses.asdict`)."""
    from prover.ray_eval import _Worker

    built = Built(monkeypatch)
    theorem = LeanDojoTheorem("Demo.t", "", url="https://x/y", commit="abc", file_path="Demo.lean", start=(5, 1))
    worker = _Worker(default_config())
    try:
        record = worker.prove(pickle.loads(pickle.dumps(theorem)), 0)  # what Ray does to an argument
    finally:
        worker.close()
    assert record["status"] == "proved"
    assert built.envs[0].started == [theorem] and isinstance(built.envs[0].started[0], LeanDojoTheorem)
    assert built.envs[0].closed and built.generators[0].closed


# --------------------------------------------------------------------------- options


def test_old_tactics_jsonl_form_points_at_the_new_flag(tmp_path, capsys):
    steps = tmp_path / "steps.jsonl"
    steps.write_text('{"state": "⊢ True", "tactic": "trivial"}\n')
    assert main(["eval", "--env", "coq", "--tactics", str(steps), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--tactic-steps" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_search_options_take_their_defaults_from_the_search():
    from search.best_first import Budget, SearchConfig

    config = resolve_prove_config(build_parser().parse_args(["prove"]))
    assert config.budget() == Budget()
    assert config.search_config() == SearchConfig()


def test_draft_flags_are_options_with_ranges(capsys):
    from prover.options import DraftOptions, resolve

    args = build_parser().parse_args(["draft", "t", "--sketches", "2", "--closers", "c.txt"])
    assert resolve(DraftOptions, args) == DraftOptions(sketch=None, sketches=2, closers=Path("c.txt"))
    assert main(["draft", "t", "--sketches", "0"]) == 2
    assert "sketches" in capsys.readouterr().err


@pytest.mark.usefixtures("coq_available")
def test_draft_json_carries_the_resolved_options():
    from tests.prover.test_drafting import DATA, draft_coq

    sketch = DATA / "dsp_sum_sketch.v"
    done = draft_coq("dsp_sum", "--sketch", str(sketch), "--sketches", "3", "--json")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)["config"]
    assert config["draft"] == {"sketch": str(sketch), "sketches": 3, "closers": None}
    assert config["env"]["env"] == "coq" and config["search"]["tactic_timeout"] > 0


def test_model_generators_overlap_their_next_call_and_the_automation_list_does_not():
    automation = default_config()
    model = ProveConfig(automation.theorem, automation.env, GeneratorOptions(generator="hf"), automation.search)
    assert model.search_config().pipeline and not automation.search_config().pipeline


def test_the_search_tactic_timeout_sets_the_lean_heartbeat_limit_before_any_tactic(tmp_path):
    env = wiring.make_env(EnvOptions(repl_cmd="lean-repl-not-started"), tactic_timeout=3.0)
    assert env.config.heartbeat_limit(10.0) == 3 * env.config.heartbeats_per_second  # type: ignore[attr-defined]
