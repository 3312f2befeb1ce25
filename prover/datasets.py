"""Where theorems come from: miniF2F (and any JSONL of the same schema), source files, inline text.

JSONL schema, one theorem per line: `name`, `split`, `header`, `formal_statement`,
optional `informal_statement` / `informal_proof`. miniF2F is read from `--data DIR`
or downloaded once into a cache directory. Informal statements and proofs join the formal
ones by `name`. Theorem names are read only through `envs.declarations`.
miniF2F in Rocq (`rocq`) gets the Coq prelude (`coq_prelude`) in front of each header.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from envs.declarations import DeclarationError, declarations, find_declaration, first_declaration
from envs.types import Language, Theorem

log = logging.getLogger(__name__)

MINIF2F_FILES = {
    "informal": "minif2f_informal.jsonl",
    "lean4": "minif2f_lean4.jsonl",
    "lean4_llemma": "minif2f_lean4_llemma.jsonl",
    "lean4_deepseek": "minif2f_lean4_deepseek.jsonl",
    "isabelle": "minif2f_isabelle.jsonl",
    "rocq": "minif2f_rocq.jsonl",
}
LANGUAGES: dict[str, Language] = {"isabelle": "isabelle", "rocq": "coq"}  # every other variant is Lean 4
# The maintained Lean 4 port, pinned; its files are MiniF2F/{Valid,Test}/<name>.lean.
LEAN4_ARCHIVE = "https://github.com/yangky11/miniF2F-lean4/archive/5746b7d6c47855ce1294bed87329618ff7f1bc31.tar.gz"
# Isabelle statements and the informal statements/proofs (Draft, Sketch, Prove), pinned.
FACEBOOK_ARCHIVE = "https://github.com/facebookresearch/miniF2F/archive/e4f113090ad82d64f8ce064d2f55b613a9b6bded.tar.gz"
DEEPSEEK_JSONL = (
    "https://raw.githubusercontent.com/deepseek-ai/DeepSeek-Prover-V1.5/"
    "2c4ba9119eef74d0d611f494261b2c5bae98c69a/datasets/minif2f.jsonl"
)
# miniF2F in Rocq (translated from the Lean, Isabelle and informal versions), pinned; files {valid,test}/<name>.v.
ROCQ_ARCHIVE = "https://github.com/LLM4Rocq/miniF2F-rocq/archive/b60affae5d9b81eb097424e3143c40165ccbe97b.tar.gz"


class DatasetError(ValueError):
    pass


def cache_dir() -> Path:
    root = os.environ.get("PROVER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "prover")
    return Path(root) / "minif2f"


def read_jsonl(path: Path) -> list[dict]:
    records = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno}: not JSON: {exc}") from exc
    return records


def theorems_from_records(
    records: Iterable[dict], language: Language, informal: dict[str, dict] | None = None, source: str = ""
) -> list[Theorem]:
    out = []
    for i, r in enumerate(records):
        missing = [k for k in ("name", "formal_statement") if k not in r]
        if missing:
            raise DatasetError(f"{source} record {i + 1} lacks {', '.join(missing)}")
        extra = (informal or {}).get(r["name"], {})
        header = r.get("header")
        if header is None and "theory" in r:
            theory = r["theory"]
            cut = theory.find(r["formal_statement"][:40])
            header = theory[:cut] if cut > 0 else ""
        out.append(
            Theorem(
                name=r["name"],
                statement=r["formal_statement"],
                header=header or "",
                language=language,
                informal_statement=r.get("informal_statement", extra.get("informal_statement")),
                informal_proof=r.get("informal_proof", extra.get("informal_proof")),
                split=r.get("split"),
            )
        )
    return out


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetError(
            f"cannot download {url} ({exc}). Offline? Pass --data DIR with the miniF2F JSONL files "
            f"({', '.join(MINIF2F_FILES.values())})."
        ) from exc


def _archive_texts(data: bytes, pattern: str) -> Iterator[tuple[re.Match[str], str]]:
    """(match of `pattern` on the member's path, its text) for each file of a .tar.gz that matches."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            m = re.search(pattern, member.name)
            if m and member.isfile():
                yield m, tar.extractfile(member).read().decode()  # type: ignore[union-attr]


def _by_split_and_name(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r["split"], r["name"]))


def _lean4_from_archive(data: bytes) -> list[dict]:
    records = []
    for m, text in _archive_texts(data, r"MiniF2F/(Valid|Test)/([^/]+)\.lean$"):
        header, statement = split_lean_source(text, None)
        records.append(
            {"name": m.group(2).lower(), "split": m.group(1).lower(), "header": header, "formal_statement": statement}
        )
    return _by_split_and_name(records)


