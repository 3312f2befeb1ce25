"""The real transformers path with a tiny random Llama built here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from envs.types import ProofState
from prover.generators.base import GeneratorSetupError
from prover.generators.hf import HFGenerator
from prover.generators.prompts import load_prompt
from prover.options import GeneratorOptions
from tests.fakes.tiny_model import build_tiny_llama
from tests.run_cli import prove_coq_example


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("beam", [False, True])
def test_raw_completions_have_sane_logprobs(tiny, beam):
    options = GeneratorOptions(
        generator="hf", model=str(tiny), temperature=0.0 if beam else 1.0, beam=beam, max_new_tokens=8
    )
    gen = HFGenerator(str(tiny), load_prompt("llemma", "coq"), "coq", options)
    raw = gen.complete_sync([gen.prompt.render("n : nat\nn = n"), gen.prompt.render("x")], 3)
    assert len(raw) == 2 and all(len(r) == 3 for r in raw)
    for row in raw:
        for s in row:
            assert 1 <= s.num_tokens <= 8
            # each token's log-probability lies in [log(1/vocab) - slack, 0]
            assert -20 * s.num_tokens < s.logprob < 0 and math.isfinite(s.logprob)
    if beam:
        assert [s.logprob for s in raw[0]] == sorted((s.logprob for s in raw[0]), reverse=True)


async def test_generate_cleans_output(tiny):
    options = GeneratorOptions(generator="hf", model=str(tiny), temperature=1.0, max_new_tokens=6)
    gen = HFGenerator(str(tiny), load_prompt("llemma", "lean4"), "lean4", options)
    out = await gen.generate([ProofState(("⊢ True",)), ProofState(("⊢ False",))], 4)
    assert len(out) == 2
    for row in out:
        assert len(row) <= 4
        assert all(s.tactic == s.tactic.strip() and s.tactic and "---" not in s.tactic for s in row)


def test_missing_model_is_a_clear_error(tmp_path):
    gen = HFGenerator(
        str(tmp_path / "nothing"), load_prompt("llemma", "lean4"), "lean4", GeneratorOptions(generator="hf", model="x")
    )
    with pytest.raises(GeneratorSetupError, match="cannot load model"):
        gen.load()


@pytest.mark.usefixtures("coq_available")
def test_prove_with_the_tiny_model_end_to_end(tiny):
    done = prove_coq_example(
        "false_add",
        "--generator",
        "hf",
        "--model",
        str(tiny),
        "--samples",
        "4",
        "--temperature",
        "1.0",
        "--max-new-tokens",
        "8",
        "--expansions",
        "3",
        "--json",
    )
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "failed" and record["model_calls"] >= 1
    assert record["stop_reason"] in ("expansions", "frontier_exhausted")
    assert record["model_s"] > 0


def test_prove_with_missing_model_exits_2(tmp_path):
    done = prove_coq_example(
        "false_add",
        "--generator",
        "hf",
        "--model",
        str(tmp_path / "none"),
    )
    assert done.returncode == 2 and "cannot load model" in done.stderr


def test_reseeding_makes_sampling_reproducible(tiny):
    options = GeneratorOptions(generator="hf", model=str(tiny), temperature=1.0, max_new_tokens=6)
    gen = HFGenerator(str(tiny), load_prompt("llemma", "lean4"), "lean4", options)
    prompt = [gen.prompt.render("⊢ True")]

    def sample(seed: int) -> list[str]:
        gen.reseed(seed)
        return [s.tactic for s in gen.complete_sync(prompt, 3)[0]]

    assert sample(5) == sample(5)
    assert sample(5) != sample(6)
