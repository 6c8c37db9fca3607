"""Regenerate the run-derived tables and figures of docs/ from the runs' output files.

A doc holds generated blocks:

    <!-- generated: KIND run=runs/probe-smollm2 key=value key="a value" -->
    ...written by this script...
    <!-- /generated -->

`run=` is relative to `--runs-root` (default: the current directory). Every block is rebuilt
by its kind (scripts/docs_blocks/) from that run's files; figures are copied to the path the
doc links to. A block whose run directory is missing is left as it is, with a warning.

    python scripts/regenerate_docs.py [--runs-root DIR] [--docs DIR] [--check]

`--check` writes nothing and exits 1 when a block (or figure) is stale. A malformed marker
or a block that cannot be built from its run is a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_blocks import KINDS, BlockError  # noqa: E402

OPEN = re.compile(r"^\s*<!--\s*generated:(?P<args>.*?)-->\s*$")
CLOSE = re.compile(r"^\s*<!--\s*/generated\s*-->\s*$")
LOOSE = re.compile(r"^\s*<!--\s*/?\s*generated\b")
FENCE = re.compile(r"^\s*(```|~~~)")
DOCS = Path(__file__).resolve().parent.parent / "docs"


class MarkerError(Exception):
    """A malformed marker or an unbuildable block: `FILE:LINE: message`."""


@dataclass
class Marker:
    line: int  # 1-based line of the opening marker
    end: int  # 0-based index of the closing marker line
    kind: str
    params: dict[str, str]


def parse_markers(path: Path, lines: list[str]) -> list[Marker]:
    markers: list[Marker] = []
    start: tuple[int, str, dict[str, str]] | None = None
    fenced = False
    for i, line in enumerate(lines):
        where = f"{path}:{i + 1}"
        if FENCE.match(line):
            fenced = not fenced
        if fenced:
            continue
        if m := OPEN.match(line):
            if start is not None:
                raise MarkerError(f"{where}: block opened inside the block of line {start[0] + 1}")
            try:
                words = shlex.split(m["args"])
            except ValueError as err:
                raise MarkerError(f"{where}: unreadable marker ({err})") from None
            if not words or "=" in words[0]:
                raise MarkerError(f"{where}: marker names no block kind")
            params = {}
            for word in words[1:]:
                key, eq, value = word.partition("=")
                if not eq or not key:
                    raise MarkerError(f"{where}: marker parameter {word!r} is not key=value")
                params[key] = value
            if words[0] not in KINDS:
                raise MarkerError(
                    f"{where}: unknown block kind {words[0]!r} (known: {', '.join(sorted(KINDS))})"
                )
            if "run" not in params:
                raise MarkerError(f"{where}: marker has no run=")
            start = (i, words[0], params)
        elif CLOSE.match(line):
            if start is None:
                raise MarkerError(f"{where}: <!-- /generated --> without an opening marker")
            markers.append(Marker(start[0] + 1, i, start[1], start[2]))
            start = None
        elif LOOSE.search(line):
            raise MarkerError(f"{where}: malformed generated marker: {line.strip()}")
    if start is not None:
        raise MarkerError(f"{path}:{start[0] + 1}: block never closed with <!-- /generated -->")
    return markers


@dataclass
class Outcome:
    text: str
    stale: list[str]  # one summary line (plus diff lines) per stale block or figure
    warnings: list[str]
    copies: list[tuple[Path, Path]]  # (source, destination) of figures that differ


def regenerate(path: Path, runs_root: Path) -> Outcome:
    """The doc's new text and what changed; writes nothing."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    markers = parse_markers(path, lines)
    out: list[str] = []
    stale: list[str] = []
    warnings: list[str] = []
    copies: list[tuple[Path, Path]] = []
    pos = 0
    for mk in markers:
        out += lines[pos : mk.line]  # up to and including the opening marker
        old = lines[mk.line : mk.end]
        pos = mk.end
        where = f"{path}:{mk.line}"
        run = runs_root / mk.params["run"]
        if not run.is_dir():
            warnings.append(
                f"warning: {where}: {mk.kind}: run directory {run} not found; block left as it is"
            )
            out += old
            continue
        try:
            block = KINDS[mk.kind](run, mk.params)
        except BlockError as err:
            raise MarkerError(f"{where}: {mk.kind} run={mk.params['run']}: {err}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise MarkerError(
                f"{where}: {mk.kind} run={mk.params['run']}: unexpected file contents "
                f"({type(err).__name__}: {err})"
            ) from None
        new = ["\n", *(block.text.strip("\n") + "\n").splitlines(keepends=True), "\n"]
        if new != old:
            diff = list(difflib.unified_diff(old, new, lineterm="", n=0))[2:]
            changed = sum(1 for d in diff if d[:1] in "+-" and not d.startswith("@@"))
            stale.append(f"stale: {where}: {mk.kind} run={mk.params['run']} ({changed} lines)")
            stale += ["    " + d.rstrip("\n") for d in diff[:12]]
        out += new
        for src, dest in block.copies:
            target = path.parent / dest
            if not target.is_file() or target.read_bytes() != src.read_bytes():
                stale.append(f"stale: {where}: figure {target} differs from {src}")
                copies.append((src, target))
    out += lines[pos:]
    return Outcome("".join(out), stale, warnings, copies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-root", type=Path, default=Path("."))
    parser.add_argument("--docs", type=Path, default=DOCS, help="directory of .md files")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    docs = sorted(args.docs.glob("*.md")) if args.docs.is_dir() else [args.docs]
    try:
        outcomes = [(doc, regenerate(doc, args.runs_root)) for doc in docs]
    except (MarkerError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    n_stale = 0
    for doc, result in outcomes:
        for line in result.warnings:
            print(line, file=sys.stderr)
        for line in result.stale:
            print(line)
        n_stale += sum(1 for line in result.stale if line.startswith("stale:"))
        if not args.check:
            if result.text != doc.read_text():
                doc.write_text(result.text)
            for src, target in result.copies:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(src.read_bytes())
    if args.check:
        print(f"{n_stale} stale" if n_stale else "docs are up to date")
        return 1 if n_stale else 0
    print(f"regenerated {n_stale} block(s) and figure(s)" if n_stale else "nothing to regenerate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
