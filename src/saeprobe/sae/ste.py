"""Straight-through estimators for JumpReLU (Rajamanoharan et al. 2024, eqs. 11-12).

The rectangle kernel K(u) = 1[|u| < 1/2] with bandwidth eps gives the threshold a pseudo-gradient
from the batch rows whose pre-activation lies within eps/2 of it. The step function passes *no*
gradient to the pre-activations: the sparsity term trains the thresholds only (GDM form).
All arithmetic is done in float32 so bf16 pre-activations cannot freeze the thresholds.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _rectangle(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


def _sum_to_threshold(g: Tensor) -> Tensor:
    return g.reshape(-1, g.shape[-1]).sum(0)


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        pre32 = pre.float()
        ctx.save_for_backward(pre32, threshold)
        ctx.bandwidth = bandwidth
        ctx.pre_dtype = pre.dtype
        return (pre32 * (pre32 > threshold)).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        g = grad.float()
        grad_pre = (g * (pre > threshold)).to(ctx.pre_dtype)
        grad_thr = _sum_to_threshold(-(threshold / eps) * _rectangle((pre - threshold) / eps) * g)
        return grad_pre, grad_thr, None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        pre32 = pre.float()
        ctx.save_for_backward(pre32, threshold)
        ctx.bandwidth = bandwidth
        return (pre32 > threshold).float()

    @staticmethod
    def backward(ctx, grad: Tensor):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_thr = _sum_to_threshold(-(1.0 / eps) * _rectangle((pre - threshold) / eps) * grad)
        return None, grad_thr, None


def jumprelu(pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    """z * H(z - theta), with the STE pseudo-gradient to theta."""
    return _JumpReLU.apply(pre, threshold, bandwidth)


def step(pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    """H(z - theta) as float32, with gradient to theta only."""
    return _Step.apply(pre, threshold, bandwidth)
