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

Minibatches: the prompts are put in a fixed order once (`order_seed`) and cut into contiguous
batches; each epoch visits the batches in a new random order. Batches are then views of one
token matrix, never gathered copies. The order is random within quarters of the prompt-length
distribution (`_LENGTH_BUCKETS`): a batch is padded to its longest prompt for the heads, and
random batches of prompts from 4 to 431 tokens were mostly padding; within a quarter, labels and
transformations still mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from saeprobe.probes.metrics import auroc
from saeprobe.probes.per_token.heads import Head
from saeprobe.probes.per_token.tokens import TokenBatch, TokenFeatures, batch_rows

__all__ = ["FittedModels", "fit_models", "score_models", "token_statistics"]

Tensor = torch.Tensor

# Prompts per no-grad scoring block.
_SCORE_BLOCK = 256
_LENGTH_BUCKETS = 4


def _training_order(lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Prompt order: length quarters, shortest first, each in random order."""
    by_length = np.argsort(lengths, kind="stable")
    buckets = np.array_split(by_length, min(_LENGTH_BUCKETS, lengths.size))
    return np.concatenate([rng.permutation(b) for b in buckets])


def token_statistics(tokens: TokenFeatures, prompt_sets: np.ndarray) -> tuple[Tensor, Tensor]:
    """Per set of prompts (bool [S, n]), the mean and std of their token rows: [S, d] each.

    Per-prompt sums are taken in float32 (at most a few hundred rows each), then combined in
    float64. Constant columns get std 1, so they stay constant (zero) after scaling.
    """
    starts = tokens.offsets[:-1]
    values = tokens.values.astype(np.float32, copy=False)
    sums = np.add.reduceat(values, starts, axis=0).astype(np.float64)
    squares = np.empty_like(sums)
    for start in range(0, tokens.n_prompts, 512):  # blocks bound the squared temporaries
        stop = min(start + 512, tokens.n_prompts)
        lo, hi = tokens.offsets[start], tokens.offsets[stop]
        block = values[lo:hi]
        squares[start:stop] = np.add.reduceat(block * block, starts[start:stop] - lo, axis=0)
    weights = prompt_sets.astype(np.float64)
    n = weights @ tokens.lengths.astype(np.float64)
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
    # Per problem (see `fit_models`), the epochs its early stopping looked at.
    stopped_at: dict[int, int] | None = None
    input_mask: Tensor | None = None  # [d, C] float, 1 where a model reads an input column

    @property
    def n_models(self) -> int:
        return int(self.bias.numel())

    def effective(self) -> tuple[Tensor, Tensor]:
        """(W_eff [d, C], shift [C]) with the standardisation folded in."""
        p = self.head.n_projections
        std = self.std.repeat_interleave(p, dim=0)  # [C, d]
        mean = self.mean.repeat_interleave(p, dim=0)
        weight = self.weight if self.input_mask is None else self.weight * self.input_mask
        w_eff = weight / std.T
        return w_eff, -(mean * w_eff.T).sum(dim=1)

    def select(self, models: np.ndarray, inputs: np.ndarray) -> FittedModels:
        """These models, restricted to these input columns (those they read)."""
        p = self.head.n_projections
        cols = (np.asarray(models)[:, None] * p + np.arange(p)[None, :]).ravel()
        rows = torch.as_tensor(np.asarray(inputs))
        return FittedModels(
            self.head,
            self.weight[rows][:, cols].clone(),
            self.bias[torch.as_tensor(models)].clone(),
            self.mean[torch.as_tensor(models)][:, rows].clone(),
            self.std[torch.as_tensor(models)][:, rows].clone(),
            epochs_run=self.epochs_run,
        )


def _block(values: np.ndarray, rows: slice) -> Tensor:
    """Token rows as float32 (a view when they already are)."""
    return torch.from_numpy(np.asarray(values[rows], dtype=np.float32))


def _forward(
    head: Head, w_eff: Tensor, shift: Tensor, bias: Tensor, x: Tensor, batch: TokenBatch
) -> Tensor:
    """Scores [b, M] of one batch of prompts whose token rows are `x`."""
    b, width = batch.shape
    logits = x @ w_eff + shift  # [tokens, C]
    padded = logits.new_zeros(b * width, logits.shape[1]).index_copy(0, batch.slot, logits)
    view = padded.view(b, width, bias.numel(), head.n_projections)
    return head(view, batch.mask, batch.lengths) + bias


def _batches(tokens: TokenFeatures, size: int) -> list[tuple[slice, TokenBatch]]:
    """(prompt range, layout) of contiguous batches of about `size` prompts."""
    bounds = np.linspace(0, tokens.n_prompts, max(1, -(-tokens.n_prompts // size)) + 1)
    bounds = np.unique(bounds.round().astype(int))
    return [
        (slice(int(a), int(b)), batch_rows(tokens, int(a), int(b)))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def score_models(models: FittedModels, tokens: TokenFeatures) -> np.ndarray:
    """Scores [n_prompts, M] of every model on `tokens` (any split), in float64."""
    with torch.no_grad():
        w_eff, shift = models.effective()
        return _score(models, w_eff, shift, tokens, _batches(tokens, _SCORE_BLOCK))


def _score(models, w_eff, shift, tokens, batches) -> np.ndarray:
    out = []
    for _, batch in batches:
        x = _block(tokens.values, batch.rows)
        out.append(_forward(models.head, w_eff, shift, models.bias, x, batch).double().numpy())
    return np.concatenate(out)


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
    problem: np.ndarray | None = None,
    patience: int | None = None,
    input_mask: np.ndarray | None = None,
    snapshot_epochs: np.ndarray | None = None,
) -> FittedModels:
    """Train M = len(init_seeds) models for up to `epochs` passes over the prompts.

    train_mask / held_out_mask: bool [M, n]; mean / std: [M, d] per-model statistics;
    weight_decay [M]; input_mask: bool [M, d], the input columns each model reads (several
    probes on different features, e.g. 8 SAEs' latents side by side, train in one pass).

    With `held_out_mask`, each model's held-out log-loss and AUROC are recorded after every
    epoch. Early stopping (`candidate` [M], `problem` [M], `patience`): the models of one
    candidate (the folds of one weight decay) are averaged; each problem (one probe's search:
    its candidates) stops once its best candidate has not improved for `patience` epochs,
    recorded in `stopped_at`; training ends when every problem has stopped.
    `snapshot_epochs` [M]: keep each model as it was after that many epochs (the refit of
    several problems whose CV chose different epoch counts).
    """
    rng = np.random.default_rng(order_seed)
    order = _training_order(tokens.lengths, rng)
    # The prompts in a fixed random order, as one contiguous matrix (one copy, float32).
    shuffled = tokens.subset(order)
    shuffled = TokenFeatures(shuffled.values.astype(np.float32, copy=False), shuffled.offsets)
    y_order = np.asarray(y)[order]
    batches = _batches(shuffled, batch_size)
    n_models = len(init_seeds)
    d, p = tokens.width, head.n_projections
    reads = np.ones((n_models, d), dtype=bool) if input_mask is None else input_mask
    weight = torch.zeros(d, n_models * p)
    for m, seed in enumerate(init_seeds):
        # The draw depends on the model's own input width only, as if it trained alone.
        g = torch.Generator().manual_seed(int(seed))
        rows = torch.as_tensor(np.flatnonzero(reads[m]))
        width = int(rows.numel())
        weight[rows, m * p : (m + 1) * p] = torch.randn(width, p, generator=g) / np.sqrt(width)
    weight.requires_grad_(True)
    bias = torch.zeros(n_models, requires_grad=True)
    models = FittedModels(head, weight, bias, mean, std)
    if input_mask is not None:
        models.input_mask = torch.as_tensor(np.repeat(input_mask, p, axis=0).T, dtype=torch.float32)
    snapshot = None
    if snapshot_epochs is not None:
        snapshot = (weight.detach().clone(), bias.detach().clone())
        snapshot_cols = np.repeat(np.asarray(snapshot_epochs), p)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    decay = 1.0 - lr * torch.as_tensor(weight_decay, dtype=torch.float32).repeat_interleave(p)
    labels = torch.as_tensor(y_order, dtype=torch.float32)
    use = torch.as_tensor(train_mask[:, order].T, dtype=torch.float32)  # [n, M]
    held_out = None if held_out_mask is None else held_out_mask[:, order]
    losses, aurocs = [], []
    problem = np.zeros(n_models, dtype=int) if problem is None else np.asarray(problem)
    best = {int(q): np.inf for q in np.unique(problem)}
    since_best = dict.fromkeys(best, 0)
    stopped: dict[int, int] = {}
    for _ in range(epochs):
        for i in rng.permutation(len(batches)):
            prompts, batch = batches[i]
            w_eff, shift = models.effective()
            x = _block(shuffled.values, batch.rows)
            scores = _forward(head, w_eff, shift, bias, x, batch)
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
        if snapshot is not None:
            with torch.no_grad():
                cols = torch.as_tensor(snapshot_cols == models.epochs_run)
                snapshot[0][:, cols] = weight[:, cols]
                rows = torch.as_tensor(np.asarray(snapshot_epochs) == models.epochs_run)
                snapshot[1][rows] = bias[rows]
            if models.epochs_run >= int(np.max(snapshot_epochs)):
                break
        if held_out is None:
            continue
        with torch.no_grad():
            w_eff, shift = models.effective()
            scores = _score(models, w_eff, shift, shuffled, batches)
        epoch_loss, epoch_auroc = _held_out(scores, y_order, held_out)
        losses.append(epoch_loss)
        aurocs.append(epoch_auroc)
        if candidate is not None and patience is not None:
            for q in best:
                if q in stopped:
                    continue
                mine = problem == q
                current = min(
                    epoch_loss[mine & (candidate == c)].mean() for c in np.unique(candidate[mine])
                )
                if current < best[q] - 1e-6:
                    best[q], since_best[q] = current, 0
                else:
                    since_best[q] += 1
                    if since_best[q] >= patience:
                        stopped[q] = models.epochs_run
            if len(stopped) == len(best):
                break
    if held_out is not None:
        models.held_out_loss = np.asarray(losses)
        models.held_out_auroc = np.asarray(aurocs)
        models.stopped_at = {q: stopped.get(q, models.epochs_run) for q in best}
    if snapshot is not None:
        models.weight, models.bias = snapshot
    else:
        models.weight, models.bias = weight.detach(), bias.detach()
    models.input_mask = None if input_mask is None else models.input_mask
    return models


def _held_out(
    scores: np.ndarray, y: np.ndarray, held_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int)
    n_models = held_out.shape[0]
    loss = np.full(n_models, np.nan)
    auc = np.full(n_models, np.nan)
    for m in range(n_models):
        rows = held_out[m]
        if not rows.any():
            continue
        z = scores[rows, m]
        loss[m] = float(np.mean(np.logaddexp(0.0, np.where(y[rows] == 1, -z, z))))
        if 0 < y[rows].sum() < rows.sum():
            auc[m] = auroc(y[rows], z, split="cv fold")
    return loss, auc
