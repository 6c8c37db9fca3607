"""Training throughput of saeprobe's SAEs beside SAELens and sparsify, interleaved in one run,
plus an equal-steps quality check on real activations.

Throughput. For each shape (d_in, d_sae) and precision, every implementation trains full steps
(forward, backward, Adam, the library's constraints; see sae_impls.py) on the same normalised
batch with the same d_in, d_sae, k, batch and Adam. The steps are interleaved round-robin
(`--repeats` rounds, order rotated each round, medians reported), so machine noise hits every
implementation alike. In the same rounds it times the 5 GEMMs of 2*B*d_in*d_sae FLOPs of an ideal
dense step; "frac" = (5-GEMM time) / (step time), above 1 when a sparse step beats the dense ideal.
10 % of the latents are marked dead, so every implementation does its AuxK work, and JumpReLU
thresholds are placed where L0 is about k (a trained state; at init half the latents fire).

Peak RSS. One subprocess per implementation builds each configuration in turn and reports the
process's peak RSS over 3 training steps (VmHWM, reset once the SAE is built), and that peak
minus the process's RSS before the SAE existed (model, optimizer state and step temporaries).

Quality. Each implementation trains the same number of steps on the same batches of a real
activation store (MiniLM layer 3 by default; harvested on first use), each in its library's
own input normalisation, at each lr of a grid; FVU and L0 on held-out tokens are printed per lr,
with each implementation's best FVU over the grid and its ratio to saeprobe's best. One shared
lr would measure the libraries' parametrisations (SAELens' decoder rows start at norm 0.1, so an
Adam step moves them 10x further than saeprobe's unit rows), not the SAEs they can reach.

    python benchmarks/train_throughput.py --json bench.json          # full run
    python benchmarks/train_throughput.py --quick                    # d 384 x 12288 only

Peers are optional: `pip install -c constraints.txt -r benchmarks/requirements-bench.txt` with
torch==2.13.0 in constraints.txt. A missing peer is skipped with a message.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sae_impls  # noqa: E402

SHAPES = ["384x3072", "384x12288", "576x4608", "576x18432"]
MAIN = (384, 12288)  # the shape the targets are stated at
# JumpReLU is compared at matched L0 by jumprelu_frontier.py: its penalties differ by library
QUALITY_ARCHS = ["topk", "batchtopk"]
# x sqrt(2) steps: at x2 the grid missed SAELens' BatchTopK optimum by 1.5 % of FVU; every
# library's best lay inside this range at 150 steps (docs/benchmarks.md)
QUALITY_LRS = [3.2e-3, 4.5e-3, 6.4e-3, 9e-3]


def _shape(text: str) -> tuple[int, int]:
    d, m = text.lower().split("x")
    return int(d), int(m)


def _batch(d: int, b: int, store) -> torch.Tensor:
    """A normalised batch (E||x||^2 = 1): real activations when a store of width d is given."""
    if store is not None and store.d_model == d:
        x = store.activations(slice(0, b)).float()
        return x / store.normalization_scale(store.layers[0])
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, d, generator=g) / d**0.5


def _entries(args, d: int, m: int, bf16: bool, x: torch.Tensor):
    entries = []
    for arch in args.archs:
        for impl in args.impls:
            if not sae_impls.supports(impl, arch) or (impl != "saeprobe" and arch == "jumprelu_qf"):
                continue
            obj = sae_impls.build(impl, arch, d, m, args.k, args.lr, bf16, x)
            obj.set_trained_sparsity(x, args.k)
            entries.append(((impl, arch), obj.step))
    five, flops = sae_impls.gemm_step(x.shape[0], d, m, bf16)
    entries.append((("gemm", "x5"), five))
    return entries, flops


def time_interleaved(entries, x, dead, repeats: int, warmup: int = 2) -> dict:
    for _, fn in entries:
        for _ in range(warmup):
            fn(x, dead)
    times: dict = {key: [] for key, _ in entries}
    for r in range(repeats):
        shift = r % len(entries)
        for key, fn in entries[shift:] + entries[:shift]:
            t = time.perf_counter()
            fn(x, dead)
            times[key].append(time.perf_counter() - t)
    return {key: statistics.median(v) for key, v in times.items()}


def throughput(args, store) -> tuple[list[dict], dict]:
    records, gemm = [], {}
    for d, m in args.shapes:
        x = _batch(d, args.batch, store)
        dead = torch.zeros(m, dtype=torch.bool)
        dead[: m // 10] = True
        for precision in args.precisions:
            bf16 = precision == "bf16"
            entries, flops = _entries(args, d, m, bf16, x)
            seconds = time_interleaved(entries, x, dead, args.repeats)
            t_gemm = seconds.pop(("gemm", "x5"))
            gemm[(d, m, precision)] = flops / t_gemm / 1e9
            for (impl, arch), s in seconds.items():
                records.append(
                    {
                        "impl": impl,
                        "arch": arch,
                        "d_in": d,
                        "d_sae": m,
                        "precision": precision,
                        "acts_per_s": round(args.batch / s, 1),
                        "frac_of_gemm": round(t_gemm / s, 3),
                        "gemm_gflops": round(flops / t_gemm / 1e9, 1),
                        "peak_rss_mb": None,
                        "step_rss_mb": None,
                    }
                )
            del entries
            gc.collect()
            _print_block(records, d, m, precision, gemm[(d, m, precision)], args.batch, flops)
    return records, gemm


def _find(records, impl, arch, d, m, precision):
    for r in records:
        if (r["impl"], r["arch"], r["d_in"], r["d_sae"], r["precision"]) == (
            impl,
            arch,
            d,
            m,
            precision,
        ):
            return r
    return None


def _peer_arch(impl: str, arch: str) -> str:
    return "jumprelu" if impl == "sae_lens" and arch == "jumprelu_qf" else arch


def _print_block(records, d, m, precision, gflops, b, flops):
    gemm_rate = gflops * 1e9 / flops * b
    print(
        f"\nd_in={d} d_sae={m} {precision}: 5-GEMM reference {gemm_rate:,.0f} act/s "
        f"({gflops:.0f} GFLOP/s)"
    )
    head = f"{'arch':>12} {'saeprobe':>10} {'sae_lens':>10} {'sparsify':>10}"
    print(head + f" {'ours/SL':>8} {'ours/sp':>8} {'frac':>6}")
    for arch in dict.fromkeys(r["arch"] for r in records if r["impl"] == "saeprobe"):
        ours = _find(records, "saeprobe", arch, d, m, precision)
        if ours is None:
            continue
        sl = _find(records, "sae_lens", _peer_arch("sae_lens", arch), d, m, precision)
        sp = _find(records, "sparsify", arch, d, m, precision)

        def rate(r):
            return f"{r['acts_per_s']:>10,.0f}" if r else f"{'-':>10}"

        def ratio(r, ours=ours):
            return f"{ours['acts_per_s'] / r['acts_per_s']:>8.2f}" if r else f"{'-':>8}"

        print(
            f"{arch:>12} {rate(ours)} {rate(sl)} {rate(sp)} {ratio(sl)} {ratio(sp)} "
            f"{ours['frac_of_gemm']:>6.2f}",
            flush=True,
        )


def targets(records) -> list[str]:
    """The issue's CPU targets at d_in 384, d_sae 12288, each with its measured ratio."""
    d, m = MAIN
    lines = []
    for precision in ("fp32", "bf16"):
        ours = {
            r["arch"]: r
            for r in records
            if r["impl"] == "saeprobe"
            and (r["d_in"], r["d_sae"], r["precision"]) == (d, m, precision)
        }
        if not ours:
            continue
        for arch, r in ours.items():
            sl = _find(records, "sae_lens", _peer_arch("sae_lens", arch), d, m, precision)
            if sl:
                ratio = r["acts_per_s"] / sl["acts_per_s"]
                lines.append(_verdict(f"{precision} {arch} vs SAELens", ratio, ">=", 3.0))
        sp = _find(records, "sparsify", "topk", d, m, precision)
        if sp and "topk" in ours:
            ratio = ours["topk"]["acts_per_s"] / sp["acts_per_s"]
            lines.append(_verdict(f"{precision} topk vs sparsify", ratio, ">=", 1.5))
        if "topk" in ours:
            for arch in ("jumprelu", "jumprelu_qf"):
                if arch in ours:
                    ratio = ours["topk"]["acts_per_s"] / ours[arch]["acts_per_s"]
                    lines.append(
                        _verdict(f"{precision} {arch} time / topk time", ratio, "<=", 1.25)
                    )
    return lines


