"""The offline default corpus: English prose that ships with every CPython install.

Why this text: it must exist on any fresh machine with no download, be real natural language
written by people (not generated templates), and carry a permissive licence. CPython's own
documentation meets all three:

1. `pydoc_data.topics`: the Python Language Reference sections that `help()` shows (about
   80 topics, ~0.45 MB). Grammar productions and code samples are dropped, leaving the prose.
2. The module, class and function docstrings of the standard library's top-level pure-Python
   modules (read with `ast`, never imported), where longer than 200 characters; one document
   per module.

Together about 160k MiniLM tokens (0.68 MB) of technical English under the PSF licence. The register is
narrower than web text (it is documentation), so use a real corpus (`--data`) for real studies.

Parsing the standard library takes several seconds, so the result is kept in memory and in
`$SAEPROBE_CACHE/corpus/`, keyed by the Python version and the standard library's location.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from saeprobe.cache import cache_root
from saeprobe.errors import DataError
from saeprobe.io_utils import atomic_write_text

NAME = "python-docs"
_FORMAT = 1  # bump when the extraction below changes
_DOCUMENTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_UNDERLINE = re.compile(r"^[*=\-~^\"'`#+]{3,}$")


def _prose(text: str) -> str:
    """Keep paragraphs of running text: drop headings' underlines, indented code and grammar."""
    kept = []
    for para in re.split(r"\n\s*\n", text):
        lines = [ln for ln in para.splitlines() if ln.strip()]
        if not lines or any(ln.startswith((" ", "\t", ">>>")) for ln in lines):
            continue
        lines = [ln for ln in lines if not _UNDERLINE.match(ln.strip())]
        if lines:
            kept.append(" ".join(ln.strip() for ln in lines))
    return "\n\n".join(kept)


def _topics() -> Iterator[str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data; the docstrings remain
        return
    for key in sorted(topics):
        text = _prose(topics[key])
        if len(text) > 200:
            yield text


def _docstrings() -> Iterator[str]:
    """One document per stdlib module: its module, class and function docstrings, in order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, _DOCUMENTED))]
        docs = [_prose(d) for d in map(ast.get_docstring, nodes) if d and len(d) > 200]
        text = "\n\n".join(d for d in docs if d)
        if text:
            yield text


def _cache_file() -> Path:
    stdlib = sysconfig.get_paths()["stdlib"]
    key = hashlib.sha256(f"{_FORMAT}|{sys.version}|{stdlib}".encode()).hexdigest()[:16]
    return cache_root() / "corpus" / f"{NAME}-{key}.json"


@functools.cache
def _documents(cache_file: Path) -> tuple[str, ...]:
    if cache_file.is_file():
        try:
            return tuple(json.loads(cache_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass  # rebuilt below
    docs = (*_topics(), *_docstrings())
    if docs:
        atomic_write_text(cache_file, json.dumps(docs))
    return docs


def iter_default_corpus() -> Iterator[str]:
    docs = _documents(_cache_file())
    if not docs:
        raise DataError(
            "this Python install has neither pydoc_data nor stdlib sources; pass --data FILE"
        )
    yield from docs
