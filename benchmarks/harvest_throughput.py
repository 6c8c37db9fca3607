"""Harvest throughput as a ratio to a bare forward pass over the same batches, in one run.

Three rates are measured alternately (`--repeats` rounds, medians reported), on the same corpus,
windows and batches:

    harvest      the real `harvest()` end to end: tokenisation, forward cut after the layer,
                 selecting kept tokens, shard writes with sha256 (model load excluded)
    bare full    `model(**batch)` on the pre-tokenised batches: the whole model, nothing kept
    bare to L    the same forward cut after layer L (the work a harvest of layer L must do)

and printed as ratios harvest / bare (target >= 0.9 against "bare to L"). The bf16 line is the
speed-up of a bf16 harvest over an fp32 one (model and store in bf16), also measured side by side.

    python benchmarks/harvest_throughput.py [--tokens 30000] [--layer 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from saeprobe.activations.harvest import HarvestConfig, _batches, harvest
from saeprobe.activations.windows import collate, pad_id
from saeprobe.lm import capture_layers, load_model

SHARED = (
    Path(__file__).resolve().parents[2] / "shared/data/pretrain_text/gutenberg_books_chunks.jsonl"
)


def _inputs(cfg: HarvestConfig, lm, n_tokens: int) -> list[dict]:
    batches, kept = [], 0
    for windows in _batches(cfg, lm, rank=0, world=1):
        enc = collate(windows, pad_id(lm.tokenizer))
        batches.append({k: enc[k] for k in ("input_ids", "attention_mask")})
        kept += int(enc["keep"].sum())
        if kept >= n_tokens:
            break
    return batches


def _time_harvest(cfg: HarvestConfig, lm) -> float:
    out = Path(tempfile.mkdtemp(prefix="harvest-bench-"))
    try:
        t = time.perf_counter()
        harvest(cfg.model_copy(update={"out": out / "store"}), lm=lm)
        return time.perf_counter() - t
    finally:
        shutil.rmtree(out)


@torch.no_grad()
def _time_bare(lm, batches, layer: int | None) -> float:
    t = time.perf_counter()
    for batch in batches:
        if layer is None:
            lm.model(**batch)
        else:
            capture_layers(lm.model, lm.blocks, [layer], **batch)
    return time.perf_counter() - t


def measure(
    data: str, layer: int, n_tokens: int, repeats: int, dtype: str, shard_tokens: int
) -> dict[str, float]:
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    lm = load_model("minilm", dtype=torch_dtype)
    cfg = HarvestConfig(
        layers=[layer],
        data=data,
        out=Path("unused"),
        max_tokens=n_tokens,
        dtype=dtype,
        progress=False,
        device="cpu",
    )
    batches = _inputs(cfg, lm, n_tokens)
    _time_harvest(cfg, lm)  # warm-up: allocator, tokenizer caches, page cache
    rows = {"harvest": [], "bare_full": [], "bare_to_layer": []}
    for _ in range(repeats):
        rows["harvest"].append(_time_harvest(cfg, lm))
        rows["bare_full"].append(_time_bare(lm, batches, None))
        rows["bare_to_layer"].append(_time_bare(lm, batches, layer))
    return {k: statistics.median(v) for k, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED) if SHARED.exists() else "python-docs")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shard-tokens", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"data={Path(args.data).name} layer={args.layer} tokens={args.tokens} "
        f"threads={torch.get_num_threads()} repeats={args.repeats}"
    )
    fp32 = measure(args.data, args.layer, args.tokens, args.repeats, "float32", args.shard_tokens)
    print(
        f"fp32 harvest / bare forward to layer {args.layer}: "
        f"{fp32['bare_to_layer'] / fp32['harvest']:.2f}  (target >= 0.9)"
    )
    print(f"fp32 harvest / bare full forward:      {fp32['bare_full'] / fp32['harvest']:.2f}")
    bf16 = measure(args.data, args.layer, args.tokens, args.repeats, "bfloat16", args.shard_tokens)
    print(
        f"bf16 harvest / bare forward to layer {args.layer}: "
        f"{bf16['bare_to_layer'] / bf16['harvest']:.2f}"
    )
    print(f"bf16 speed-up over fp32 (harvest):     {fp32['harvest'] / bf16['harvest']:.2f}x")
    print(
        f"bf16 speed-up over fp32 (bare to L):   "
        f"{fp32['bare_to_layer'] / bf16['bare_to_layer']:.2f}x"
    )


if __name__ == "__main__":
    main()
