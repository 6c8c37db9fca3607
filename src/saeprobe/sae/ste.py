"""Straight-through estimators for JumpReLU (Rajamanoharan et al. 2024, eqs. 11-12).

With the rectangle kernel K(u) = 1[|u| < 1/2] and bandwidth eps:

    f = z * H(z - theta)    df/dz = H(z - theta)    df/dtheta := -(theta/eps) K((z - theta)/eps)
    h = H(z - theta)        dh/dz = 0               dh/dtheta := -(1/eps)     K((z - theta)/eps)

The step h passes no gradient to the pre-activations, so the sparsity term trains the thresholds
only (GDM form). `jumprelu_and_step` computes both in one pass, sharing the kernel window.
All arithmetic is float32 so bf16 pre-activations cannot round threshold updates away.
"""

from __future__ import annotations

import torch
from torch import Tensor


class _JumpReLUAndStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float):
        pre32 = pre.float()
        active = pre32 > threshold
        ctx.save_for_backward(pre32, threshold)
        ctx.bandwidth = bandwidth
        ctx.pre_dtype = pre.dtype
        return (pre32 * active).to(pre.dtype), active.float()

    @staticmethod
    def backward(ctx, grad_f: Tensor | None, grad_h: Tensor | None):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        u = (pre - threshold) / eps
        window = ((u > -0.5) & (u < 0.5)).float()
        grad_pre = None
        # d theta collects -(theta/eps) K g_f from f and -(1/eps) K g_h from h.
        theta_coef = torch.zeros_like(pre)
        if grad_f is not None:
            g = grad_f.float()
            grad_pre = (g * (pre > threshold)).to(ctx.pre_dtype)
            theta_coef = theta_coef + g * threshold
        if grad_h is not None:
            theta_coef = theta_coef + grad_h
        grad_thr = -(window * theta_coef).sum_to_size(threshold.shape) / eps
        return grad_pre, grad_thr, None


def jumprelu_and_step(pre: Tensor, threshold: Tensor, bandwidth: float) -> tuple[Tensor, Tensor]:
    """(z * H(z - theta), H(z - theta) as float32), with the pseudo-gradients above."""
    return _JumpReLUAndStep.apply(pre, threshold, bandwidth)


def jumprelu(pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    return jumprelu_and_step(pre, threshold, bandwidth)[0]


def step(pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    return jumprelu_and_step(pre, threshold, bandwidth)[1]
