from __future__ import annotations

import pytest

from prover.cli import build_parser, resolve_prove_config


def config(*argv: str):
    return resolve_prove_config(build_parser().parse_args(["prove", *argv]))


def test_defaults_are_finite_and_documented():
    c = config()
    budget = c.budget()
    assert budget.max_expansions == 100 and budget.time_limit == 600 and budget.tactic_timeout == 10
    assert c.generator.generator == "automation" and c.env.env == "lean"


def test_llemma_preset_and_explicit_overrides():
    c = config("--preset", "llemma")
    assert (c.search.samples, c.generator.beam, c.generator.temperature, c.search.scorer) == (
        32,
        True,
        0.0,
        "normalized",
    )
    assert (c.search.expansions, c.search.time_limit, c.generator.max_new_tokens) == (100, 600.0, 256)
    c = config("--preset", "llemma", "--samples", "8", "--no-beam")
    assert c.search.samples == 8 and c.generator.beam is False and c.search.scorer == "normalized"


def test_bad_choices_are_rejected():
    with pytest.raises(SystemExit):
        config("--scorer", "random")
    with pytest.raises(SystemExit):
        config("--env", "agda")


def test_setup_without_elan_says_how_to_install(monkeypatch, tmp_path, capsys):
    from prover.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["setup", "lean", "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "elan" in err and "elan-init.sh" in err
    assert (tmp_path / "ws" / "lakefile.lean").is_file() and (tmp_path / "ws" / "lean-toolchain").is_file()


def test_lean_workspace_pins_one_release():
    from prover.wiring import PROJECT_ROOT

    toolchain = (PROJECT_ROOT / "lean-toolchain").read_text().strip()
    version = toolchain.split(":")[1]
    lakefile = (PROJECT_ROOT / "lakefile.lean").read_text()
    assert f'mathlib4" @ "{version}"' in lakefile and f'repl" @ "{version}"' in lakefile


def test_an_installed_wheel_finds_the_workspace_files(monkeypatch, tmp_path):
    import sys

    from prover import setup, wiring

    share = tmp_path / "prefix" / "share" / "prover"
    share.mkdir(parents=True)
    (share / "lakefile.lean").write_text("-- lakefile")
    monkeypatch.setattr(wiring, "PROJECT_ROOT", tmp_path / "site-packages")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    assert setup.workspace_template("lakefile.lean") == share / "lakefile.lean"
    with pytest.raises(Exception, match="missing from this install"):
        setup.workspace_template("lean-toolchain")
