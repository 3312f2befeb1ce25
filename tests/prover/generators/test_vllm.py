"""vLLM: a clear error without it; a real engine run where it is installed (CUDA machines)."""

from __future__ import annotations

import importlib.util

import pytest

from envs.types import ProofState
from prover.generators.base import GeneratorSetupError
from prover.generators.prompts import load_prompt
from prover.generators.vllm_engine import VLLMGenerator
from prover.options import GeneratorOptions
from tests.fakes.tiny_model import build_tiny_llama

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_without_vllm_the_error_says_what_to_install():
    gen = VLLMGenerator("m", load_prompt("llemma", "lean4"), "lean4", GeneratorOptions(generator="vllm"))
    with pytest.raises(GeneratorSetupError, match=r"pip install 'prover\[vllm\]'"):
        gen.load()


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (it needs CUDA)")
async def test_vllm_engine_with_tiny_model(tmp_path):
    model = build_tiny_llama(tmp_path / "tiny")
    options = GeneratorOptions(generator="vllm", model=str(model), temperature=1.0, max_new_tokens=8)
    gen = VLLMGenerator(str(model), load_prompt("llemma", "lean4"), "lean4", options)
    raw = gen.complete_sync([gen.prompt.render("⊢ True")], 3)
    assert len(raw[0]) == 3 and all(s.logprob < 0 for s in raw[0])
    out = await gen.generate([ProofState(("⊢ True",))], 3)
    assert len(out) == 1 and len(out[0]) <= 3
