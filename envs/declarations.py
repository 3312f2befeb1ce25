"""Theorem declarations: the one place that reads a theorem's name out of its statement.

One function per language, each tested on every declaration form it accepts:
- Lean 4: `theorem|lemma NAME` after optional docstring, attributes (`@[simp]`) and modifiers
  (`private`, `protected`, `nonrec`, `noncomputable`); names may be dotted, carry `'`, `!`,
  `?`, subscripts, or be `«quoted»`; `example` has no name.
- Coq: `Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark NAME` after optional
  `Local`/`Global`/`#[...]`; the name may be followed directly by `:` (`Theorem t2: ...`).
- Isabelle: `theorem|lemma NAME [attrs]:`; an unnamed `lemma "..."` has no name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from envs.types import Language

_LEAN_NAME = r"(?:«[^»]*»|[^\s:({\[⦃«»,]+)(?:\.(?:«[^»]*»|[^\s:({\[⦃«»,.]+))*"
LEAN_DECL = re.compile(
    r"^[ \t]*(?:/--(?:(?!-/).)*-/\s*)?(?:@\[[^\]]*\]\s*)?"
    r"(?:(?:private|protected|nonrec|noncomputable|unsafe|partial)\s+)*"
    r"(?P<kind>theorem|lemma|example)\b(?:\s+(?P<name>" + _LEAN_NAME + r"))?",
    re.M | re.S,
)
_COQ_IDENT = r"[^\W\d][\w']*(?:\.[^\W\d][\w']*)*"
COQ_DECL = re.compile(
    r"^[ \t]*(?:#\[[^\]]*\]\s*)?(?:(?:Local|Global|Polymorphic|Monomorphic|Program)\s+)*"
    r"(?P<kind>Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark)\s+(?P<name>" + _COQ_IDENT + r")",
    re.M,
)
ISABELLE_DECL = re.compile(
    r"^[ \t]*(?P<kind>theorem|lemma|corollary|proposition)\b(?:[ \t]+(?P<name>[A-Za-z][\w'.]*)(?=\s*[\[:]))?",
    re.M,
)
_PATTERNS = {"lean4": LEAN_DECL, "coq": COQ_DECL, "isabelle": ISABELLE_DECL}


class DeclarationError(ValueError):
    """The text declares no theorem in the expected form."""


@dataclass(frozen=True, slots=True)
class Declaration:
    kind: str  # the keyword: theorem, lemma, example, Theorem, ...
    name: str | None  # None for `example` and unnamed Isabelle lemmas
    start: int  # offset of the declaration's first character (attributes and docstring included)
    keyword: int  # offset of the keyword itself
    end: int  # offset just after the name (or the keyword when there is none)


def _make(m: re.Match[str]) -> Declaration:
    name = m.group("name")  # a quoted Lean name stays quoted: that is how Lean must be given it back
    return Declaration(m.group("kind"), name or None, m.start(), m.start("kind"), m.end())


def declarations(text: str, language: Language) -> list[Declaration]:
    """Every theorem declaration of a source file, in order."""
    return [_make(m) for m in _PATTERNS[language].finditer(text)]


def first_declaration(statement: str, language: Language) -> Declaration:
    """The declaration a statement starts with (the first one in it)."""
    m = _PATTERNS[language].search(statement)
    if m is None:
        keyword = {"lean4": "theorem NAME", "coq": "Theorem NAME", "isabelle": "theorem NAME:"}[language]
        raise DeclarationError(f"cannot find `{keyword}` in the statement: {statement[:120]!r}")
    return _make(m)


def declaration_name(statement: str, language: Language) -> str | None:
    """The declared name of a statement (None for `example` / unnamed lemmas)."""
    return first_declaration(statement, language).name


def find_declaration(text: str, name: str, language: Language) -> Declaration | None:
    """The declaration of `name` in a source file, or None."""
    for d in declarations(text, language):
        if d.name == name:
            return d
    return None
