from __future__ import annotations

import math

import pytest

from envs.tactic_guard import TacticPolicy
from envs.types import ProofState
from prover.generators.automation import AutomationGenerator
from prover.generators.base import ModelGenerator, SuggestRequest
from prover.generators.postprocess import clean, cut_at_stop
from prover.generators.prompts import load_prompt
from search.best_first import Suggestion


def test_cut_strip_dedupe_filter_topn():
    raw = [
        Suggestion("  simp\n---\nNext", -1.0, 3),
        Suggestion("simp", -1.0, 1),
        Suggestion("", -0.1, 1),
        Suggestion("sorry", -0.01, 1),
        Suggestion("linarith", -2.0, 2),
        Suggestion("ring", -3.0, 1),
    ]
    out = clean(raw, "lean4", 2, stop=("---",))
    assert [s.tactic for s in out] == ["simp", "linarith"]
    assert math.isclose(out[0].logprob, math.log(2 * math.exp(-1.0)))


def test_cut_at_first_of_several_stops():
    assert cut_at_stop("a[GOAL]b\nc", ("\n", "[GOAL]")) == "a"


def test_prompts_by_name_and_file(tmp_path):
    llemma = load_prompt("llemma", "lean4")
    text = llemma.render("x : ℕ\n⊢ x = x")
    assert text.endswith("Tactic state:\n---\nx : ℕ\n⊢ x = x\n---\nNext tactic:\n---\n")
    assert text.startswith("Given the Lean 4 tactic state")
    assert llemma.stop == ("---",)
    assert load_prompt("llmstep", "lean4").render("⊢ P") == "[GOAL]⊢ P[PROOFSTEP]"
    assert "Coq" in load_prompt("llemma", "coq").template
    assert "Isabelle" in load_prompt("llemma", "isabelle").template
    custom = tmp_path / "p.txt"
    custom.write_text("STATE {state} TACTIC")
    assert load_prompt(str(custom), "lean4").render("g") == "STATE g TACTIC"
    with pytest.raises(ValueError):
        load_prompt("llmstep", "coq")
    bad = tmp_path / "bad.txt"
    bad.write_text("no placeholder")
    with pytest.raises(ValueError, match="placeholder"):
        load_prompt(str(bad), "lean4")


class Echo(ModelGenerator):
    """A model stand-in: answers each prompt with scripted continuations, and records the prompts."""

    def __init__(self, outputs, policy=TacticPolicy(), prompt="llmstep"):
        super().__init__(load_prompt(prompt, "lean4"), "lean4", policy)
        self.outputs = outputs
        self.prompts: list[list[str]] = []

    async def _complete(self, prompts, n):
        self.prompts.append(prompts)
        return [[Suggestion(t, lp, 1) for t, lp in self.outputs(p)] for p in prompts]


async def test_the_run_policy_reaches_model_post_processing():
    script = lambda p: [("native_decide", -0.1), ("decide +native", -0.2), ("simp", -1.0)]
    assert [s.tactic for s in await Echo(script).suggest("⊢ P", "", 4)] == ["simp"]
    allowed = Echo(script, TacticPolicy(allow_native_decide=True))
    assert [s.tactic for s in await allowed.suggest("⊢ P", "", 4)] == ["native_decide", "decide +native", "simp"]
    states = [ProofState(("⊢ P",))]
    assert [s.tactic for s in (await allowed.generate(states, 4))[0]] == ["native_decide", "decide +native", "simp"]


def test_make_generator_passes_the_policy(tmp_path):
    from prover.options import EnvOptions, GeneratorOptions
    from prover.wiring import make_generator, tactic_policy

    policy = tactic_policy(EnvOptions(allow_native_decide=True))
    assert policy.allow_native_decide
    for kind in ("hf", "openai"):
        options = GeneratorOptions(generator=kind, model=str(tmp_path), base_url="http://127.0.0.1:9")
        assert make_generator(options, "lean4", policy).policy == policy  # type: ignore[attr-defined]
        assert make_generator(options, "lean4").policy == TacticPolicy()  # type: ignore[attr-defined]
    listed = tmp_path / "tactics.txt"
    listed.write_text("native_decide\nsimp\n")
    auto = GeneratorOptions(tactics=listed)
    assert make_generator(auto, "lean4").tactics == ("simp",)  # type: ignore[attr-defined]
    assert make_generator(auto, "lean4", policy).tactics == ("native_decide", "simp")  # type: ignore[attr-defined]


async def test_automation_lists_pass_the_guard(tmp_path):
    gen = AutomationGenerator("lean4", ["simp", "sorry", "#exit", "native_decide", "stop", "simp\u202e", "linarith"])
    assert gen.tactics == ("simp", "linarith")
    assert [s.tactic for s in await gen.suggest("⊢ P", "", 8)] == ["simp", "linarith"]
    assert [s.tactic for s in (await gen.generate([ProofState(("⊢ P",))], 8))[0]] == ["simp", "linarith"]
    with pytest.raises(ValueError, match="guard"):
        AutomationGenerator("coq", ["admit.", "Show."])


async def test_suggestions_extend_the_prefix_and_use_llmsteps_context():
    def script(prompt):
        if prompt.startswith("[GOAL]"):  # the state prompt
            return [(" h", -0.5), ("", -0.1), (" foo\n[GOAL] junk", -1.0)]
        return [(" from_context\n  next line", -0.2)]  # the file continued from the cursor

    gen = Echo(script)
    requests = [
        SuggestRequest("⊢ P", "exact", "theorem t : P := by\n  "),
        SuggestRequest("⊢ Q", "  apply"),
    ]
    out = await gen.suggest_many(requests, 8)
    assert gen.prompts == [["[GOAL]⊢ P[PROOFSTEP]exact", "theorem t : P := by\n  exact", "[GOAL]⊢ Q[PROOFSTEP]  apply"]]
    assert [s.tactic for s in out[0]] == ["exact", "exact from_context", "exact h", "exact foo"]
    assert [s.tactic for s in out[1]] == ["apply", "apply h", "apply foo"]  # leading blanks of a prefix aside
    assert all(s.tactic.startswith(r.prefix.lstrip()) for r, ss in zip(requests, out, strict=True) for s in ss)
    spaced = await gen.suggest_many([SuggestRequest("⊢ P", "exact ")], 8)
    assert [s.tactic for s in spaced[0]] == ["exact  h", "exact  foo"]  # "exact" does not extend "exact "


async def test_allow_native_decide_reaches_the_generator_of_a_run(tmp_path):
    from prover.options import GeneratorOptions
    from prover.session import Session, generator_config

    listed = tmp_path / "tactics.txt"
    listed.write_text("native_decide\nsimp\n")
    for allow, expected in ((False, ["simp"]), (True, ["native_decide", "simp"])):
        config = generator_config(GeneratorOptions(tactics=listed), "lean4", allow)
        async with Session(config, env=False, concurrency=1) as session:
            out = await session.generator.generate([ProofState(("⊢ P",))], 4)
        assert [s.tactic for s in out[0]] == expected
