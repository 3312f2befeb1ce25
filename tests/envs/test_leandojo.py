"""envs/leandojo.py against lean_dojo's real classes, with `Dojo` replaced by tests/fakes/fake_dojo.py.

The repository is a real local git repo (tests/data/leandojo/repo) opened by the real
`LeanGitRepo`; its "trace" is the source copied into an isolated LeanDojo cache.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from envs.leandojo import (
    LeanDojoConfig,
    LeanDojoEnv,
    LeanDojoTheorem,
    axiom_query_name,
    declaration_head,
    parse_axioms,
    split_goals,
)
from envs.tactic_guard import check_tactic
from envs.types import EnvSetupError, Failed, Progress, Proved, Theorem, TheoremStartError, TimedOut, metered
from tests.fakes.fake_dojo import (
    CRASH,
    FINISHED,
    SORRY,
    Error,
    FakeLean,
    Slow,
    Traced,
    fake_lake,
    git_repo,
    install,
    isolated_import,
)
from tests.fakes.fake_dojo import traced_repo as make_traced_repo

pytest.importorskip("lean_dojo", reason="lean-dojo is not installed: pip install -e '.[leandojo]'")

DATA = Path(__file__).resolve().parent.parent / "data" / "leandojo"
ROOT_EQ = "a b : ℕ\nh : a = b\n⊢ b = a"
MID_EQ = "a : ℕ\n⊢ a = a"
CTX = "p q : Prop\nhp : p\nhq : q\n"
ROOT_SWAP = f"{CTX}⊢ q ∧ p"
TWO = f"case left\n{CTX}⊢ q\n\ncase right\n{CTX}⊢ p"
RIGHT = f"case right\n{CTX}⊢ p"


@pytest.fixture(scope="session")
def traced_repo(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    """A local git repo of tests/data/leandojo/repo, and its trace in an isolated LeanDojo cache."""
    return make_traced_repo(DATA / "repo", tmp_path_factory.mktemp("leandojo"))


def script() -> FakeLean:
    return FakeLean(
        roots={"Demo.eq_symm'": ROOT_EQ, "Demo.and_swap": ROOT_SWAP, "Demo.add_zero'": "n k : ℕ\n⊢ n + k = n + k"},
        steps={
            (ROOT_EQ, "subst h"): MID_EQ,
            (MID_EQ, "rfl"): FINISHED,
            (ROOT_EQ, "exact h.symm"): FINISHED,
            (ROOT_EQ, "simp"): Error("simp made no progress"),
            (ROOT_EQ, "exact?"): SORRY,
            (ROOT_EQ, "omega"): Slow(30.0, FINISHED),
            (ROOT_EQ, "norm_num"): CRASH,
            (ROOT_SWAP, "constructor"): TWO,
            (TWO, "· exact hq"): RIGHT,
            (RIGHT, "· exact hp"): FINISHED,
            ("n k : ℕ\n⊢ n + k = n + k", "rfl"): FINISHED,
        },
    )


@pytest.fixture
def lean(traced_repo: Traced, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeLean]:
    with isolated_import(traced_repo.cache) as lean_dojo:
        fake = script()
        install(monkeypatch, lean_dojo, fake)
        fake_lake(monkeypatch, tmp_path / "bin")
        yield fake


def theorem(traced: Traced, name: str = "Demo.eq_symm'", start: tuple[int, int] | None = (5, 1)) -> LeanDojoTheorem:
    return LeanDojoTheorem(name, "", url=traced.url, commit=traced.commit, file_path="Demo/Basic.lean", start=start)


def test_pure_helpers() -> None:
    assert split_goals(TWO) == (f"case left\n{CTX}⊢ q", RIGHT)
    src = "theorem t (n : Nat) (k : Nat := 0) : n + k = n + k := by\n  rfl\n"
    assert declaration_head(src, 0) == "theorem t (n : Nat) (k : Nat := 0) : n + k = n + k :="
    assert declaration_head("theorem t : P := -- a := b\n  x", 0) == "theorem t : P :="
    assert declaration_head("theorem t /- := -/ : P := x", 0) == "theorem t /- := -/ : P :="
    assert declaration_head("theorem f : ∀ n, P n\n  | 0 => a\n  | n + 1 => b := c", 0) is None
    message = "'Demo.t' depends on axioms: [propext, Classical.choice]"
    assert parse_axioms(message, "Demo.t") == ("propext", "Classical.choice")
    assert parse_axioms("'Demo.t' does not depend on any axioms", "Demo.t") == ()
    assert parse_axioms("'Demo.u' does not depend on any axioms", "Demo.t") is None
    assert parse_axioms("'Demo.t'' depends on axioms: [propext]", "Demo.t'") == ("propext",)
    # the last report counts (a proof may print a fake one before `#print axioms` answers), and
    # only about the theorem itself: another namespace's `t` is not `Demo.t`
    faked = "'Demo.t' depends on axioms: [propext]\n'Demo.t' depends on axioms: [Lean.ofReduceBool, propext]"
    assert parse_axioms(faked, "Demo.t") == ("Lean.ofReduceBool", "propext")
    assert parse_axioms("'Mathlib.Other.t' does not depend on any axioms", "Demo.t") is None
    assert parse_axioms("'t' does not depend on any axioms", "_private.Demo.0.t", "t") == ()
    assert axiom_query_name("Demo.t", "theorem t : P :=") == "Demo.t"
    assert axiom_query_name("_private.Demo.Basic.0.Demo.t", "@[simp] private theorem t : P :=") == "t"


async def test_search_steps_map_leandojo_results(lean: FakeLean, traced_repo: Traced) -> None:
    env = LeanDojoEnv()
    try:
        assert env.size == 1
        root = await env.start(theorem(traced_repo))
        assert root.goals == (ROOT_EQ,)
        step = await env.run_tactic(root, "subst h", 5)
        assert isinstance(step, Progress) and step.state.goals == (MID_EQ,)
        assert isinstance(await env.run_tactic(step.state, "rfl", 5), Proved)
        failed = await env.run_tactic(root, "simp", 5)
        assert failed == Failed("simp made no progress")
        given_up = await env.run_tactic(root, "exact?", 5)
        assert isinstance(given_up, Failed) and "sorry" in given_up.message
        assert lean.count("open") == 1  # one Dojo for the theorem, reused by every step
    finally:
        await env.close()
    assert lean.count("close") == 1


async def test_untrusted_tactics_never_reach_lean(lean: FakeLean, traced_repo: Traced) -> None:
    env = LeanDojoEnv()
    try:
        root = await env.start(theorem(traced_repo))
        for tactic in ("sorry", "native_decide", "exact h\ntheorem x : False := sorry", "#eval 1"):
            result = await env.run_tactic(root, tactic, 5)
            assert isinstance(result, Failed) and "rejected" in result.message
        assert lean.tactics_sent() == []
        allowed = LeanDojoEnv(LeanDojoConfig(policy=replace(env.config.policy, allow_native_decide=True)))
        try:
            result = await allowed.run_tactic(await allowed.start(theorem(traced_repo)), "native_decide", 5)
            assert lean.tactics_sent() == ["native_decide"] and isinstance(result, Failed)
        finally:
            await allowed.close()
    finally:
        await env.close()


async def test_timeout_restarts_the_dojo_and_replays_states(lean: FakeLean, traced_repo: Traced) -> None:
    env = LeanDojoEnv()
    try:
        root = await env.start(theorem(traced_repo))
        mid = await env.run_tactic(root, "subst h", 5)
        assert isinstance(mid, Progress)
        with metered() as usage:
            assert await env.run_tactic(root, "omega", 0.5) == TimedOut(0.5)
            # the timed-out Dojo would answer `rfl` with the late answer to `omega`; a new one replays `subst h`
            result = await env.run_tactic(mid.state, "rfl", 5)
        assert isinstance(result, Proved)
        assert (usage.restarts, usage.replays) == (1, 1)
        assert lean.count("open") == 2 and lean.tactics_sent() == ["subst h", "omega", "subst h", "rfl"]
        # a slow tactic within its timeout is fine
        lean.steps[(ROOT_EQ, "linarith")] = Slow(0.01, FINISHED)
        assert isinstance(await env.run_tactic(root, "linarith", 5), Proved)
    finally:
        await env.close()


async def test_crash_is_retried_once_then_failed(lean: FakeLean, traced_repo: Traced) -> None:
    env = LeanDojoEnv()
    try:
        root = await env.start(theorem(traced_repo))
        lean.crash_once.add((ROOT_EQ, "exact h.symm"))
        with metered() as usage:
            assert isinstance(await env.run_tactic(root, "exact h.symm", 5), Proved)
            assert usage.restarts == 1
            result = await env.run_tactic(root, "norm_num", 5)  # crashes every time
        assert isinstance(result, Failed) and "crashed twice" in result.message
        assert usage.restarts == 3
        assert isinstance(await env.run_tactic(root, "subst h", 5), Progress)  # and the env still works
    finally:
        await env.close()


async def test_at_most_processes_dojos_stay_open(lean: FakeLean, traced_repo: Traced) -> None:
    env = LeanDojoEnv(LeanDojoConfig(processes=1))
    try:
        eq = await env.start(theorem(traced_repo))
        mid = await env.run_tactic(eq, "subst h", 5)
        swap = await env.start(theorem(traced_repo, "Demo.and_swap", (13, 1)))
        assert swap.goals == (ROOT_SWAP,) and lean.count("close") == 1  # eq_symm's Dojo made room
        assert isinstance(mid, Progress)
        assert isinstance(await env.run_tactic(mid.state, "rfl", 5), Proved)  # reopened and replayed
        assert lean.count("open") == 3
    finally:
        await env.close()


async def test_verify_is_a_fresh_command_mode_check_with_axioms(lean: FakeLean, traced_repo: Traced) -> None:
    env = LeanDojoEnv()
    thm = theorem(traced_repo)
    try:
        await env.start(thm)
        verdict = await env.verify(thm, ["subst h", "rfl"])
        assert verdict.accepted and verdict.axioms == ("propext",)
        assert ("open_command", "Demo/Basic.lean", 5) in lean.events  # a new Dojo at the theorem's line
        command = next(e[1] for e in lean.events if e[0] == "run_cmd")
        head = "/-- Symmetry of equality, in two steps. -/\ntheorem eq_symm' (a b : Nat) (h : a = b) : b = a :="
        assert command == head + " by\n  subst h\n  rfl\n"  # the traced source's declaration
        assert env.render_proof(thm, ["subst h", "rfl"]) == command
        wrong = await env.verify(thm, ["subst h"])
        assert not wrong.accepted and "unsolved goals" in wrong.messages[0]
        gave_up = await env.verify(thm, ["exact?"])
        assert not gave_up.accepted and "sorryAx" in gave_up.reason
        assert not (await env.verify(thm, ["sorry"])).accepted
        lean.axioms["Demo.eq_symm'"] = ["propext", "Demo.cheat"]
        bad = await env.verify(thm, ["subst h", "rfl"])
        assert not bad.accepted and "Demo.cheat" in bad.reason
        no_start = await env.verify(theorem(traced_repo, start=None), ["exact h.symm"])
        assert not no_start.accepted and "Demo.cheat" in no_start.reason  # checked at the line found in the source
        assert [e for e in lean.events if e[0] == "open_command"][-1] == ("open_command", "Demo/Basic.lean", 5)
        assert lean.count("open_command") == 5  # every check (but the guard-rejected one) had its own Dojo
    finally:
        await env.close()


async def test_a_proof_that_prints_a_fake_axiom_report_is_still_audited(lean: FakeLean, traced_repo: Traced) -> None:
    """The command state's messages accumulate: only what `#print axioms` itself added is read."""
    env = LeanDojoEnv()
    thm = theorem(traced_repo)
    try:
        lean.axioms["Demo.eq_symm'"] = ["propext", "Lean.ofReduceBool"]  # as `native_decide` would leave
        forged = "trace \"'Demo.eq_symm'' depends on axioms: [propext]\""
        assert check_tactic("lean4", forged) is None  # the guard has no reason to refuse a trace
        verdict = await env.verify(thm, [forged, "subst h", "rfl"])
        assert not verdict.accepted and "Lean.ofReduceBool" in (verdict.reason or "")
    finally:
        await env.close()


