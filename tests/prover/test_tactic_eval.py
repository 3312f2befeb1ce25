"""Tactic-prediction evaluation (`prover eval --tactics STEPS.jsonl`)."""

from __future__ import annotations

import json

from envs.types import Suggestion
from prover import wiring
from prover.cli import main
from tests.conftest import ROOT

STEPS = ROOT / "tests" / "data" / "coq_steps.jsonl"


def test_tactic_eval_scores_and_closes_its_generator(monkeypatch, tmp_path, capsys):
    closed: list[bool] = []

    class Fixed:
        async def generate(self, states, n):
            return [[Suggestion("lia.", -0.1, 1), Suggestion("intros; lia", -0.5, 3)][:n] for _ in states]

        async def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(wiring, "make_generator", lambda *args, **kwargs: Fixed())
    out = tmp_path / "tp"
    assert main(["eval", "--env", "coq", "--tactic-steps", str(STEPS), "--top-k", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "tactic_summary.json").read_text())
    steps = len(STEPS.read_text().splitlines())
    assert summary["steps"] == steps and 0 < summary["top2"] <= 1
    assert closed == [True]  # a model generator's client or engine is released
    capsys.readouterr()


def test_top_k_and_check_reach_the_resolved_config(monkeypatch, tmp_path, capsys):
    class Fixed:
        async def generate(self, states, n):
            return [[Suggestion("lia.", -0.1, 1)] for _ in states]

        async def close(self) -> None:
            pass

    monkeypatch.setattr(wiring, "make_generator", lambda *args, **kwargs: Fixed())
    out = tmp_path / "tp"
    assert main(["eval", "--env", "coq", "--tactic-steps", str(STEPS), "--top-k", "3", "--out", str(out)]) == 0
    resolved = json.loads((out / "tactic_config.json").read_text())
    assert resolved["top_k"] == 3 and resolved["check"] is False
    assert resolved["eval"]["top_k"] == 3
    capsys.readouterr()


def test_only_the_top_k_suggestions_are_recorded_and_checked(tmp_path, capsys):
    """The automation list gives all of itself whatever n: tactic prediction keeps its k best."""
    tactics = tmp_path / "list.txt"
    tactics.write_text("lia.\nauto.\ntrivial.\nreflexivity.\nintros; lia.\n")
    out = tmp_path / "tp"
    args = ["eval", "--env", "coq", "--tactic-steps", str(STEPS), "--top-k", "2", "--tactics", str(tactics)]
    assert main([*args, "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "tactic_results.jsonl").read_text().splitlines()]
    assert records and all(r["suggestions"] == ["lia.", "auto."] for r in records)
    capsys.readouterr()
