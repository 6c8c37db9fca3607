"""Harvest throughput as a ratio to a bare forward pass over the same batches, in one run.

Three rates are measured alternately (`--repeats` rounds, medians reported), on the same corpus,
windows and batches:

    harvest      the real `harvest()` end to end: tokenisation, forward cut after the layer,
                 selecting kept tokens, shard writes with sha256 (model load excluded)
    bare full    `model(**batch)` on the pre-tokenised batches: the whole model, nothing kept
    bare to L    the same forward cut after layer L (the work a harvest of layer L must do)

and printed as ratios harvest / bare (target >= 0.9 against "bare to L"), with the tokens/s of
each beside it. Two precisions are measured in the same run: fp32, and bf16 autocast (fp32
weights, bf16 matmuls, activations stored as float32), with the autocast speed-up and how far
the autocast activations are from the fp32 ones (relative error and cosine, per token).

    python benchmarks/harvest_throughput.py [--model smollm2] [--layer 15] [--tokens 20000]
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


def _autocast(enabled: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


def _time_harvest(cfg: HarvestConfig, lm) -> float:
    out = Path(tempfile.mkdtemp(prefix="harvest-bench-"))
    try:
        t = time.perf_counter()
        harvest(cfg.model_copy(update={"out": out / "store"}), lm=lm)
        return time.perf_counter() - t
    finally:
        shutil.rmtree(out)


@torch.no_grad()
def _time_bare(lm, batches, layer: int | None, autocast: bool) -> float:
    t = time.perf_counter()
    with _autocast(autocast):
        for batch in batches:
            if layer is None:
                lm.model(**batch)
            else:
                capture_layers(lm.model, lm.blocks, [layer], **batch)
    return time.perf_counter() - t


@torch.no_grad()
def autocast_error(lm, batches, layer: int) -> tuple[float, float]:
    """Median per-token relative error ||a - f|| / ||f|| and cosine of bf16-autocast residuals a
    against fp32 residuals f, over real (attended, non-first) tokens."""
    errors, cosines = [], []
    for batch in batches[:4]:
        exact = capture_layers(lm.model, lm.blocks, [layer], **batch)[layer]
        with _autocast(True):
            approx = capture_layers(lm.model, lm.blocks, [layer], **batch)[layer].float()
        keep = batch["attention_mask"].bool().clone()
        keep[:, 0] = False
        f, a = exact[keep], approx[keep]
        errors.append((a - f).norm(dim=-1) / f.norm(dim=-1))
        cosines.append(torch.nn.functional.cosine_similarity(a, f, dim=-1))
    return float(torch.cat(errors).median()), float(torch.cat(cosines).median())


def measure(
    lm, data: str, layer: int, n_tokens: int, repeats: int, autocast: bool, shard_tokens: int
) -> dict[str, float]:
    cfg = HarvestConfig(
        model=lm.name,
        layers=[layer],
        data=data,
        out=Path("unused"),
        max_tokens=n_tokens,
        autocast=autocast,
        shard_tokens=shard_tokens,
        progress=False,
        device="cpu",
    )
    batches = _inputs(cfg, lm, n_tokens)
    _time_harvest(cfg, lm)  # warm-up: allocator, tokenizer caches, page cache
    rows = {"harvest": [], "bare_full": [], "bare_to_layer": []}
    for _ in range(repeats):
        rows["harvest"].append(_time_harvest(cfg, lm))
        rows["bare_full"].append(_time_bare(lm, batches, None, autocast))
        rows["bare_to_layer"].append(_time_bare(lm, batches, layer, autocast))
    kept = sum(int(b["attention_mask"].sum()) for b in batches)  # ~ tokens per bare pass
    return {k: statistics.median(v) for k, v in rows.items()} | {"tokens": kept}


def _report(name: str, r: dict[str, float], n_tokens: int, layer: int) -> None:
    # Rates count the tokens forwarded (every attended position of the same batches), so they
    # compare like for like. The harvest keeps n_tokens of them: no special tokens, no window's
    # first token, and the last batch runs past n_tokens.
    print(
        f"{name}, tokens forwarded per s: harvest {r['tokens'] / r['harvest']:,.0f} "
        f"(keeping {n_tokens:,} of {r['tokens']:,}), bare to layer {layer} "
        f"{r['tokens'] / r['bare_to_layer']:,.0f}, bare full {r['tokens'] / r['bare_full']:,.0f}"
    )
    print(
        f"  harvest / bare to layer {layer}: {r['bare_to_layer'] / r['harvest']:.2f} "
        f"(target >= 0.9); harvest / bare full: {r['bare_full'] / r['harvest']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--data", default=str(SHARED) if SHARED.exists() else "python-docs")
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shard-tokens", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    print(
        f"model={args.model} data={Path(args.data).name} layer={args.layer}/{lm.n_layers} "
        f"tokens={args.tokens} threads={torch.get_num_threads()} repeats={args.repeats}"
    )
    common = (lm, args.data, args.layer, args.tokens, args.repeats)
    fp32 = measure(*common, False, args.shard_tokens)
    bf16 = measure(*common, True, args.shard_tokens)
    _report("fp32", fp32, args.tokens, args.layer)
    _report("bf16 autocast", bf16, args.tokens, args.layer)
    print(f"bf16 autocast speed-up (harvest):   {fp32['harvest'] / bf16['harvest']:.2f}x")
    print(
        f"bf16 autocast speed-up (bare to L): {fp32['bare_to_layer'] / bf16['bare_to_layer']:.2f}x"
    )
    print(f"bf16 autocast speed-up (bare full): {fp32['bare_full'] / bf16['bare_full']:.2f}x")
    cfg = HarvestConfig(model=lm.name, layers=[args.layer], data=args.data, out=Path("unused"))
    error, cosine = autocast_error(lm, _inputs(cfg, lm, 4096), args.layer)
    print(
        f"bf16 autocast vs fp32 residuals: median relative error {error:.4f}, cosine {cosine:.5f}"
    )


if __name__ == "__main__":
    main()
