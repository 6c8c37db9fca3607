"""`figure`: a figure the run wrote, copied next to the doc under the name the doc links to.

`<!-- generated: figure run=RUN src=auroc_vs_k.png dest=figures/x.png alt="..." -->`
"""

from __future__ import annotations

from pathlib import Path

from . import Block, BlockError, kind, need


@kind("figure")
def figure(run: Path, params: dict[str, str]) -> Block:
    src = run / need(params, "src")
    dest = need(params, "dest")
    if not src.is_file():
        raise BlockError(f"figure {src} not found")
    alt = params.get("alt", Path(dest).stem)
    return Block(text=f"![{alt}]({dest})", copies=[(src, dest)])
