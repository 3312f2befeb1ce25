"""Where theorems come from: miniF2F (and any JSONL of the same schema), source files, inline text.

JSONL schema, one theorem per line: `name`, `split`, `header`, `formal_statement`,
optional `informal_statement` / `informal_proof`. miniF2F is read from `--data DIR`
or downloaded once into a cache directory.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from envs.types import Language, Theorem

log = logging.getLogger(__name__)

MINIF2F_FILES = {
    "informal": "minif2f_informal.jsonl",
    "lean4": "minif2f_lean4.jsonl",
    "lean4_llemma": "minif2f_lean4_llemma.jsonl",
    "lean4_deepseek": "minif2f_lean4_deepseek.jsonl",
    "isabelle": "minif2f_isabelle.jsonl",
}
# The maintained Lean 4 port, pinned; its files are MiniF2F/{Valid,Test}/<name>.lean.
LEAN4_ARCHIVE = "https://github.com/yangky11/miniF2F-lean4/archive/5746b7d6c47855ce1294bed87329618ff7f1bc31.tar.gz"
# Isabelle statements and the informal statements/proofs (Draft, Sketch, Prove), pinned.
FACEBOOK_ARCHIVE = "https://github.com/facebookresearch/miniF2F/archive/e4f113090ad82d64f8ce064d2f55b613a9b6bded.tar.gz"
DEEPSEEK_JSONL = (
    "https://raw.githubusercontent.com/deepseek-ai/DeepSeek-Prover-V1.5/"
    "2c4ba9119eef74d0d611f494261b2c5bae98c69a/datasets/minif2f.jsonl"
)


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
        start = re.search(rf"\b(theorem|lemma)\s+{re.escape(name)}\b", text)
        if start is None:
            continue
        end = _ISABELLE_PROOF_START.search(text, start.end())
        statement = text[start.start() : end.start() if end else len(text)].rstrip()
        isabelle.append({"name": name, "split": split, "theory": text, "formal_statement": statement})
    return _by_split_and_name(informal), _by_split_and_name(isabelle)


def read_jsonl_bytes(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def load_minif2f(variant: str = "lean4", split: str | None = None, data: Path | None = None) -> list[Theorem]:
    if variant == "informal":
        raise DatasetError("`informal` holds no formal statements; choose a Lean 4 or the Isabelle variant")
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
    language: Language = "isabelle" if variant == "isabelle" else "lean4"
    theorems = theorems_from_records(read_jsonl(path), language, informal, str(path))
    if split is not None:
        theorems = [t for t in theorems if t.split == split]
    return theorems


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

_LEAN_DECL = r"^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:theorem|lemma)[ \t]+{name}(?=[\s:({{\[])"
_COQ_DECL = r"^[ \t]*(?:Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark)[ \t]+{name}(?=[\s:(])"


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
    """(header, statement ending in `:=`) of theorem `name` (or the first theorem)."""
    pattern = _LEAN_DECL.format(name=re.escape(name) if name else r"[^\s:({\[]+")
    m = re.search(pattern, text, re.M)
    if m is None:
        raise DatasetError(f"no `theorem {name or '...'}` in the Lean source")
    end = _first_at_depth0(text, m.end(), ":=")
    if end == -1:
        raise DatasetError(f"theorem {name} has no `:=`")
    return text[: m.start()], text[m.start() : end + 2].strip()


def split_coq_source(text: str, name: str) -> tuple[str, str]:
    """(header, statement ending in `.`) of theorem `name`."""
    m = re.search(_COQ_DECL.format(name=re.escape(name)), text, re.M)
    if m is None:
        raise DatasetError(f"no `Theorem {name}` in the Coq source")
    end = m.end()
    while True:
        end = text.find(".", end)
        if end == -1:
            raise DatasetError(f"theorem {name} has no terminating `.`")
        if end + 1 >= len(text) or text[end + 1].isspace():
            break
        end += 1
    return text[: m.start()], text[m.start() : end + 1].strip()


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
    pattern = (
        r"(?:Theorem|Lemma|Example|Corollary|Proposition|Fact|Remark)\s+([^\s:(]+)"
        if language == "coq"
        else r"(?:theorem|lemma|example)\s+([^\s:({\[]*)"  # Lean 4 and Isabelle
    )
    m = re.search(pattern, statement)
    if m is None:
        raise DatasetError("--statement must start with `theorem NAME`")
    return Theorem(m.group(1) or "example", statement.strip(), header, language)