def _verdict(name: str, value: float, op: str, target: float) -> str:
    ok = value >= target if op == ">=" else value <= target
    return f"{'MET ' if ok else 'MISS'} {name:<36} {value:6.2f}  (target {op} {target})"


# ----- peak RSS (one subprocess per implementation) ------------------------------------------------
def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_child(args) -> None:
    """Peak RSS of building and training each configuration of one implementation."""
    impl = args.rss_child
    for d, m in args.shapes:
        x = _batch(d, args.batch, None)
        dead = torch.zeros(m, dtype=torch.bool)
        dead[: m // 10] = True
        for precision in args.precisions:
            for arch in args.archs:
                if not sae_impls.supports(impl, arch) or (
                    impl != "saeprobe" and arch == "jumprelu_qf"
                ):
                    continue
                gc.collect()
                base = _status_mb("VmRSS")
                obj = sae_impls.build(impl, arch, d, m, args.k, args.lr, precision == "bf16", x)
                obj.set_trained_sparsity(x, args.k)
                gc.collect()
                # Reset VmHWM to the current RSS (model built), so the peak is training's, not
                # the benchmark's own set-up of the trained state.
                Path("/proc/self/clear_refs").write_text("5")
                for _ in range(3):
                    obj.step(x, dead)
                peak = _status_mb("VmHWM")
                del obj
                rec = {"impl": impl, "arch": arch, "d_in": d, "d_sae": m, "precision": precision}
                print(json.dumps(rec | {"peak_rss_mb": peak, "step_rss_mb": peak - base}))


def peak_rss(args, records) -> None:
    if not Path("/proc/self/clear_refs").exists():
        print("peak RSS: /proc/self/clear_refs is not available; skipped")
        return
    env = os.environ | {"MALLOC_MMAP_THRESHOLD_": "65536"}  # large frees go back to the OS
    for impl in args.impls:
        cmd = [sys.executable, __file__, "--rss-child", impl, "--batch", str(args.batch)]
        cmd += ["--threads", str(torch.get_num_threads())]
        cmd += ["--k", str(args.k), "--shapes", *[f"{d}x{m}" for d, m in args.shapes]]
        cmd += ["--precisions", *args.precisions, "--archs", *args.archs]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"peak RSS of {impl} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        for line in done.stdout.splitlines():
            if not line.startswith("{"):
                continue
            got = json.loads(line)
            for r in records:
                if all(r[k] == got[k] for k in ("impl", "arch", "d_in", "d_sae", "precision")):
                    r["peak_rss_mb"] = round(got["peak_rss_mb"], 1)
                    r["step_rss_mb"] = round(got["step_rss_mb"], 1)
    print("\npeak RSS, MB (process peak; in brackets: above the process before the SAE existed)")
    for r in records:
        if r["peak_rss_mb"] is not None and (r["d_in"], r["d_sae"]) == MAIN:
            print(
                f"  {r['precision']} {r['impl']:>9} {r['arch']:>12} {r['peak_rss_mb']:>8.0f} "
                f"({r['step_rss_mb']:.0f})"
            )


# ----- equal-steps quality on real activations ---------------------------------------------------
def _store(args):
    from saeprobe.activations.store import ActivationStore

    path = args.store
    if path is None:
        cache = Path(os.environ.get("SAEPROBE_CACHE", Path.home() / ".cache" / "saeprobe"))
        path = cache / "bench" / "minilm-l3"
        if not (path / "manifest.json").exists():
            from saeprobe.activations.harvest import HarvestConfig, harvest

            print(f"harvesting a MiniLM layer-3 store of 262144 tokens into {path} (once)")
            cfg = HarvestConfig(
                model="minilm", layers=[3], out=path, max_tokens=262_144, progress=False
            )
            harvest(cfg)
    return ActivationStore(path, verify=False)


def quality(args, store) -> list[dict]:
    """Every (arch, impl, lr) trains on the same batches in lock-step; held-out FVU per lr, and
    each implementation's best over the grid. One shared lr favours whichever library's
    parametrisation turns that lr into the larger effective step, so the verdict is best
    against best."""
    d = store.d_model
    m, layer = args.quality_width_factor * d, store.layers[0]
    n_eval = 16_384
    source = store.source(args.batch, layer=layer, seed=0, rows=(0, store.n_tokens - n_eval))
    raw_scale = store.normalization_scale(layer)
    x_eval = store.activations(slice(store.n_tokens - n_eval, store.n_tokens), layer).float()
    first = next(source.batches(0)).float()
    runs = []
    for arch in args.quality_archs:
        impls = list(args.impls)
        if arch == "topk" and "saeprobe" in impls:
            impls.insert(1, "saeprobe_dense")  # the same SAE through the dense reference step
        for impl in impls:
            if not sae_impls.supports(impl, arch):
                continue
            scale = sae_impls.peer_scale(impl, first, raw_scale)
            for lr in args.quality_lrs:
                for seed in range(args.quality_seeds):
                    obj = sae_impls.build(impl, arch, d, m, args.k, lr, False, first * scale, seed)
                    runs.append((obj, scale, lr, seed))
    lrs = ", ".join(f"{lr:g}" for lr in args.quality_lrs)
    print(
        f"\nequal-steps quality: {args.quality_steps} steps x {args.batch} rows of {store.path} "
        f"(d_in {d}, d_sae {m}, k {args.k}, constant lr in [{lrs}], fp32); held-out {n_eval} tokens"
    )
    t0 = time.perf_counter()
    batches = source.batches(0)
    for _ in range(args.quality_steps):
        raw = next(batches).float()
        for obj, scale, *_ in runs:
            obj.step(raw * scale, None)
    out = []
    for obj, scale, lr, seed in runs:
        x = x_eval * scale
        x_hat, l0 = obj.reconstruct(x)
        rec = {"impl": obj.impl, "arch": obj.arch, "d_in": d, "d_sae": m, "k": args.k, "lr": lr}
        rec |= {"seed": seed, "steps": args.quality_steps, "fvu": round(sae_impls.fvu(x, x_hat), 4)}
        rec["l0"] = round(float(l0.mean()), 1)
        out.append(rec)
    for line in quality_table(out, args.quality_lrs):
        print(line)
    print(f"  ({time.perf_counter() - t0:.0f} s)")
    return out


def best_fvu(records: list[dict]) -> dict[tuple[str, str], dict]:
    """(arch, impl) -> {lr, fvu (mean over seeds), fvus, l0} at the lr with the lowest mean FVU."""
    cells: dict[tuple[str, str, float], list[dict]] = {}
    for r in records:
        cells.setdefault((r["arch"], r["impl"], r["lr"]), []).append(r)
    best: dict[tuple[str, str], dict] = {}
    for (arch, impl, lr), runs in cells.items():
        fvus = [r["fvu"] for r in runs]
        cell = {"lr": lr, "fvu": statistics.mean(fvus), "fvus": fvus, "l0": runs[0]["l0"]}
        if (arch, impl) not in best or cell["fvu"] < best[(arch, impl)]["fvu"]:
            best[(arch, impl)] = cell
    return best


def quality_table(records: list[dict], lrs: list[float]) -> list[str]:
    """FVU per lr (mean over seeds), each implementation's best, its seed range when there are
    several seeds, and theirs / ours of the bests."""
    head = "".join(f"{f'lr {lr:g}':>11}" for lr in lrs)
    lines = [
        f"  {'arch':>10} {'impl':>14}{head}  {'best (lr)':>16}  {'seed range':>15}  {'L0':>6}"
        "  theirs / ours (>1: ours better)"
    ]
    best = best_fvu(records)
    for (arch, impl), top in best.items():
        row = ""
        for lr in lrs:
            fvus = [
                r["fvu"] for r in records if (r["arch"], r["impl"], r["lr"]) == (arch, impl, lr)
            ]
            row += f"{statistics.mean(fvus):>11.4f}"
        ours = best.get((arch, "saeprobe"))
        ratio = f"{top['fvu'] / ours['fvu']:.3f}" if ours and impl != "saeprobe" else ""
        cell = f"{top['fvu']:.4f} ({top['lr']:g})"
        spread = f"{min(top['fvus']):.4f}-{max(top['fvus']):.4f}" if len(top["fvus"]) > 1 else ""
        lines.append(
            f"  {arch:>10} {impl:>14}{row}  {cell:>16}  {spread:>15}  {top['l0']:>6.1f}  {ratio}"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=SHAPES, help="d_inxd_sae, e.g. 384x12288")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--archs", nargs="+", default=list(sae_impls.OUR_ARCHS))
    p.add_argument("--impls", nargs="+", default=["saeprobe", "sae_lens", "sparsify"])
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--quick",
        action="store_true",
        help="d 384 x 12288 only, 3 repeats, 50 quality steps, no RSS",
    )
    p.add_argument(
        "--rss",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure peak RSS per implementation [on unless --quick]",
    )
    p.add_argument("--store", type=Path, help="activation store for the quality check")
    p.add_argument("--quality-steps", type=int, default=None, help="[150; --quick: 50; 0: off]")
    p.add_argument("--quality-width-factor", type=int, default=8)
    p.add_argument("--quality-archs", nargs="+", default=QUALITY_ARCHS)
    p.add_argument(
        "--quality-lrs",
        type=lambda t: [float(v) for v in t.split(",")],
        default=QUALITY_LRS,
        help="comma-separated constant lrs; each implementation's best is compared [%(default)s]",
    )
    p.add_argument(
        "--quality-seeds", type=int, default=1, help="SAE inits per (impl, arch, lr) [1]"
    )
    p.add_argument("--threads", type=int, help="torch threads [torch's default: the cores]")
    p.add_argument("--no-throughput", action="store_true", help="only the quality check")
    p.add_argument("--json", type=Path, help="write the records here")
    p.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.shapes = [
        _shape(s) for s in (["384x12288"] if args.quick and args.shapes == SHAPES else args.shapes)
    ]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        return rss_child(args)
    if args.quick and args.repeats == 5:
        args.repeats = 3
    if args.quality_steps is None:
        args.quality_steps = 50 if args.quick else 150
    rss = (not args.quick) if args.rss is None else args.rss
    for impl in list(args.impls):
        if not sae_impls.available(impl):
            print(
                f"{impl} is not installed: skipped (pip install -r benchmarks/requirements-bench.txt)"
            )
            args.impls.remove(impl)

    import saeprobe

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, saeprobe "
        f"{saeprobe.__version__}, batch {args.batch}, k {args.k}, repeats {args.repeats}"
    )
    store = _store(args) if args.quality_steps else None
    records, gemm = ([], {}) if args.no_throughput else throughput(args, store)
    for line in targets(records):
        print(line)
    if rss and records:
        peak_rss(args, records)
    qual = quality(args, store) if args.quality_steps else []
    if args.json:
        main_shape = MAIN if any(k[:2] == MAIN for k in gemm) else next(iter(gemm), MAIN)[:2]
        doc = {
            "records": records,
            "gemm_gflops_fp32": round(gemm.get((*main_shape, "fp32"), float("nan")), 1),
            "gemm_gflops_bf16": round(gemm.get((*main_shape, "bf16"), float("nan")), 1),
            "gemm_shape": list(main_shape),
            "quality": qual,
            "targets": targets(records),
            "threads": torch.get_num_threads(),
            "batch": args.batch,
            "k": args.k,
        }
        args.json.write_text(json.dumps(doc, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
