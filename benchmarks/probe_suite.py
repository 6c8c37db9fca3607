"""Wall time of the whole probe suite at study size, against a dense-probe fit in the same run.

Builds synthetic pooled inputs (default 3,000 train / 1,000 val / 1,000 OOD prompts, d_model
384, two SAEs of 12,288 sparse non-negative latents with planted informative latents, a dense
residual with a planted direction), then runs `run_probe_suite` with every k, the `mean_diff`
and `l1` selections and 1,000-resample bootstrap intervals. It prints

    seconds per stage  and  ratio = (stage seconds) / (one dense-probe fit incl. its CV)

The dense fit is timed in the same process just before the suite, so the ratios compare across
machines and loads where lone seconds do not. Data generation is not counted: the suite starts
once features exist.

    OMP_NUM_THREADS=2 python benchmarks/probe_suite.py [--quick] [--budget 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from saeprobe.probes import DenseProbe, run_probe_suite
from saeprobe.probes.synthetic import make_synthetic


def _dense_fit_seconds(data, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        DenseProbe(seed=0).fit(data.X["train"], data.y["train"], data.base_id["train"])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--n-ood", type=int, default=1000)
    parser.add_argument("--d-model", type=int, default=384)
    parser.add_argument("--d-sae", type=int, default=12288)
    parser.add_argument("--saes", type=int, default=2)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 5, 10, 20, 50])
    parser.add_argument("--selections", nargs="+", default=["mean_diff", "l1"])
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="dense-fit reference repeats")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds allowed")
    parser.add_argument("--quick", action="store_true", help="a small smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_val, args.n_ood, args.d_sae = 600, 200, 200, 2048

    start = time.perf_counter()
    data, saes = make_synthetic(
        args.n_train,
        args.n_val,
        args.n_ood,
        d_model=args.d_model,
        d_sae=args.d_sae,
        sae_names=tuple(f"sae_{i}" for i in range(args.saes)),
        n_informative=16,
        signal=1.5,
        seed=0,
    )
    build = time.perf_counter() - start
    density = float(np.mean(saes["sae_0"].Z["train"] != 0))
    print(
        f"inputs: {args.n_train}/{args.n_val}/{args.n_ood} prompts, d_model {args.d_model}, "
        f"{args.saes} SAEs x {args.d_sae} latents (density {density:.3f}); "
        f"built in {build:.1f} s (not counted)"
    )
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")

    reference = _dense_fit_seconds(data, args.repeats)
    print(f"reference: one dense-probe fit (5-fold grouped CV x 8 C + refit) = {reference:.3f} s")

    res = run_probe_suite(
        data,
        saes,
        ks=args.ks,
        selections=args.selections,
        seeds=(0,),
        n_bootstrap=args.n_bootstrap,
    )
    total = res.timings["total"]
    print(f"\n{'stage':<26}{'seconds':>10}{'x dense fit':>14}")
    for stage, seconds in sorted(res.timings.items(), key=lambda kv: -kv[1]):
        if stage != "total":
            print(f"{stage:<26}{seconds:>10.2f}{seconds / reference:>14.1f}")
    print(f"{'total':<26}{total:>10.2f}{total / reference:>14.1f}")
    n_probes = len(res.probe_info)
    print(f"\n{n_probes} probes fitted, {len(res.results)} (probe, split) records")
    verdict = "within" if total <= args.budget else "OVER"
    print(f"total {total:.1f} s: {verdict} the {args.budget:.0f} s budget")

    print("\nOOD AUROC (sanity):")
    for probe, sae, k, sel in (
        ("dense", None, None, None),
        ("one_sparse", "sae_0", 1, "train_auroc"),
        ("k_sparse", "sae_0", args.ks[-1], args.selections[0]),
        ("k_sparse", "sae_0", args.ks[-1], args.selections[-1]),
        ("random_latents", "sae_0", args.ks[-1], "random"),
        ("reconstruction", "sae_0", None, None),
    ):
        rows = res.find(probe=probe, sae=sae, k=k, selection=sel, split="ood")
        if rows:
            r = rows[0]
            label = f"{probe} k={k} {sel or ''}".strip()
            print(
                f"  {label:<34} {r['auroc']:.3f} "
                f"[{r['auroc_ci_low']:.3f}, {r['auroc_ci_high']:.3f}]"
            )


if __name__ == "__main__":
    main()
