"""The Coq axiom audit reads each theorem's own `Print Assumptions`, never text a proof printed;
`check_file` names theorems by their Modules and gives each its own verdict (real coqc/coqidetop)."""

from __future__ import annotations

import pytest

from envs.coq import CoqConfig, CoqIde, Reply, modules_at_each, open_scopes, sentence_spans
from envs.types import CHECKED_FILE, Proved, Theorem
from tests.conftest import ROOT

SPOOF = '"Closed under the global context"'
pytestmark = pytest.mark.usefixtures("coq_available")


def checks_of(results) -> dict:
    return {c.name: c.verdict for c in results}


async def test_printed_text_cannot_fool_check_file(coq):
    """Repro B: the file's own `Print Assumptions a.` (or an `idtac` in a proof) printed a block
    that the audit paired with `b`, so `b`, resting on `Axiom myax : False`, was reported proved."""
    text = (ROOT / "tests/data/coq_audit_spoof.v").read_text()
    checks = checks_of(await coq.check_file(text))
    assert list(checks) == ["a", "b", "c", "d"]
    assert checks["a"].accepted and checks["a"].axioms == ()
    for name in ("b", "c", "d"):
        assert not checks[name].accepted, name
        assert checks[name].axioms == ("Top.myax",), name
        assert "Top.myax" in checks[name].reason


async def test_printed_text_cannot_fool_the_fresh_coqc_verify():
    """Repro A: a tactic with a string goes to a fresh coqc, whose output the proof can print into."""
    theorem = Theorem("t", "Theorem t : 1 = 2.", "Axiom myax : False.\n", "coq")
    for config in (CoqConfig(), CoqConfig(warm_verifier=False)):  # `"` sends the default to coqc too
        env = CoqIde(config)
        try:
            verdict = await env.verify(theorem, [f"idtac {SPOOF}; destruct myax"])
            assert not verdict.accepted and verdict.axioms == ("Top.myax",)
            clean = await env.verify(Theorem("u", "Theorem u : 1 = 1.", "", "coq"), [f"idtac {SPOOF}", "reflexivity"])
            assert clean.accepted and clean.axioms == ()
        finally:
            await env.close()


