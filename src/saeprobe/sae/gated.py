"""Gated SAE (Rajamanoharan et al. 2024, "Improving dictionary learning with gated SAEs").

    pi_gate = W_gate^T (x - b_dec) + b_gate
    pi_mag  = (W_gate * exp(r_mag))^T (x - b_dec) + b_mag        (r_mag weight sharing)
    f       = H(pi_gate) * ReLU(pi_mag)
    L = ||x - x_hat(f)||^2 + lambda * sum_i ReLU(pi_gate)_i ||d_i||
        + ||x - x_hat_frozen(ReLU(pi_gate))||^2                  (decoder detached)

W_enc holds W_gate, matching the SAELens key layout (W_enc, b_gate, r_mag, b_mag).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from saeprobe.sae.auxk import AuxKSettings, add_auxk
from saeprobe.sae.base import SAE, StepContext, TrainOutput, reconstruction_error
from saeprobe.sae.config import SAEConfig
from saeprobe.sae.registry import register
from saeprobe.sae.sparse_ops import decode, fire_counts, positive_support
from saeprobe.sae.sparse_step import (
    DENSE_FRACTION,
    add_sparse_auxk,
    aux_candidates,
    pre_dense,
    sparse_encoder,
)


class GatedConfig(AuxKSettings, SAEConfig):
    architecture: Literal["gated"] = "gated"
    aux_coefficient: float = Field(0.0, ge=0, description="alpha on the AuxK dead-latent loss")
    l1_coefficient: float = Field(0.5, ge=0, description="lambda on the gate's L1 penalty")


@register
class GatedSAE(SAE):
    architecture = "gated"
    config_class = GatedConfig
    saelens_architecture = "gated"
    latent_dims = {"W_enc": 1, "W_dec": 0, "b_gate": 0, "r_mag": 0, "b_mag": 0}
    cfg: GatedConfig

    def create_extra_parameters(self) -> None:
        self.b_gate = nn.Parameter(torch.zeros(self.cfg.d_sae))
        self.r_mag = nn.Parameter(torch.zeros(self.cfg.d_sae))
        self.b_mag = nn.Parameter(torch.zeros(self.cfg.d_sae))

    def reset_extra_parameters(self) -> None:
        self.b_gate.zero_()
        self.r_mag.zero_()
        self.b_mag.zero_()

    def _pre_activations(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xc = self.encoder_input(x)
        pi_gate = xc @ self.W_enc + self.b_gate
        pi_mag = xc @ (self.W_enc * self.r_mag.exp()) + self.b_mag
        return pi_gate, pi_mag

    def encode(self, x: Tensor) -> Tensor:
        pi_gate, pi_mag = self._pre_activations(x)
        return (pi_gate > 0) * torch.relu(pi_mag)

    # Train with the sparse step once few gates are open (sparse_ops); False: always dense.
    sparse_training: bool = True

    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        if self.sparse_training and x.ndim == 2:
            out = self._sparse_training_step(x, ctx)
            if out is not None:
                return out
        return self.dense_training_step(x, ctx)

    def dense_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        pi_gate, pi_mag = self._pre_activations(x)
        active = pi_gate > 0
        f = active * torch.relu(pi_mag)
        x_hat = self.decode(f)
        mse, sq_error = reconstruction_error(x, x_hat)
        gate = torch.relu(pi_gate)
        l1 = (gate.float() * self.W_dec.norm(dim=1)).sum(-1).mean()
        x_via_gate = gate @ self.W_dec.detach() + self.b_dec.detach()
        aux, _ = reconstruction_error(x, x_via_gate)
        loss = mse + ctx.sparsity_scale * self.cfg.l1_coefficient * l1 + aux
        terms = {"mse": mse.detach(), "l1": l1.detach(), "aux": aux.detach()}
        # A closed gate gets no gradient; AuxK on the gate pre-activation can reopen it.
        loss = add_auxk(self, loss, terms, pi_gate, x - x_hat, ctx)
        return TrainOutput(loss=loss, fire_counts=(f > 0).sum(0), sq_error=sq_error, terms=terms)

    def _sparse_training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput | None:
        """The step on the open gates (pi_gate > 0), exact: f, the gate L1 and the gate
        reconstruction are all zero where the gate is closed, and H(pi_gate) passes nothing.
        pi_mag = (pi_gate - b_gate) exp(r_mag) + b_mag, so one matmul gives both."""
        pi = pre_dense(self, x, self.b_gate)
        support, values = positive_support(pi)
        if support.nnz > DENSE_FRACTION * x.shape[0] * self.cfg.d_sae:
            return None
        aux = aux_candidates(self, pi, ctx)
        pi_gate, aux_pre = sparse_encoder(self, x, support, values, aux, bias=self.b_gate)
        cols = support.cols
        pi_mag = (pi_gate - self.b_gate[cols]) * self.r_mag[cols].exp() + self.b_mag[cols]
        f = torch.relu(pi_mag)
        x_hat = decode(f, support, self.W_dec) + self.b_dec
        mse, sq_error = reconstruction_error(x, x_hat)
        gate = torch.relu(pi_gate)
        l1 = (gate * self.W_dec.norm(dim=1)[cols]).sum() / x.shape[0]
        x_via_gate = decode(gate, support, self.W_dec.detach()) + self.b_dec.detach()
        aux_loss, _ = reconstruction_error(x, x_via_gate)
        loss = mse + ctx.sparsity_scale * self.cfg.l1_coefficient * l1 + aux_loss
        terms = {"mse": mse.detach(), "l1": l1.detach(), "aux": aux_loss.detach()}
        loss = add_sparse_auxk(self, loss, terms, aux, aux_pre, x - x_hat)
        counts = fire_counts(cols, f.detach() > 0, self.cfg.d_sae)
        return TrainOutput(loss=loss, fire_counts=counts, sq_error=sq_error, terms=terms)

    def _scale_extra_latent_params(self, factor: Tensor) -> None:
        # The gate H(pi_gate) is scale invariant; scaling W_gate scales W_mag along with it.
        self.b_gate.mul_(factor)
        self.b_mag.mul_(factor)
