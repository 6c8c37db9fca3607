"""Equal-steps JumpReLU quality at matched L0: saeprobe beside SAELens on one store.

Each library's default sparsity penalty lands at a different L0 (its coefficient is on a
different scale), so one FVU per library compares nothing. Here each library trains a grid of
penalty coefficients for the same steps on the same batches (lock-step, the drivers of
sae_impls.py, each in its own input normalisation), which traces a reconstruction-sparsity
frontier per library. For every saeprobe point, the peer's FVU at the same L0 is interpolated on
its frontier (linear in log L0), and the ratio peer / ours is printed: above 1, ours
reconstructs better at that sparsity. Points outside the peer's L0 range get no ratio.

In each library's own units and defaults the frontiers need not overlap within a short budget:
Adam moves a threshold by about lr per step whatever the penalty, so after a few hundred steps
L0 is set by lr x steps against the input scale, not by the coefficient (docs/benchmarks.md).
`--same-settings` removes that difference: SAELens trains in saeprobe's units (E||x||^2 = 1)
with saeprobe's threshold init, bandwidth and lambdas. What is left to differ is each library's
own machinery: initialisation, decoder-norm handling, gradient clipping, AuxK.
saeprobe trains with its default clipping (`max_grad_norm` 0.01); `--max-grad-norm C` adds a
second saeprobe frontier trained with `max_grad_norm = C` (`off`: unclipped; SAELens clips at
1.0), on the same batches.

    python benchmarks/jumprelu_frontier.py --store STORE [--steps 300] [--lr 6.4e-3]
        [--ours 0.015,0.03,0.06,0.12] [--peer 0.3,1,3,10] [--same-settings] [--max-grad-norm 1|off]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import sae_impls

from saeprobe.activations.store import ActivationStore
from saeprobe.sae.jumprelu import JumpReLUConfig


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def build(impl, coefficient, d, m, lr, first, train: dict, peer_config: dict):
    """A JumpReLU of `impl` ("saeprobe" or "sae_lens") at one penalty coefficient; `train` are
    saeprobe TrainConfig fields, `peer_config` SAELens config fields."""
    if impl == "saeprobe":
        settings = {"sparsity_coefficient": coefficient}
        return sae_impls.build(
            impl, "jumprelu", d, m, 0, lr, False, first, settings=settings, train=train
        )
    return sae_impls.build(
        impl,
        "jumprelu",
        d,
        m,
        0,
        lr,
        False,
        first,
        settings={"l0": coefficient},
        config=peer_config,
    )


def interpolate(frontier: list[tuple[float, float]], l0: float) -> float | None:
    """FVU at l0 on a frontier of (L0, FVU) points, linear in log L0; None outside its range."""
    points = sorted(frontier)
    for (l0_a, fvu_a), (l0_b, fvu_b) in zip(points, points[1:], strict=False):
        if l0_a <= l0 <= l0_b and l0_b > l0_a:
            t = (math.log(l0) - math.log(l0_a)) / (math.log(l0_b) - math.log(l0_a))
            return fvu_a + t * (fvu_b - fvu_a)
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, required=True, help="activation store (saeprobe harvest)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--lr", type=float, default=6.4e-3, help="constant lr for both libraries")
    p.add_argument("--width-factor", type=int, default=8)
    p.add_argument("--ours", type=_floats, default=[0.015, 0.03, 0.06, 0.12], help="lambdas")
    p.add_argument("--peer", type=_floats, help="l0_coefficients [0.3,1,3,10; same: --ours]")
    p.add_argument(
        "--same-settings",
        action="store_true",
        help="SAELens in saeprobe's units, threshold init, bandwidth and lambdas",
    )
    p.add_argument("--max-grad-norm", help="also train ours with this clipping (a norm, or off)")
    args = p.parse_args()
    if args.peer is None:
        args.peer = args.ours if args.same_settings else [0.3, 1.0, 3.0, 10.0]
    store = ActivationStore(args.store, verify=False)
    d, layer, n_eval = store.d_model, store.layers[0], 16_384
    m = args.width_factor * d
    source = store.source(args.batch, layer=layer, seed=0, rows=(0, store.n_tokens - n_eval))
    raw_scale = store.normalization_scale(layer)
    first = next(source.batches(0)).float()
    grids = {"saeprobe": args.ours}
    if args.max_grad_norm is not None:
        grids["saeprobe_clip"] = args.ours
    if sae_impls.available("sae_lens"):
        grids["sae_lens"] = args.peer
    else:
        print(
            "sae_lens is not installed: skipped (pip install -r benchmarks/requirements-bench.txt)"
        )
    ours = JumpReLUConfig(d_in=d, d_sae=m)
    peer_config = (
        {"jumprelu_init_threshold": ours.threshold_init, "jumprelu_bandwidth": ours.bandwidth}
        if args.same_settings
        else {}
    )
    runs = []
    for name, coefficients in grids.items():
        impl = "saeprobe" if name.startswith("saeprobe") else name
        train = {"max_grad_norm": args.max_grad_norm} if name == "saeprobe_clip" else {}
        units = "saeprobe" if args.same_settings else impl
        scale = sae_impls.peer_scale(units, first, raw_scale)
        for c in coefficients:
            obj = build(impl, c, d, m, args.lr, first * scale, train, peer_config)
            runs.append((name, c, scale, obj))
    print(
        f"JumpReLU d_in {d}, d_sae {m}: {args.steps} steps x {args.batch} rows, lr {args.lr:g}, "
        f"fp32; held-out {n_eval} tokens of {store.path}"
        + ("; SAELens with saeprobe's units and settings" if args.same_settings else "")
    )
    t0 = time.perf_counter()
    batches = source.batches(0)
    for _ in range(args.steps):
        raw = next(batches).float()
        for _impl, _c, scale, obj in runs:
            obj.step(raw * scale, None)
    x_eval = store.activations(slice(store.n_tokens - n_eval, store.n_tokens), layer).float()
    frontiers: dict[str, list[tuple[float, float]]] = {impl: [] for impl in grids}
    rows = []
    for impl, c, scale, obj in runs:
        x = x_eval * scale
        x_hat, l0 = obj.reconstruct(x)
        point = (float(l0.mean()), sae_impls.fvu(x, x_hat))
        frontiers[impl].append(point)
        rows.append((impl, c, *point))
    print(
        f"  {'impl':>14} {'coefficient':>11} {'L0':>8} {'FVU':>7}  peer FVU at this L0  peer / ours"
    )
    for impl, c, l0, fvu in rows:
        name = f"saeprobe+clip{args.max_grad_norm}" if impl == "saeprobe_clip" else impl
        line = f"  {name:>14} {c:>11g} {l0:>8.1f} {fvu:>7.4f}"
        if impl.startswith("saeprobe") and "sae_lens" in frontiers:
            peer = interpolate(frontiers["sae_lens"], l0)
            line += f"  {peer:>19.4f}  {peer / fvu:>10.3f}" if peer else "  (outside its L0 range)"
        print(line)
    print(f"  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