async def test_prove_cli_rejects_a_proof_that_prints_the_closed_message(tmp_path):
    import asyncio
    import json
    import sys

    tactics = tmp_path / "fp.txt"
    tactics.write_text(f"idtac {SPOOF}; apply false_prop\n")
    args = ["--env", "coq", "--file", "tests/data/coq_examples.v", "--theorem", "dsp_sum"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prover.cli", "prove", *args, "--tactics", str(tactics), "--json",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    result = json.loads(out)
    assert result["status"] != "proved" and not result["verified"]
    assert result["axioms"] == ["Top.false_prop"] and result["verification_failures"] == 1


async def test_the_warm_verifier_reads_only_what_print_assumptions_printed(coq, monkeypatch):
    """No `"` in the proof, so it is checked warm; a header tactic prints the spoof while it runs."""
    header = f"Axiom bad : False.\nLtac say := idtac {SPOOF}; idtac {SPOOF.replace('Closed', 'Axioms:')}.\n"
    fresh: list[str] = []

    async def no_coqc(text: str):
        fresh.append(text)
        raise AssertionError("the warm verifier fell back to coqc")

    monkeypatch.setattr(coq, "_coqc", no_coqc)
    verdict = await coq.verify(Theorem("t", "Theorem t : 1 = 2.", header, "coq"), ["say", "destruct bad"])
    assert not verdict.accepted and verdict.axioms == ("Top.bad",) and fresh == []
    clean = await coq.verify(Theorem("u", "Theorem u : 1 = 1.", header, "coq"), ["say", "reflexivity"])
    assert clean.accepted and clean.axioms == ()


def test_reply_messages_of_one_state():
    def feedback(sid: int, level: str, text: str) -> str:
        return (
            f'<feedback object="state" route="0"><state_id val="{sid}"/><feedback_content val="message"><message>'
            f'<message_level val="{level}"/><option val="none"/><richpp><_><pp>{text}</pp></_></richpp>'
            "</message></feedback_content></feedback>"
        )

    raw = feedback(6, "notice", "Closed under the global context") + feedback(8, "notice", "Axioms:\nbad : False")
    reply = Reply.of((raw + '<value val="good"><option val="none"/></value>').encode())
    assert reply.messages("notice", 8) == ["Axioms:\nbad : False"]
    assert reply.messages("notice", 6) == ["Closed under the global context"]
    assert len(reply.messages("notice")) == 2


def test_modules_qualify_names_and_sections_do_not():
    text = (
        "Module A. Module Type T. End T. Section S. Definition s := 0. End S.\n"
        "Module B := A.\nModule Import C (X : T) <: T.\nModule D : T with Definition x := 0.\n"
        "Definition here := 1.\nEnd D. End C. End A. Definition top := 0.\n"
    )
    spans = sentence_spans(text)
    at = dict(zip((text[a:b] for a, b in spans), modules_at_each(text, spans)[:-1], strict=True))
    assert at["Module Type T."] == ("A",) and at["End T."] == ("A", "T") and at["Definition s := 0."] == ("A",)
    assert at["Definition here := 1."] == ("A", "C", "D")
    assert at["Definition top := 0."] == ()
    in_section = dict(zip((text[a:b] for a, b in spans), modules_at_each(text, spans, sections=True), strict=False))
    assert in_section["Definition s := 0."] == ("A", "S") and in_section["Module B := A."] == ("A",)
    assert open_scopes("Module M.\nSection S.\n") == ("M", "S") and open_scopes("") == ()


async def test_check_file_with_modules_gives_each_theorem_its_own_verdict(coq):
    """`Print Assumptions inner.` failed after `End M` and marked every theorem of the file."""
    text = (ROOT / "tests/data/coq_modules.v").read_text()
    checks = checks_of(await coq.check_file(text))
    assert list(checks) == ["before", "M.inner", "M.sec", "M.N.deep", "M.broken", "F.f", "a", "X.a", "after"]
    for name in ("before", "M.inner", "M.sec", "M.N.deep", "X.a", "after"):
        assert checks[name].accepted and checks[name].axioms == (), (name, checks[name])
    broken = checks["M.broken"]  # Coq's own message, at the file's own line
    assert not broken.accepted and broken.messages[0].startswith(f'File "{CHECKED_FILE}", line 12,')
    functor = checks["F.f"]  # a functor's theorem is no constant: it alone cannot be audited
    assert not functor.accepted and functor.reason.startswith("Print Assumptions failed: The reference Top.F.f")
    assert functor.messages == (f'File "{CHECKED_FILE}", line 15: {functor.reason}',)
    # `Import X` makes a bare `a` mean `X.a`, a clean theorem: the audit asks for `Top.a`
    assert not checks["a"].accepted and checks["a"].axioms == ("Top.myax",)


async def test_verify_qualifies_a_theorem_inside_a_module_of_the_header(coq):
    header = "Axiom myax : False.\nModule M.\nSection S.\n"
    assert (await coq.verify(Theorem("t", "Theorem t : True.", header, "coq"), ["exact I"])).accepted
    verdict = await coq.verify(Theorem("f", "Theorem f : 1 = 2.", header, "coq"), ["destruct myax"])
    assert not verdict.accepted and verdict.axioms == ("Top.myax",)


def test_a_string_inside_a_comment_is_lexed_as_coq_lexes_it():
    """`(* "(*" *) X. (* "*)" *)`: Coq sees two comments around the code `X.`, not one comment."""
    text = 'Theorem f : 1 = 2.\nProof.\n  (* "(*" *) Abort. Theorem f : True. Proof. exact I. (* "*)" *)\nQed.\n'
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    assert sentences == ["Theorem f : 1 = 2.", "Proof.", "Abort.", "Theorem f : True.", "Proof.", "exact I.", "Qed."]
    quoted = 'idtac (* "*)" *). exact I.'
    assert [quoted[a:b] for a, b in sentence_spans(quoted)] == ['idtac (* "*)" *).', "exact I."]


async def test_check_file_is_not_fooled_by_code_hidden_between_comments(coq):
    text = 'Theorem f : 1 = 2.\nProof.\n  (* "(*" *) Abort. Theorem f : True. Proof. exact I. (* "*)" *)\nQed.\n'
    checks = await coq.check_file(text)
    false_one = [c for c in checks if c.name.endswith("f")][0]
    assert not false_one.verdict.accepted  # the `1 = 2` theorem is aborted, never proved


async def test_a_proof_hiding_commands_between_comments_is_refused(coq):
    """The search runs only `exact helper .`; coqc would have run `Abort. Theorem f : True. ...` too."""
    header = "Lemma helper : 1 = 2.\nAdmitted.\n"
    theorem = Theorem("f", "Theorem f : 1 = 2.", header, "coq")
    hidden = 'exact helper (* "(*" *) . Abort. Theorem f : True. Proof. exact I (* "*)" *)'
    root = await coq.start(theorem)
    result = await coq.run_tactic(root, hidden, 10)
    assert not isinstance(result, Proved) and "more than one sentence" in getattr(result, "message", "")
    verdict = await coq.verify(theorem, [hidden])
    assert not verdict.accepted
