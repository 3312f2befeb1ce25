"""Untrusted tactics: model output is code that runs inside a proof assistant.

`check_tactic(language, tactic)` returns None for a tactic that may be sent to the
assistant, or the reason it is rejected. A rejected tactic must never reach the
assistant; backends turn the reason into a `Failed` outcome. The fresh whole-file
check with its axiom audit (`ProofEnv.verify`) is the second line of defence.

The rules reject anything that gives up (`sorry`, `admit`), could end the proof
block, start a new command, change the environment (axioms, options, attributes,
meta-programs) or leave a comment or bracket open that swallows what follows. Every
language also rejects characters that change how a tactic reads or travels: control
characters (tab and newline excepted), bidi overrides and isolates, line/paragraph separators
and lone surrogates.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# `stop` is `repeat sorry`; `apply?` admits the goal when no lemma closes it; `lcProof` is the
# compiler's axiom that proves any proposition.
_LEAN_GIVE_UP = ("sorry", "admit", "sorryAx", "stop", "apply?", "lcProof")
# Commands and declaration keywords: none of these belongs inside a tactic proof.
_LEAN_COMMANDS = (
    "theorem", "lemma", "example", "axiom", "axioms", "def", "instance", "abbrev",
    "structure", "inductive", "class", "opaque", "mutual", "namespace", "section",
    "universe", "variable", "import", "elab", "elab_rules", "macro", "macro_rules",
    "syntax", "declare_syntax_cat", "notation", "infix", "infixl", "infixr", "prefix",
    "postfix", "run_cmd", "run_tac", "run_elab", "run_meta", "set_option", "attribute",
    "initialize", "builtin_initialize", "unsafe", "implemented_by", "extern",
    "noncomputable", "private", "protected", "partial", "export", "add_decl_doc",
    "register_simp_attr", "deriving", "include", "omit",
    # Mathlib/Batteries/Aesop commands, and meta code run from a term
    "notation3", "irreducible_def", "alias", "simproc", "dsimproc", "simproc_decl", "dsimproc_decl",
    "add_aesop_rules", "declare_aesop_rule_sets", "register_option", "register_builtin_option",
    "register_label_attr", "initialize_simps_projections", "suppress_compilation", "seal", "unseal",
    "compile_inductive", "nonrec", "by_elab", "grind_pattern", "library_note", "assert_not_exists",
    "binder_predicate", "proof_wanted", "unif_hint", "declare_config_elab", "grind_propagator",
    "with_weak_namespace", "init_quot", "end",
    # these belong to the enclosing declaration: they end the proof block
    "where", "termination_by", "decreasing_by",
)  # fmt: skip
# Escapes into the meta level or the compiler's trust.
_LEAN_META = (
    "Lean.Elab",
    "Lean.Meta",
    "Lean.Environment",
    "Lean.addDecl",
    "Lean.reduceBool",
    "Lean.reduceNat",
    "Lean.trustCompiler",
    "IO.",
    "System.",
    "unsafeIO",
    "unsafeCast",
    "ofReduceBool",
    "ofReduceNat",
)
# Trusting the compiler: `native_decide`, `decide +native` / `(config := {native := true})`, and the
# bit-blasting tactics whose certificates are checked by compiled code (`Lean.ofReduceBool`).
# A decide configuration given positionally (`config := ⟨false, true, …⟩`, `DecideConfig.mk …`)
# can set `native` without naming it: refused too.
_LEAN_NATIVE_RE = re.compile(
    r"(?<![\w.])native_decide(?![\w])|\+native(?![\w])|(?<![\w.])native\s*:=|(?<![\w.])bv_(?:decide|check)(?![\w])"
    r"|DecideConfig|(?<![\w.])decide\b[^\n]*config\s*:=\s*⟨"
)
# Characters that change how a tactic reads or travels: C0/C1 controls except tab and newline,
# bidi embeddings/overrides/isolates, line and paragraph separators, lone surrogates.
_BAD_CHAR_RE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)


def check_characters(tactic: str) -> str | None:
    """None if every character of `tactic` is printable text (tab and newline allowed), else why not.

    Besides controls and bidi characters, every format character (Unicode category Cf: zero-width
    spaces and joiners, word joiner, byte-order mark, Arabic letter mark, ...) is refused: they are
    invisible, so a suggestion would not read as what it does."""
    if m := _BAD_CHAR_RE.search(tactic):
        return f"tactic contains the control or bidi character U+{ord(m.group(0)):04X}"
    for ch in tactic:
        if unicodedata.category(ch) == "Cf":
            return f"tactic contains the invisible format character U+{ord(ch):04X}"
    return None


# At the start of a line these end the proof block (`end` closes a section/namespace).
_LEAN_LINE_START = ("end", "open", "@[", "local", "scoped", "#")

_COQ_GIVE_UP = (
    "admit",
    "Admitted",
    "Abort",
    "give_up",
    "exact_no_check",
    "vm_cast_no_check",
    "native_cast_no_check",
    "change_no_check",
)
_COQ_COMMANDS = (
    "Qed", "Defined", "Save", "Proof", "Axiom", "Axioms", "Parameter", "Parameters",
    "Hypothesis", "Hypotheses", "Variable", "Variables", "Conjecture", "Definition",
    "Fixpoint", "CoFixpoint", "Lemma", "Theorem", "Corollary", "Proposition", "Fact",
    "Remark", "Example", "Property", "Instance", "Existing", "Require", "Import", "Export", "From",
    "Load", "Declare", "Unset", "Local", "Global", "Module", "End", "Section",
    "Ltac", "Ltac2", "Tactic", "Obligation", "Next", "Drop", "Quit", "Extraction",
    "Redirect", "Print", "Check", "Eval", "Compute", "Search", "Locate", "Fail",
    "Succeed", "Inductive", "CoInductive", "Record", "Structure", "Class", "Notation",
    "Infix", "Hint", "Arguments", "Opaque", "Transparent", "Reset", "Back", "Undo",
    "Restart", "Goal", "Time", "Timeout", "Program", "Canonical", "Coercion", "Open",
    "Close", "Scheme", "Add", "Remove", "Create", "Generalizable", "Implicit", "Context",
    "Let", "Admit", "Abort",
    # proof-mode and inspection vernacular: change focus, undo, print, or leave the proof
    "Focus", "Unfocus", "Unfocused", "BackTo", "Backtrack", "Solve", "Obligations", "Existential",
    "Grab", "Show", "Guarded", "Strategy", "Typeclasses", "Derive", "Functional", "Function", "Include",
    "Optimize", "Polymorphic", "Monomorphic", "Cumulative", "NonCumulative", "Primitive", "Extract",
    "Recursive", "Separate", "Bind", "Delimit", "Undelimit", "Reserved", "About", "SearchPattern",
    "SearchRewrite", "SearchHead", "Inspect", "Preterm", "Equations", "Debug", "Profile", "Comments",
    "Universes", "Abbreviation",
)  # fmt: skip
# Vernacular whose name could also be a hypothesis or lemma name: rejected at the start of the sentence.
_COQ_LEADING_COMMANDS = (
    "Cd", "Pwd", "Info", "Test", "Write", "Restore", "Register", "Universe", "Constraint", "Variant",
    "Collection", "Private", "Final", "Instructions",
    "Set",  # also the sort `Set` inside terms
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TacticPolicy:
    """What an env lets through. `native_decide` trusts the compiler, so it is off by default."""

    allow_native_decide: bool = False
    max_chars: int = 2000
    extra_banned: tuple[str, ...] = field(default=())


def _words(pattern_words: tuple[str, ...], after_dot: bool = False) -> re.Pattern[str]:
    """Whole words; `after_dot` also matches them as the last part of a dotted name
    (`_root_.sorryAx` is `sorryAx`)."""
    escaped = "|".join(re.escape(w) for w in pattern_words)
    before = r"(?<![\w'])" if after_dot else r"(?<![\w.'])"
    return re.compile(rf"{before}(?:{escaped})(?![\w'])")


_LEAN_GIVE_UP_RE = _words(_LEAN_GIVE_UP)
# the axioms themselves, however they are reached (`_root_.sorryAx`, `Lean.lcProof`)
_LEAN_GIVE_UP_NAME_RE = _words(("sorryAx", "lcProof"), after_dot=True)
_LEAN_COMMAND_RE = _words(_LEAN_COMMANDS)
_LEAN_HASH_COMMAND_RE = re.compile(r"(?<![\w])#[a-zA-Z_]\w*")
_COQ_GIVE_UP_RE = _words(_COQ_GIVE_UP)
# a command word anywhere it is not part of a longer name: after a bullet (`-Axiom`), a brace, a
# string (`"x"Check`), `;`, `|`, `(`... Coq splits bullets and braces off and runs the rest.
_COQ_COMMAND_RE = re.compile(r"(?<![\w'.])(?:" + "|".join(re.escape(w) for w in _COQ_COMMANDS) + r")(?![\w'])")
# `native_compute` (and `Qed` after it) trusts OCaml's native compiler, as Lean's native_decide
_COQ_NATIVE_RE = _words(("native_compute",))
# every `*_no_check` tactic (`change_no_check`, `convert_concl_no_check`, ...) skips the kernel's check
_COQ_NO_CHECK_RE = re.compile(r"(?<![\w'.])\w*_no_check(?![\w'])")
# at the start of the sentence, after bullets/braces, a goal selector (`1:`, `all:`) or a `;`
_COQ_LEADING_COMMAND_RE = re.compile(
    r"(?:^[\s\-+*{}]*|(?:^|[\s;])(?:\d+|all|par|!)\s*:\s*|;\s*)(?:"
    + "|".join(re.escape(w) for w in _COQ_LEADING_COMMANDS)
    + r")(?![\w'])"
)
_COQ_SENTENCE_END_RE = re.compile(r"(?<!\.)\.(?=\s|$)")


def _balanced(text: str, pairs: dict[str, str]) -> bool:
    closers = {v: k for k, v in pairs.items()}
    stack: list[str] = []
    for ch in text:
        if ch in pairs:
            stack.append(ch)
        elif ch in closers:
            if not stack or stack[-1] != closers[ch]:
                return False
            stack.pop()
    return not stack


_LEAN_STRING_RE = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')
_LEAN_CHAR_RE = re.compile(r"'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|[^\n])|[^'\\\n])'")
_LEAN_RAW_STRING_RE = re.compile(r'r(#*)"')


def _starts_token(text: str, i: int) -> bool:
    """Whether position `i` starts a token: the character before cannot continue an identifier
    (`h'` is a name, `'a'` after a space is a character literal; `r"…"` only as a token)."""
    if i == 0:
        return True
    prev = text[i - 1]
    return not (prev.isalnum() or prev in "_'!?.»" or unicodedata.category(prev).startswith("L"))


def _strip_lean_comments_and_strings(text: str) -> str | None:
    """`text` as Lean's lexer sees it, with comments blanked and literals emptied, or None when
    something is left open or cannot be read safely.

    Block comments `/- -/` nest (`/--` and `/-!` open doc comments), `--` runs to the end of the
    line; string literals (escapes `\\x`), raw strings `r"…"`/`r#"…"#` (no escapes) and character
    literals (`'"'`) are emptied; an escaped name `«…»` becomes a plain name (`«native»` is
    `native`, `«--»` is a name, not a comment). A string with `{` is refused: interpolated strings
    (`s!"{…}"`, `m!`, `throwError "…"`) run the code between the braces."""
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(text):
        two = text[i : i + 2]
        if depth:
            if two == "/-":
                depth += 1
                i += 2
            elif two == "-/":
                depth -= 1
                i += 2
                if not depth:
                    out.append(" ")
            else:
                i += 1
            continue
        c = text[i]
        if two == "/-":
            depth = 1
            i += 3 if text[i + 2 : i + 3] in ("-", "!") else 2  # `/--` and `/-!` open doc comments
        elif two == "--":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif c == "«":
            end = text.find("»", i + 1)
            if end < 0 or "\n" in text[i:end]:
                return None
            out.append(re.sub(r"[^\w.]", "_", text[i + 1 : end]) or "_")  # an ordinary name to the checks
            i = end + 1
        elif c == '"':
            m = _LEAN_STRING_RE.match(text, i)
            if m is None or "{" in m.group(0):
                return None
            out.append('""')
            i = m.end()
        elif c == "r" and _starts_token(text, i) and (raw := _LEAN_RAW_STRING_RE.match(text, i)):
            closing = '"' + raw.group(1)
            end = text.find(closing, raw.end())
            if end < 0:
                return None
            out.append('""')
            i = end + len(closing)
        elif c == "'" and _starts_token(text, i):
            m = _LEAN_CHAR_RE.match(text, i)
            if m is None:
                return None
            out.append("' '")
            i = m.end()
        else:
            out.append(c)
            i += 1
    if depth:
        return None
    return "".join(out)


def _check_shape(tactic: str, policy: TacticPolicy) -> str | None:
    """What every language refuses: an empty or overlong tactic, or characters that are not text."""
    if not tactic.strip():
        return "empty tactic"
    if len(tactic) > policy.max_chars:
        return f"tactic longer than {policy.max_chars} characters"
    return check_characters(tactic)


def check_lean_tactic(tactic: str, policy: TacticPolicy = TacticPolicy()) -> str | None:
    if bad := _check_shape(tactic, policy):
        return bad
    code = _strip_lean_comments_and_strings(tactic)
    if code is None:
        return "a comment, string or character literal left open or unsafe (interpolated strings run code)"
    if m := _LEAN_GIVE_UP_RE.search(code) or _LEAN_GIVE_UP_NAME_RE.search(code):
        return f"`{m.group(0)}` gives up on the goal"
    if not policy.allow_native_decide and (m := _LEAN_NATIVE_RE.search(code)):
        return f"`{m.group(0)}` trusts the compiler like native_decide (disabled by policy)"
    if m := _LEAN_COMMAND_RE.search(code):
        return f"`{m.group(0)}` starts a command, not a tactic"
    if m := _LEAN_HASH_COMMAND_RE.search(code):
        return f"`{m.group(0)}` is a command, not a tactic"
    for word in _LEAN_META:
        if word in code:
            return f"`{word}` reaches into the meta level"
    for word in policy.extra_banned:
        if re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", code):
            return f"`{word}` is banned by policy"
    for line in code.splitlines()[1:]:
        if line and not line[0].isspace():
            stripped = line.lstrip()
            if any(stripped.startswith(w) for w in _LEAN_LINE_START):
                return "a line at column 0 would end the tactic block"
    if not _balanced(code, {"(": ")", "[": "]", "{": "}", "⟨": "⟩"}):
        return "unbalanced brackets"
    return None


def _strip_coq_comments_and_strings(text: str) -> str | None:
    out: list[str] = []
    depth = 0
    i = 0
    in_string = False
    while i < len(text):
        two = text[i : i + 2]
        if in_string:
            if text[i] == '"':
                if two == '""':
                    i += 2
                    continue
                in_string = False
                if not depth:  # a string of the code (one inside a comment is part of the comment)
                    out.append('""')
            i += 1
            continue
        if two == "(*":
            depth += 1
            i += 2
            continue
        if two == "*)" and depth:
            depth -= 1
            i += 2
            out.append(" ")
            continue
        if text[i] == '"':  # also inside a comment: Coq lexes strings there, `(* "*)" *)` is one comment
            in_string = True
            i += 1
            continue
        if depth:
            i += 1
            continue
        out.append(text[i])
        i += 1
    if depth or in_string:
        return None
    return "".join(out)


def check_coq_tactic(tactic: str, policy: TacticPolicy = TacticPolicy()) -> str | None:
    if bad := _check_shape(tactic, policy):
        return bad
    code = _strip_coq_comments_and_strings(tactic)
    if code is None:
        return "unterminated comment or string"
    body = code.strip()
    if body.endswith(".") and not body.endswith(".."):
        body = body[:-1]
    if _COQ_SENTENCE_END_RE.search(body):
        return "more than one sentence: a `.` ends the tactic early"
    if m := _COQ_GIVE_UP_RE.search(body) or _COQ_NO_CHECK_RE.search(body):
        return f"`{m.group(0)}` gives up on the goal"
    if not policy.allow_native_decide and (m := _COQ_NATIVE_RE.search(body)):
        return f"`{m.group(0)}` trusts the native compiler (disabled by policy, as native_decide)"
    if m := _COQ_COMMAND_RE.search(body) or _COQ_LEADING_COMMAND_RE.search(body):
        word = re.findall(r"\w+", m.group(0))[-1]
        return f"`{word}` is a command, not a tactic"
    if "#[" in body:
        return "`#[` attributes belong to commands, not tactics"
    for word in policy.extra_banned:
        if re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", body):
            return f"`{word}` is banned by policy"
    if not _balanced(body, {"(": ")", "[": "]", "{": "}"}) and body.strip() not in ("{", "}"):
        return "unbalanced brackets"
    return None


def check_tactic(language: str, tactic: str, policy: TacticPolicy = TacticPolicy()) -> str | None:
    """None if `tactic` may be sent to a `language` assistant, else why not."""
    if language == "lean4":
        return check_lean_tactic(tactic, policy)
    if language == "coq":
        return check_coq_tactic(tactic, policy)
    if language == "isabelle":
        return check_isabelle_tactic(tactic, policy)
    raise ValueError(f"no tactic policy for language {language!r}")


_ISABELLE_BANNED = _words(
    (
        "sorry",
        "oops",
        "lemma",
        "theorem",
        "axiomatization",
        "definition",
        "fun",
        "primrec",
        "end",
        "ML",
        "ML_val",
        "ML_file",
        "declare",
        "setup",
        "local_setup",
        "consts",
        "defs",
        "imports",
        "theory",
        # ML inside a proof, and commands that declare, set up or leave the proof
        "ML_prf",
        "ML_command",
        "ML_export",
        "method_setup",
        "attribute_setup",
        "simproc_setup",
        "declaration",
        "syntax_declaration",
        "oracle",
        "corollary",
        "proposition",
        "schematic_goal",
        "lemmas",
        "typedecl",
        "type_synonym",
        "abbreviation",
        "datatype",
        "function",
        "termination",
        "inductive",
        "instance",
        "instantiation",
        "locale",
        "interpretation",
        "global_interpretation",
        "sublocale",
        "context",
        "begin",
        "notation",
        "hide_const",
        "hide_fact",
    )
)


def check_isabelle_tactic(tactic: str, policy: TacticPolicy = TacticPolicy()) -> str | None:
    if bad := _check_shape(tactic, policy):
        return bad
    if m := _ISABELLE_BANNED.search(tactic):
        return f"`{m.group(0)}` is not allowed in a proof step"
    if tactic.count("(*") != tactic.count("*)"):
        return "unterminated comment"
    return None
