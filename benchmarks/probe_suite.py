"""Wall time of the whole probe suite at study size, against a dense-probe fit in the same run.

Builds synthetic pooled inputs (default 3,000 train / 1,000 val / 1,000 OOD prompts, d_model
384, two SAEs of 12,288 sparse non-negative latents with planted informative latents, a dense
residual with a planted direction), then runs `run_probe_suite` with every k, the `mean_diff`
and `l1` selections and 1,000-resample bootstrap intervals. It prints

    seconds per stage  and  ratio = (stage seconds) / (one dense-probe fit incl. its CV)

The dense fit is timed in the same process just before the suite, so the ratios compare across
machines and loads where lone seconds do not. Data generation is not counted: the suite starts
once features exist.

`--per-token` times the whole per-token suite instead (every per-token probe on the residual
and on each SAE's selected latents, default settings), at the size of the SmolLM2 real-data
config (configs/probe-smollm2.yaml): 1,248 / 312 / 1,160 prompts with that dataset's spread of
lengths (median 34, mean 79, up to 431 tokens: 214k token rows), d_model 576, 8 SAEs of 4,608
latents, k = 20 latents per SAE; and reports its ratio to one dense-probe fit on pooled vectors
of the same prompts. Budget: 10 minutes on 2 cores.

    OMP_NUM_THREADS=2 python benchmarks/probe_suite.py [--quick] [--budget 300]
    OMP_NUM_THREADS=2 python benchmarks/probe_suite.py --per-token [--quick] [--budget 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from saeprobe.probes import DenseProbe, run_probe_suite
from saeprobe.probes.per_token.suite import SaeTokenLatents, TokenInputs, fit_per_token_probes
from saeprobe.probes.per_token.tokens import TokenFeatures
from saeprobe.probes.synthetic import make_synthetic


def _dense_fit_seconds(data, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        DenseProbe(seed=0).fit(data.X["train"], data.y["train"], data.base_id["train"])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _token_split(rng, n: int, d: int, direction: np.ndarray, base: int):
    """Per-token Gaussian rows with the label on one random token; lengths like the real data."""
    lengths = np.clip(np.round(np.exp(rng.normal(np.log(34), 1.3, n))), 4, 431).astype(int)
    y = (rng.random(n) < 0.45).astype(int)
    values = rng.normal(size=(int(lengths.sum()), d)).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    hit = offsets[:-1] + (rng.random(n) * lengths).astype(int)
    values[hit[y == 1]] += 5.0 * direction
    base_ids = [f"b{base + i // 4}" for i in range(n)]
    pooled = np.stack(
        [values[a:b].max(axis=0) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    )
    return TokenFeatures(values.astype(np.float16), offsets), y, base_ids, pooled


def per_token_main(args) -> None:
    rng = np.random.default_rng(0)
    sizes = {"train": args.n_train, "val": args.n_val, "ood": args.n_ood}
    direction = rng.normal(size=args.d_model)
    direction /= np.linalg.norm(direction)
    splits = {
        s: _token_split(rng, n, args.d_model, direction, 10_000 * i)
        for i, (s, n) in enumerate(sizes.items())
    }
    tokens = {s: v[0] for s, v in splits.items()}
    y_train, groups = splits["train"][1], splits["train"][2]
    n_rows = sum(t.values.shape[0] for t in tokens.values())

    def sae_latents(seed: int) -> SaeTokenLatents:
        sae_rng = np.random.default_rng(seed)
        pooled = (sae_rng.random((args.n_train, args.d_sae)) < 0.05) * sae_rng.exponential(
            1.0, (args.n_train, args.d_sae)
        )
        pooled[:, :16] += y_train[:, None] * sae_rng.exponential(1.0, (args.n_train, 16))

        def columns(latents):
            out = {}
            for s, t in tokens.items():
                r = np.random.default_rng([seed, len(s)])
                shape = (t.values.shape[0], len(latents))
                out[s] = TokenFeatures(
                    (r.random(shape) < 0.1) * r.exponential(1.0, shape), t.offsets
                )
            return out

        return SaeTokenLatents(pooled.astype(np.float32), columns)

    inputs = TokenInputs(dense=tokens, saes={f"sae_{i}": sae_latents(i) for i in range(args.saes)})
    print(
        f"inputs: {args.n_train}/{args.n_val}/{args.n_ood} prompts, {n_rows} token rows, d_model "
        f"{args.d_model}, {args.saes} SAEs x {args.d_sae} latents (k=20 per SAE)"
    )
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")
    pooled_train = splits["train"][3]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        DenseProbe(seed=0).fit(pooled_train, y_train, groups)
        times.append(time.perf_counter() - start)
    reference = statistics.median(times)
    print(
        f"reference: one dense-probe fit on pooled vectors (5-fold CV x 8 C + refit) = {reference:.3f} s"
    )
    start = time.perf_counter()
    scored = fit_per_token_probes(inputs, y_train, groups, sae_k=20, sae_selection="l1")
    total = time.perf_counter() - start
    by_probe: dict[str, float] = {}
    for p in scored:
        key = p.key["probe"] + (" (residual)" if p.key["sae"] is None else " (SAE latents)")
        by_probe[key] = by_probe.get(key, 0.0) + p.seconds
    print(f"\n{'per-token probe':<30}{'seconds':>10}{'x dense fit':>14}")
    for key, seconds in sorted(by_probe.items(), key=lambda kv: -kv[1]):
        print(f"{key:<30}{seconds:>10.2f}{seconds / reference:>14.1f}")
    print(f"{'total (incl. selection)':<30}{total:>10.2f}{total / reference:>14.1f}")
    verdict = "within" if total <= args.budget else "OVER"
    print(f"total {total:.1f} s: {verdict} the {args.budget:.0f} s budget")
    from saeprobe.probes.metrics import auroc

    print("\nOOD AUROC (sanity; label planted on one token):")
    for p in scored:
        if p.key["sae"] is None:
            print(f"  {p.key['probe']:<16} {auroc(splits['ood'][1], p.scores['ood']):.3f}")


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
    parser.add_argument(
        "--per-token", action="store_true", help="time the per-token suite (SmolLM2 config size)"
    )
    args = parser.parse_args()
    if args.per_token:
        defaults = {"n_train": 3000, "n_val": 1000, "n_ood": 1000, "d_model": 384, "d_sae": 12288}
        smollm2 = {"n_train": 1248, "n_val": 312, "n_ood": 1160, "d_model": 576, "d_sae": 4608}
        for name, value in smollm2.items():
            if getattr(args, name) == defaults[name]:
                setattr(args, name, value)
        if args.saes == 2:
            args.saes = 8
        if args.budget == 300.0:
            args.budget = 600.0
        if args.quick:
            args.n_train, args.n_val, args.n_ood, args.saes = 300, 80, 300, 2
        per_token_main(args)
        return
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