async def test_setup_errors_say_what_is_missing(
    lean: FakeLean, traced_repo: Traced, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = LeanDojoEnv()
    try:
        with pytest.raises(EnvSetupError, match="--benchmark leandojo"):
            await env.start(Theorem("t", "theorem t : True :="))
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        with pytest.raises(EnvSetupError, match="`lake` is not on PATH.*elan"):
            await env.start(theorem(traced_repo))
    finally:
        await env.close()


async def test_untraced_repo_and_unknown_theorem(lean: FakeLean, traced_repo: Traced, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(DATA / "repo", other)
    commit = git_repo(other)
    env = LeanDojoEnv()
    try:
        untraced = replace(theorem(traced_repo), url=str(other), commit=commit)
        with pytest.raises(EnvSetupError, match="not traced in LeanDojo's cache"):
            await env.start(untraced)
        with pytest.raises(EnvSetupError, match="cannot open the repository"):
            await env.start(replace(theorem(traced_repo), url=str(tmp_path / "nowhere")))
        with pytest.raises(TheoremStartError, match="Demo.nope"):
            await env.start(theorem(traced_repo, "Demo.nope"))
        assert lean.events[-2:] == [("open", "Demo.nope"), ("close",)]  # the failed Dojo's Lean is cleaned up
    finally:
        await env.close()


async def test_without_lean_dojo_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lean_dojo", None)
    env = LeanDojoEnv()
    thm = LeanDojoTheorem("Demo.t", "", url="https://github.com/x/y", commit="0" * 40, file_path="A.lean")
    with pytest.raises(EnvSetupError, match=r"pip install 'prover\[leandojo\]'"):
        await env.start(thm)


async def test_best_first_search_proves_and_verifies(lean: FakeLean, traced_repo: Traced) -> None:
    from prover.generators.automation import AutomationGenerator
    from search.best_first import Budget, best_first_search

    env = LeanDojoEnv()
    try:
        generator = AutomationGenerator("lean4", ["simp", "constructor", "· exact hq", "· exact hp"])
        result = await best_first_search(env, generator, theorem(traced_repo, "Demo.and_swap", (13, 1)), Budget())
        assert result.status == "proved" and result.verified
        assert result.proof == ["constructor", "· exact hq", "· exact hp"]
        assert result.proof_text.startswith("theorem and_swap (p q : Prop) (hp : p) (hq : q) : q ∧ p := by\n")
    finally:
        await env.close()


async def test_concurrent_searches_each_have_their_dojo(lean: FakeLean, traced_repo: Traced) -> None:
    from prover.generators.automation import AutomationGenerator
    from search.best_first import Budget, best_first_search

    env = LeanDojoEnv(LeanDojoConfig(processes=2))
    try:
        assert env.size == 2
        generator = AutomationGenerator("lean4", ["subst h", "rfl", "constructor", "· exact hq", "· exact hp"])
        eq, swap = theorem(traced_repo), theorem(traced_repo, "Demo.and_swap", (13, 1))
        results = await asyncio.gather(
            best_first_search(env, generator, eq, Budget()), best_first_search(env, generator, swap, Budget())
        )
        assert [r.status for r in results] == ["proved", "proved"]
        assert results[0].proof == ["subst h", "rfl"]
        assert lean.count("open") == 2 and lean.count("close") == 2  # only the two fresh checks closed so far
    finally:
        await env.close()
    assert lean.count("close") == 4


def test_overhead_benchmark_runs() -> None:
    """benchmarks/leandojo_overhead.py keeps running (small sizes; figures in benchmarks/README.md)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.leandojo_overhead", "--rounds", "2", "--tactics", "10"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "env - direct, median" in done.stdout


def test_leandojo_chdir_windows_are_serialized(lean: FakeLean, tmp_path: Path) -> None:
    """Dojos open in worker threads and LeanDojo chdirs to spawn Lean: each thread keeps its folder."""
    import threading
    import time

    from envs.leandojo import import_lean_dojo

    import_lean_dojo()
    from lean_dojo.data_extraction import lean as lean_module
    from lean_dojo.interaction import dojo as dojo_module

    seen: list[bool] = []

    def spawn(module: ModuleType, folder: Path) -> None:
        folder.mkdir()
        with module.working_directory(folder):
            time.sleep(0.05)  # another thread would chdir here without the lock
            seen.append(Path.cwd() == folder)

    origin = Path.cwd()
    threads = [
        threading.Thread(target=spawn, args=(module, tmp_path / f"{i}"))
        for i, module in enumerate([dojo_module, lean_module, dojo_module, lean_module])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 4 and Path.cwd() == origin


async def test_dojos_being_opened_count_against_processes(lean: FakeLean, traced_repo: Traced) -> None:
    env = LeanDojoEnv(LeanDojoConfig(processes=2))
    try:
        first = [theorem(traced_repo), theorem(traced_repo, "Demo.and_swap", (13, 1))]
        for t in first:
            await env.start(t)
        # two new theorems open at once: each must make room, though neither Dojo exists yet
        second = [theorem(traced_repo, "Demo.add_zero'", (10, 1)), replace(first[0], start=(5, 1), end=(8, 6))]
        await asyncio.gather(*(env.start(t) for t in second))
        opened = lean.count("open") - lean.count("close")
        assert opened == 2, lean.events
    finally:
        await env.close()


async def test_a_step_cancelled_midway_never_shares_its_dojo(
    lean: FakeLean, traced_repo: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread of a cancelled step goes on talking to its Dojo: the next step must not use that Dojo."""
    import threading
    import time

    busy: dict[int, int] = {}
    overlaps: list[str] = []
    guard = threading.Lock()
    original = LeanDojoEnv._run_tac

    def run_tac(dojo, state, tactic, timeout):  # type: ignore[no-untyped-def]
        with guard:
            if busy.get(id(dojo)):
                overlaps.append(tactic)
            busy[id(dojo)] = busy.get(id(dojo), 0) + 1
        try:
            if tactic == "slow":
                time.sleep(0.5)
            return original(dojo, state, tactic, timeout)
        finally:
            with guard:
                busy[id(dojo)] -= 1

    monkeypatch.setattr(LeanDojoEnv, "_run_tac", staticmethod(run_tac))
    env = LeanDojoEnv()
    try:
        root = await env.start(theorem(traced_repo))
        slow = asyncio.create_task(env.run_tactic(root, "slow", 5))
        await asyncio.sleep(0.1)
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)
        step = await env.run_tactic(root, "subst h", 5)
        assert isinstance(step, Progress) and step.state.goals == (MID_EQ,)
        assert overlaps == []
        await asyncio.sleep(0.6)
    finally:
        await env.close()


async def test_a_start_cancelled_while_the_dojo_opens_closes_it(
    lean: FakeLean, traced_repo: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread opening a Dojo finishes after its caller gave up: that Dojo must still be closed."""
    import time

    original = LeanDojoEnv._enter

    def enter(self, target):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return original(self, target)

    monkeypatch.setattr(LeanDojoEnv, "_enter", enter)
    env = LeanDojoEnv()
    try:
        starting = asyncio.create_task(env.start(theorem(traced_repo)))
        await asyncio.sleep(0.1)
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if lean.count("open") and lean.count("close") == lean.count("open"):
                break
        assert lean.count("open") == 1 and lean.count("close") == 1
    finally:
        await env.close()


async def test_a_replay_that_answers_differently_fails_the_candidate_not_the_env(
    lean: FakeLean, traced_repo: Traced
) -> None:
    env = LeanDojoEnv()
    try:
        root = await env.start(theorem(traced_repo))
        mid = await env.run_tactic(root, "subst h", 5)
        assert isinstance(mid, Progress)
        assert await env.run_tactic(root, "omega", 0.5) == TimedOut(0.5)  # the Dojo is replaced
        lean.steps[(ROOT_EQ, "subst h")] = Error("subst failed this time")  # so the replay diverges
        result = await env.run_tactic(mid.state, "rfl", 5)
        assert isinstance(result, Failed) and "replaying step 1" in result.message
        assert isinstance(await env.run_tactic(root, "exact h.symm", 5), Proved)  # the env still works
    finally:
        await env.close()


async def test_a_multi_tactic_candidate_runs_as_one_grouped_tactic(lean: FakeLean, traced_repo: Traced) -> None:
    """LeanDojo parses one tactic per `run_tac`: `subst h; rfl` is sent as `(subst h; rfl)`."""
    env = LeanDojoEnv()
    thm = theorem(traced_repo)
    try:
        root = await env.start(thm)
        for candidate in ("subst h; rfl", "subst h\nrfl"):
            assert isinstance(await env.run_tactic(root, candidate, 5), Proved), candidate
        assert "(subst h; rfl)" in lean.tactics_sent() and "(subst h\n rfl)" in lean.tactics_sent()
        assert "  (subst h; rfl)\n" in env.render_proof(thm, ["subst h; rfl"])
        assert (await env.verify(thm, ["subst h; rfl"])).accepted
    finally:
        await env.close()
