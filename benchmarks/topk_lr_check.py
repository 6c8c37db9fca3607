"""Equal-steps TopK quality at several learning rates, saeprobe beside SAELens, on one store.

Each (implementation, lr) trains a fresh TopK SAE for the same steps on the same batches, through
the drivers of `sae_impls.py` (saeprobe sees E||x||^2 = 1, SAELens E||x|| = sqrt(d), as in the
quality check of `train_throughput.py`), and prints held-out FVU side by side. It separates "the
other library learns faster per nominal lr" from "the other library reaches a better SAE".

    python benchmarks/topk_lr_check.py --store STORE [--steps 150] [--lrs 4e-4,8e-4,1.6e-3]
"""

from __future__ import annotations

import argparse
import math

import sae_impls
import torch

from saeprobe.activations.store import ActivationStore


def _train(impl: str, store, lr: float, steps: int, batch: int, n_eval: int, k: int):
    d, layer = store.d_model, store.layers[0]
    scale = (math.sqrt(d) if impl == "sae_lens" else 1.0) / store.normalization_scale(layer)
    source = store.source(batch, layer=layer, seed=0, rows=(0, store.n_tokens - n_eval))
    batches = source.batches(0)
    first = next(source.batches(0)).float() * scale
    torch.manual_seed(0)
    obj = sae_impls.build(impl, "topk", d, 8 * d, k, lr, False, first)
    for _ in range(steps):
        obj.step(next(batches).float() * scale, None)
    x = store.activations(slice(store.n_tokens - n_eval, store.n_tokens), layer).float() * scale
    x_hat, _ = obj.reconstruct(x)
    return sae_impls.fvu(x, x_hat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="activation store from saeprobe harvest")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--eval-tokens", type=int, default=16384)
    parser.add_argument("--lrs", default="4e-4,8e-4,1.6e-3")
    args = parser.parse_args()
    sae_impls.OUR_ARCHS["topk"] = ("topk", {"k": None})
    store = ActivationStore(args.store, verify=False)
    print(f"TopK k={args.k}, d_sae={8 * store.d_model}, {args.steps} steps of {args.batch} rows")
    print(f"{'lr':>8}  {'saeprobe FVU':>12}  {'SAELens FVU':>11}  {'ratio':>5}")
    for lr in (float(v) for v in args.lrs.split(",")):
        ours = _train("saeprobe", store, lr, args.steps, args.batch, args.eval_tokens, args.k)
        peer = _train("sae_lens", store, lr, args.steps, args.batch, args.eval_tokens, args.k)
        print(f"{lr:>8.1e}  {ours:>12.3f}  {peer:>11.3f}  {ours / peer:>5.2f}")


if __name__ == "__main__":
    main()