def _rocq_from_archive(data: bytes) -> list[dict]:
    """Records of LLM4Rocq/miniF2F-rocq: the header is the text before the theorem, the statement
    runs from `Theorem` to the text before the last `Proof.` (each file ends `Proof.` or `Proof. Admitted.`)."""
    records = []
    for m, text in _archive_texts(data, r"/(valid|test)/([^/]+)\.v$"):
        name = m.group(2)
        found = find_declaration(text, name, "coq")
        cut = text.rfind("Proof.")
        if found is None or cut < found.end:
            log.warning("skipping %s: no `Theorem %s ... Proof.` in it", m.group(0), name)
            continue
        records.append(
            {"name": name, "split": m.group(1), "header": text[: found.start],
             "formal_statement": text[found.start : cut].strip()}
        )  # fmt: skip
    return _by_split_and_name(records)


def ensure_minif2f(variant: str, data: Path | None) -> Path:
    """The JSONL file of `variant`, downloading it into the cache the first time."""
    if variant not in MINIF2F_FILES:
        raise DatasetError(f"unknown miniF2F variant {variant!r}; choose from {', '.join(MINIF2F_FILES)}")
    name = MINIF2F_FILES[variant]
    if data is not None:
        path = Path(data) / name
        if not path.is_file():
            raise DatasetError(f"{path} does not exist (--data must hold {name})")
        return path
    path = cache_dir() / name
    if path.is_file():
        return path
    log.info("downloading miniF2F (%s) into %s", variant, path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    if variant == "lean4":
        _write_jsonl(path, _lean4_from_archive(_download(LEAN4_ARCHIVE)))
    elif variant == "lean4_deepseek":
        records = [
            {"name": r["name"], "split": r["split"], "header": r["header"],
             "formal_statement": r["formal_statement"].rstrip().removesuffix("by").rstrip()}
            for r in read_jsonl_bytes(_download(DEEPSEEK_JSONL))
        ]  # fmt: skip
        _write_jsonl(path, records)
    elif variant == "rocq":
        _write_jsonl(path, _rocq_from_archive(_download(ROCQ_ARCHIVE)))
    elif variant in ("isabelle", "informal"):
        informal, isabelle = _facebook_from_archive(_download(FACEBOOK_ARCHIVE))
        _write_jsonl(cache_dir() / MINIF2F_FILES["informal"], informal)
        _write_jsonl(cache_dir() / MINIF2F_FILES["isabelle"], isabelle)
    else:
        raise DatasetError(f"the {variant} variant is not downloaded automatically; pass --data DIR holding {name}")
    return path


def _write_jsonl(path: Path, records: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)


_ISABELLE_PROOF_START = re.compile(r"\b(sorry|proof|by|using|unfolding|apply)\b")


def _facebook_from_archive(data: bytes) -> tuple[list[dict], list[dict]]:
    """(informal, isabelle) records from facebookresearch/miniF2F's archive."""
    informal, isabelle = [], []
    for m, text in _archive_texts(data, r"/(informal|isabelle)/(valid|test)/([^/]+)\.(json|thy)$"):
        name, split = m.group(3), m.group(2)
        if m.group(1) == "informal":
            raw = json.loads(text)
            informal.append(
                {"name": name, "split": split, "informal_statement": raw.get("informal_statement", ""),
                 "informal_proof": raw.get("informal_proof", "")}
            )  # fmt: skip
            continue
        found = find_declaration(text, name, "isabelle")
        if found is None:
            continue
        end = _ISABELLE_PROOF_START.search(text, found.end)
        statement = text[found.keyword : end.start() if end else len(text)].rstrip()
        isabelle.append({"name": name, "split": split, "theory": text, "formal_statement": statement})
    return _by_split_and_name(informal), _by_split_and_name(isabelle)


def read_jsonl_bytes(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def load_minif2f(
    variant: str = "lean4", split: str | None = None, data: Path | None = None, prelude: bool = True
) -> list[Theorem]:
    """The theorems of a miniF2F variant, informal text joined by name. `prelude`: put the Coq
    prelude (`coq_prelude`) in front of each Rocq header."""
    if variant == "informal":
        raise DatasetError("`informal` holds no formal statements; choose a Lean 4, the Isabelle or the Rocq variant")
    path = ensure_minif2f(variant, data)
    informal_path = path.parent / MINIF2F_FILES["informal"]
    if data is None and not informal_path.is_file():
        try:  # informal statements and proofs feed drafting; without them everything else still works
            ensure_minif2f("informal", None)
        except DatasetError as exc:
            log.warning("no informal miniF2F data: %s", exc)
    informal: dict[str, dict] = {}
    if informal_path.is_file():
        informal = {r["name"]: r for r in read_jsonl(informal_path)}
    language = LANGUAGES.get(variant, "lean4")
    theorems = theorems_from_records(read_jsonl(path), language, informal, str(path))
    if split is not None:
        theorems = [t for t in theorems if t.split == split]
    if language == "coq" and prelude:
        theorems = [replace(t, header=coq_prelude(t.header) + t.header) for t in theorems]
    return theorems


# --------------------------------------------------------------------------- the Coq prelude

HAMMER_IMPORT = "From Hammer Require Import Hammer Tactics."
# CoqHammer gives each prover 20 s by default; a search tactic gets seconds
HAMMER_SETTINGS = ("Set Hammer ATPLimit 5.", "Set Hammer ReconstrLimit 5.")
_REALS = re.compile(r"\b(?:Reals|Coquelicot|Lra|Psatz|Rdefinitions|Rbase)\b")


@functools.cache
def hammer_installed(coqc: str = "coqc") -> bool:
    """Whether CoqHammer (its plugin and its tactics library) is installed for `coqc`."""
    if shutil.which(coqc) is None:
        return False
    try:
        where = subprocess.run([coqc, "-where"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    contrib = Path(where.strip()) / "user-contrib" / "Hammer"
    return (contrib / "Plugin" / "Hammer.vo").is_file() and (contrib / "Tactics" / "Tactics.vo").is_file()


def coq_prelude(header: str, hammer: bool | None = None) -> str:
    """The lines a benchmark header needs for the automation tactics: `Lia` (lia, nia) always;
    `Lra` and `Psatz` (lra, nra, psatz) when the header works over the reals (loading the reals
    elsewhere could change what the statement's names mean); CoqHammer (`sauto`, `hammer`) when
    installed (`hammer` None: detect). Imports come before the header, so the header's own
    imports keep the last word on every name the statement uses."""
    lines = ["Require Import Lia."]
    if _REALS.search(header):
        lines.append("Require Import Lra Psatz.")
    if hammer if hammer is not None else hammer_installed():
        lines += [HAMMER_IMPORT, *HAMMER_SETTINGS]
    return "".join(line + "\n" for line in lines if line not in header)


def load_jsonl_benchmark(path: Path, language: Language = "lean4", split: str | None = None) -> list[Theorem]:
    theorems = theorems_from_records(read_jsonl(path), language, source=str(path))
    return [t for t in theorems if split is None or t.split == split]


def find_theorem(theorems: list[Theorem], name: str) -> Theorem:
    for t in theorems:
        if t.name == name:
            return t
    close = [t.name for t in theorems if name.lower() in t.name.lower()][:5]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise DatasetError(f"no theorem named {name!r}.{hint}")


# --------------------------------------------------------------------------- source files


def _first_at_depth0(text: str, start: int, token: str) -> int:
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "([{⟨":
            depth += 1
        elif ch in ")]}⟩":
            depth -= 1
        elif depth == 0 and text.startswith(token, i):
            return i
        i += 1
    return -1


def split_lean_source(text: str, name: str | None) -> tuple[str, str]:
    """(header, statement ending in `:=`) of theorem `name` (or the first named theorem)."""
    if name is None:
        found = next((d for d in declarations(text, "lean4") if d.name is not None), None)
    else:
        found = find_declaration(text, name, "lean4")
    if found is None:
        raise DatasetError(f"no `theorem {name or '...'}` in the Lean source")
    end = _first_at_depth0(text, found.end, ":=")
    if end == -1:
        raise DatasetError(f"theorem {found.name} has no `:=`")
    return text[: found.start], text[found.start : end + 2].strip()


def _coq_sentence_end(text: str, start: int) -> int:
    """Offset of the `.` that ends the sentence starting at `start` (outside comments and strings), or -1."""
    depth = 0
    in_string = False
    i = start
    while i < len(text):
        if in_string:
            in_string = text[i] != '"'
        elif text.startswith("(*", i):
            depth += 1
            i += 1
        elif text.startswith("*)", i) and depth:
            depth -= 1
            i += 1
        elif depth == 0 and text[i] == '"':
            in_string = True
        elif depth == 0 and text[i] == "." and (i + 1 == len(text) or text[i + 1].isspace()):
            return i
        i += 1
    return -1


def split_coq_source(text: str, name: str) -> tuple[str, str]:
    """(header, statement ending in `.`) of theorem `name`."""
    found = find_declaration(text, name, "coq")
    if found is None:
        raise DatasetError(f"no `Theorem {name}` in the Coq source")
    end = _coq_sentence_end(text, found.end)
    if end == -1:
        raise DatasetError(f"theorem {name} has no terminating `.`")
    return text[: found.start], text[found.start : end + 1].strip()


def theorem_from_file(path: Path, name: str) -> Theorem:
    if path.suffix not in (".v", ".lean"):
        raise DatasetError(f"{path}: expected a .lean or .v file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if path.suffix == ".v":
        header, statement = split_coq_source(text, name)
        return Theorem(name, statement, header, "coq")
    header, statement = split_lean_source(text, name)
    return Theorem(name, statement, header, "lean4")


def theorem_from_statement(statement: str, header: str, language: Language) -> Theorem:
    try:
        name = first_declaration(statement, language).name
    except DeclarationError as exc:
        keyword = {"lean4": "theorem NAME", "coq": "Theorem NAME", "isabelle": "theorem NAME:"}[language]
        raise DatasetError(f"--statement must start with `{keyword}`") from exc
    return Theorem(name or "example", statement.strip(), header, language)
