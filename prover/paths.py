"""The files a command reads and writes, checked before any work starts.

A search can take minutes: a bad output path or an unreadable input must be refused up front
with one line that names the file and the flag, never found out afterwards (or as a
traceback). Probes really create a file, because permissions say little (root, `/proc`).
"""

from __future__ import annotations

import argparse
import os
import uuid
from pathlib import Path


class PathError(ValueError):
    """A file or directory the command needs is missing or unusable; the message names it."""


def nonempty_path(text: str) -> Path:
    """A path flag's value; an empty one (often an unset shell variable) is refused, not read as `.`."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (give a file or directory name)")
    return Path(text)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def read_text_file(path: Path, flag: str) -> str:
    """The UTF-8 text of an input file, or a `PathError` naming it (missing, a directory, binary)."""
    try:
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise PathError(f"{flag} {path} is a directory, not a file") from exc
    except OSError as exc:
        raise PathError(f"{flag} {path}: cannot read it ({_reason(exc)})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PathError(f"{flag} {path} is not a UTF-8 text file (byte {exc.start} is {data[exc.start]:#04x})") from exc
    if "\x00" in text:
        raise PathError(f"{flag} {path} is not a text file (it holds NUL bytes)")
    return text


def check_input_file(path: Path, flag: str) -> None:
    read_text_file(path, flag)


def check_output_file(path: Path, flag: str) -> None:
    """`path` can be written: its directory exists and accepts a new file (probed, then removed)."""
    if path.is_dir():
        raise PathError(f"{flag} {path} is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        what = "is a file, not a directory" if parent.exists() else "does not exist"
        raise PathError(f"{flag} {path}: {parent} {what}")
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise PathError(f"{flag} {path}: cannot write it ({_reason(exc)})") from exc
    if not existed:
        path.unlink(missing_ok=True)


def prepare_output_dir(path: Path, flag: str) -> None:
    """Create the directory `path` (and its parents) and make sure files can be written into it."""
    if path.exists() and not path.is_dir():
        raise PathError(f"{flag} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise PathError(f"{flag} {path}: a part of the path is a file, not a directory") from exc
    except OSError as exc:
        raise PathError(f"{flag} {path}: cannot create the directory ({_reason(exc)})") from exc
    probe = path / f".probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
    except OSError as exc:
        raise PathError(f"{flag} {path}: cannot write into the directory ({_reason(exc)})") from exc
    probe.unlink(missing_ok=True)
