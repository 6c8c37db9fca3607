"""Training many per-token probes at once: AdamW on minibatches of prompts, in torch, on CPU.

`fit_models` trains M independent models that share one aggregation head and one pass over
the data: the CV folds x weight decays of a model search, or the seeds of a refit. Model m has
its own weights W_m [d, P] and bias b_m, its own standardisation statistics (those of the rows
it trains on), its own weight decay and its own initialisation seed, and trains only on the
prompts `train_mask[m]` selects (its loss is the mean over those prompts of a minibatch).
Stacking the models as columns of one matrix turns M small matrix products into one, which is
what makes grouped CV affordable on 2 cores. Adam is element-wise and the losses add, so the
models do not interact: model m follows the same trajectory whatever else is trained with it.

Standardisation is folded into the weights, (y - mu) / sigma @ w = y @ (w / sigma) - mu . (w /
sigma), so the raw token matrix is read once per step for every model. Weight decay is AdamW's
decoupled decay, w <- w (1 - lr wd) before each Adam step, on the weights in standardised
units (not the biases).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from saeprobe.probes.metrics import auroc
from saeprobe.probes.per_token.heads import Head
from saeprobe.probes.per_token.tokens import TokenBatch, TokenFeatures, batch_rows

__all__ = ["FittedModels", "fit_models", "score_models", "token_statistics"]

Tensor = torch.Tensor

# Prompts per no-grad scoring block (length-sorted, so padding stays small).
_SCORE_BLOCK = 256


def token_statistics(tokens: TokenFeatures, prompt_sets: np.ndarray) -> tuple[Tensor, Tensor]:
    """Per set of prompts (bool [S, n]), the mean and std of their token rows: [S, d] each.

    Constant columns get std 1, so they stay constant (zero) after scaling.
    """
    values = tokens.values
    sums = np.add.reduceat(values, tokens.offsets[:-1], axis=0, dtype=np.float64)
    squares = np.zeros_like(sums)
    for start in range(0, tokens.n_prompts, 512):  # blocks bound the float64 temporaries
        stop = min(start + 512, tokens.n_prompts)
        lo, hi = tokens.offsets[start], tokens.offsets[stop]
        block = values[lo:hi].astype(np.float64)
        squares[start:stop] = np.add.reduceat(block**2, tokens.offsets[start:stop] - lo, axis=0)
    counts = tokens.lengths.astype(np.float64)
    weights = prompt_sets.astype(np.float64)
    n = weights @ counts
    mean = (weights @ sums) / n[:, None]
    var = np.maximum((weights @ squares) / n[:, None] - mean**2, 0.0)
    std = np.sqrt(var)
    std[std < 1e-6 * np.maximum(1.0, np.abs(mean))] = 1.0
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


@dataclass
class FittedModels:
    """M models: weights [d, M * P] (standardised units), biases [M], their statistics."""

    head: Head
    weight: Tensor
    bias: Tensor
    mean: Tensor  # [M, d]
    std: Tensor  # [M, d]
    epochs_run: int = 0
    # Per epoch (rows) and model (columns), when held-out prompts were given.
    held_out_loss: np.ndarray | None = None
    held_out_auroc: np.ndarray | None = None
    notes: dict = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return int(self.bias.numel())

    def effective(self) -> tuple[Tensor, Tensor]:
        """(W_eff [d, C], shift [C]) with the standardisation folded in."""
        p = self.head.n_projections
        std = self.std.repeat_interleave(p, dim=0)  # [C, d]
        mean = self.mean.repeat_interleave(p, dim=0)
        w_eff = self.weight / std.T
        return w_eff, -(mean * w_eff.T).sum(dim=1)


def _gather(values: np.ndarray, rows: Tensor) -> Tensor:
    if values.dtype == np.float32:
        return torch.from_numpy(values)[rows]
    return torch.from_numpy(values[rows.numpy()].astype(np.float32))


def _forward(
    head: Head,
    w_eff: Tensor,
    shift: Tensor,
    bias: Tensor,
    values: np.ndarray,
    batch: TokenBatch,
) -> Tensor:
    """Scores [b, M] of one batch of prompts."""
    b, width = batch.shape
    logits = _gather(values, batch.rows) @ w_eff + shift  # [tokens, C]
    padded = logits.new_zeros(b * width, logits.shape[1]).index_copy(0, batch.slot, logits)
    x = padded.view(b, width, bias.numel(), head.n_projections)
    return head(x, batch.mask, batch.lengths) + bias


def score_models(models: FittedModels, tokens: TokenFeatures) -> np.ndarray:
    """Scores [n_prompts, M] of every model on `tokens` (any split), in float64."""
    out = np.empty((tokens.n_prompts, models.n_models))
    order = np.argsort(tokens.lengths, kind="stable")
    with torch.no_grad():
        w_eff, shift = models.effective()
        for start in range(0, order.size, _SCORE_BLOCK):
            prompts = order[start : start + _SCORE_BLOCK]
            batch = batch_rows(tokens, prompts)
            scores = _forward(models.head, w_eff, shift, models.bias, tokens.values, batch)
            out[prompts] = scores.double().numpy()
    return out


def fit_models(
    tokens: TokenFeatures,
    y: np.ndarray,
    head: Head,
    *,
    train_mask: np.ndarray,
    mean: Tensor,
    std: Tensor,
    weight_decay: np.ndarray,
    init_seeds: list[int],
    epochs: int,
    lr: float,
    batch_size: int,
    order_seed: int,
    held_out_mask: np.ndarray | None = None,
    candidate: np.ndarray | None = None,
    patience: int | None = None,
) -> FittedModels:
    """Train M = len(init_seeds) models for up to `epochs` passes over the prompts.

    train_mask / held_out_mask: bool [M, n]; mean / std: [M, d] per-model statistics;
    weight_decay [M]. With `held_out_mask`, each model's held-out log-loss and AUROC are
    recorded after every epoch; with `candidate` [M] (models sharing a candidate are averaged,
    e.g. the folds of one weight decay) and `patience`, training stops once the best candidate
    mean log-loss has not improved for `patience` epochs.
    """
    n_models = len(init_seeds)
    d = tokens.width
    p = head.n_projections
    weight = torch.empty(d, n_models * p)
    for m, seed in enumerate(init_seeds):
        g = torch.Generator().manual_seed(int(seed))
        weight[:, m * p : (m + 1) * p] = torch.randn(d, p, generator=g) / np.sqrt(d)
    weight.requires_grad_(True)
    bias = torch.zeros(n_models, requires_grad=True)
    models = FittedModels(head, weight, bias, mean, std)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    decay = 1.0 - lr * torch.as_tensor(weight_decay, dtype=torch.float32).repeat_interleave(p)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    use = torch.as_tensor(train_mask.T, dtype=torch.float32)  # [n, M]
    rng = np.random.default_rng(order_seed)
    losses, aurocs = [], []
    best, since_best = np.inf, 0
    for _ in range(epochs):
        order = rng.permutation(tokens.n_prompts)
        for prompts in np.array_split(order, _n_batches(tokens, batch_size)):
            batch = batch_rows(tokens, prompts)
            w_eff, shift = models.effective()
            scores = _forward(head, w_eff, shift, bias, tokens.values, batch)
            target = labels[prompts][:, None].expand_as(scores)
            weights = use[prompts]
            loss_each = F.binary_cross_entropy_with_logits(scores, target, reduction="none")
            loss = ((loss_each * weights).sum(0) / weights.sum(0).clamp(min=1.0)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                weight.mul_(decay)
            optimizer.step()
        models.epochs_run += 1
        if held_out_mask is None:
            continue
        epoch_loss, epoch_auroc = _held_out(models, tokens, y, held_out_mask)
        losses.append(epoch_loss)
        aurocs.append(epoch_auroc)
        if candidate is not None and patience is not None:
            current = min(epoch_loss[candidate == c].mean() for c in np.unique(candidate))
            if current < best - 1e-6:
                best, since_best = current, 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
    if held_out_mask is not None:
        models.held_out_loss = np.asarray(losses)
        models.held_out_auroc = np.asarray(aurocs)
    models.weight = weight.detach()
    models.bias = bias.detach()
    return models


def _n_batches(tokens: TokenFeatures, batch_size: int) -> int:
    return max(1, -(-tokens.n_prompts // batch_size))


def _held_out(
    models: FittedModels, tokens: TokenFeatures, y: np.ndarray, held_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    scores = score_models(models, tokens)
    y = np.asarray(y).astype(int)
    loss = np.full(models.n_models, np.nan)
    auc = np.full(models.n_models, np.nan)
    for m in range(models.n_models):
        rows = held_out[m]
        if not rows.any():
            continue
        z = scores[rows, m]
        loss[m] = float(np.mean(np.logaddexp(0.0, np.where(y[rows] == 1, -z, z))))
        if 0 < y[rows].sum() < rows.sum():
            auc[m] = auroc(y[rows], z, split="cv fold")
    return loss, auc
