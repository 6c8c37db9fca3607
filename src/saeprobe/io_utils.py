"""Atomic file writes: a crash never leaves a half-written file that looks valid."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# mkstemp creates files 0600; published files get the usual umask-derived mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def atomic_write(
    path: str | os.PathLike, write: Callable[[Path], None], fsync: bool = True
) -> None:
    """Call `write(tmp_path)` then rename the temporary file over `path`.

    The temporary file lives in the same directory so the rename is atomic on POSIX. `fsync`
    guards against power loss; files whose checksum is verified on read may skip it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, FILE_MODE)  # after writing: some writers recreate the file
        if fsync:
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# Name parts of the directories `replace_dir` leaves beside its target while it works.
STAGED, ASIDE = ".new.", ".old."


def staging_dir(path: str | os.PathLike) -> Path:
    """A fresh empty directory beside `path` in which to build its replacement."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{path.name}{STAGED}", dir=path.parent))
    os.chmod(staged, DIR_MODE)  # mkdtemp makes 0700; the result is shared like any file
    return staged


def _leftovers(path: Path, kind: str) -> list[Path]:
    found = [p for p in path.parent.glob(f".{path.name}{kind}*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)  # newest first


def replace_dir(staged: Path, path: Path) -> None:
    """Move the complete directory `staged` to `path`, replacing any directory there.

    A directory cannot be renamed over a non-empty one, so the old one is renamed aside first
    and deleted after the new one is in. If moving the new one in fails, the old one is put
    back. If the process dies between the two renames, both copies stay beside `path` and
    `recover_dir` puts one back. Not for two processes writing the same `path` at once.
    """
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    if not path.exists():
        os.replace(staged, path)
    else:
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}{ASIDE}", dir=path.parent))
        aside.rmdir()
        os.replace(path, aside)
        try:
            os.replace(staged, path)
        except BaseException:
            os.replace(aside, path)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    for leftover in _leftovers(path, ASIDE) + _leftovers(path, STAGED):
        shutil.rmtree(leftover, ignore_errors=True)  # what an earlier crash left behind


def recover_dir(path: str | os.PathLike, complete: Callable[[Path], bool]) -> bool:
    """If `path` is missing because a `replace_dir` died between its renames, move back the
    newest complete copy (preferring the new one, which was whole before the swap began).
    Returns whether anything was moved."""
    path = Path(path)
    if path.exists() or not path.parent.is_dir():
        return False
    for kind in (STAGED, ASIDE):
        for candidate in _leftovers(path, kind):
            if complete(candidate):
                try:
                    os.replace(candidate, path)
                except OSError:  # e.g. a read-only location: report the SAE as missing
                    return False
                return True
    return False
