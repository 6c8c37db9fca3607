"""Training throughput per architecture, as a fraction of the machine's measured GEMM rate.

For d_in = 384, d_sae in {3072, 12288} and batch 4096, times full training steps (forward,
backward, Adam, decoder renormalisation via the real Trainer step) and, in the same run, the
rate of the matmuls an ideal dense SAE step needs: 5 GEMMs of 2*B*d_in*d_sae FLOPs (encoder and
decoder forward, the gradient into the latents, and the two weight gradients). It prints

    activations/s  and  fraction = (ideal GEMM time for the step) / (measured step time)

in fp32 and in bf16 autocast. Fractions, not lone times, are what compare across noisy machines.

    python benchmarks/train_throughput.py [--device cuda] [--repeats 5] [--widths 3072 12288]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from saeprobe.sae import StepContext, create_sae
from saeprobe.train.trainer import _remove_parallel_decoder_grad

ARCHS = {
    "relu": {},
    "gated": {},
    "jumprelu": {},
    "jumprelu_qf": {"sparsity_penalty": "quadratic-frequency", "frequency_scale": 0.1},
    "topk": {"k": 32},
    "batchtopk": {"k": 32},
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def gemm_seconds(b, d, m, device, bf16, repeats):
    """Time of the 5 GEMMs of one dense SAE training step, measured directly.

    The input needs no gradient, so a step is 5 GEMMs of 2*B*d_in*d_sae FLOPs each.
    """
    dtype = torch.bfloat16 if bf16 else torch.float32
    x = torch.randn(b, d, device=device, dtype=dtype)
    w = torch.randn(d, m, device=device, dtype=dtype)
    f = torch.randn(b, m, device=device, dtype=dtype)
    wd = torch.randn(m, d, device=device, dtype=dtype)

    def five():
        x @ w  # encoder forward [b, m]
        f @ wd  # decoder forward [b, d]
        x @ wd.T  # gradient into the latents through the decoder [b, m]
        f.T @ x  # decoder weight gradient [m, d]
        x.T @ f  # encoder weight gradient [d, m]

    return _time(five, device, repeats)


def step_seconds(arch, b, d, m, device, bf16, repeats):
    variant = "jumprelu" if arch == "jumprelu_qf" else arch
    sae = create_sae({"architecture": variant, "d_in": d, "d_sae": m, **ARCHS[arch]}, seed=0)
    sae = sae.to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    x = torch.randn(b, d, device=device)
    dead = torch.zeros(m, dtype=torch.bool, device=device)
    dead[: m // 10] = True  # exercise AuxK
    ctx = StepContext(1.0, dead)

    def one():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = sae.training_step(x, ctx)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        _remove_parallel_decoder_grad(sae.W_dec)
        opt.step()
        with torch.no_grad():
            sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True))
        sae.after_optimizer_step()

    return _time(one, device, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--d-in", type=int, default=384)
    p.add_argument("--widths", type=int, nargs="+", default=[3072, 12288])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--archs", nargs="+", default=list(ARCHS))
    args = p.parse_args()
    device = torch.device(args.device)
    b, d = args.batch, args.d_in
    print(f"device={device} threads={torch.get_num_threads()} batch={b} d_in={d}")
    print(f"{'d_sae':>6} {'precision':>9} {'arch':>12} {'acts/s':>12} {'frac of GEMM':>12}")
    for m in args.widths:
        for bf16 in (False, True):
            gemm = gemm_seconds(b, d, m, device, bf16, args.repeats)
            gemm_flops = 5 * 2 * b * d * m / gemm
            label = "bf16" if bf16 else "fp32"
            print(
                f"{m:>6} {label:>9} {'GEMM x5':>12} {b / gemm:>12.0f} {1.0:>12.2f}"
                f"   ({gemm_flops / 1e9:.0f} GFLOP/s)"
            )
            for arch in args.archs:
                s = step_seconds(arch, b, d, m, device, bf16, args.repeats)
                print(f"{m:>6} {label:>9} {arch:>12} {b / s:>12.0f} {gemm / s:>12.2f}")


if __name__ == "__main__":
    main()
