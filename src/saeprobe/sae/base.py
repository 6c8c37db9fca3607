"""The SAE interface every architecture implements.

    f(x) = sigma(W_enc^T (x - b_dec) + b_enc)      x_hat(f) = W_dec^T f + b_dec

Shapes follow SAELens: W_enc [d_in, d_sae], W_dec [d_sae, d_in]. An architecture is one small module
that subclasses `SAE`, declares its config class, and implements `encode` and `training_step`.
`training_step` returns the loss and per-latent fire counts, never the dense latent matrix, so an
architecture can substitute a fused or sparse implementation without the trainer noticing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from saeprobe.errors import DataError
from saeprobe.sae.config import SAEConfig


@dataclass
class StepContext:
    """What the trainer tells an architecture about the current step."""

    sparsity_scale: float = 1.0  # warm-up multiplier applied to the sparsity coefficient
    dead_mask: Tensor | None = None  # bool [d_sae]: latents that have not fired for a long time


@dataclass
class TrainOutput:
    loss: Tensor  # scalar to back-propagate
    fire_counts: Tensor  # [d_sae] number of batch rows on which each latent was active
    sq_error: Tensor  # summed squared reconstruction error over the batch (detached)
    terms: dict[str, Tensor] = field(default_factory=dict)  # detached scalars for logging


def reconstruction_error(x: Tensor, x_hat: Tensor) -> tuple[Tensor, Tensor]:
    """Mean over rows of ||x - x_hat||^2 (the training loss) and its detached sum."""
    per_row = (x - x_hat.to(x.dtype)).pow(2).sum(-1)
    return per_row.mean(), per_row.sum().detach()


class SAE(nn.Module, ABC):
    architecture: ClassVar[str]
    config_class: ClassVar[type[SAEConfig]]
    # The name SAELens uses in cfg.json for this architecture.
    saelens_architecture: ClassVar[str]
    # Parameters/buffers indexed by latent, mapped to the axis that indexes latents. Used to
    # re-initialise a subset of latents and to rescale latents.
    latent_dims: ClassVar[dict[str, int]] = {"W_enc": 1, "W_dec": 0}

    def __init__(self, cfg: SAEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        self.W_enc = nn.Parameter(torch.empty(cfg.d_in, cfg.d_sae))
        self.W_dec = nn.Parameter(torch.empty(cfg.d_sae, cfg.d_in))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))
        self.create_extra_parameters()
        self.reset_parameters(generator)

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    # ----- initialisation -------------------------------------------------------------------
    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Unit-norm random decoder rows; encoder is the scaled decoder transpose; zero biases."""
        w = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=generator)
        w /= w.norm(dim=1, keepdim=True)
        self.W_dec.copy_(w)
        self.W_enc.copy_(w.T * self.cfg.encoder_init_scale)
        self.b_dec.zero_()
        self.reset_extra_parameters()

    def create_extra_parameters(self) -> None:
        """Register architecture-specific parameters and buffers (biases, thresholds)."""

    def reset_extra_parameters(self) -> None:
        """Fill architecture-specific parameters in place with their initial values."""

    @torch.no_grad()
    def init_from_data(self, x: Tensor) -> None:
        """Data-dependent initialisation from a sample of (normalised) inputs: b_dec = mean."""
        self.b_dec.copy_(x.float().mean(0))

    # ----- inference ------------------------------------------------------------------------
    def check_input(self, x: Tensor) -> None:
        if x.ndim < 1 or x.shape[-1] != self.cfg.d_in:
            raise DataError(
                f"activations have width {tuple(x.shape)[-1:] or '()'} but the SAE expects d_in="
                f"{self.cfg.d_in}; use an SAE trained on this model/layer or matching activations"
            )

    def encoder_input(self, x: Tensor) -> Tensor:
        return x - self.b_dec if self.cfg.apply_b_dec_to_input else x

    @abstractmethod
    def encode(self, x: Tensor) -> Tensor:
        """Latent activations [..., d_sae] for inputs [..., d_in]."""

    def decode(self, f: Tensor) -> Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    # ----- training -------------------------------------------------------------------------
    @abstractmethod
    def training_step(self, x: Tensor, ctx: StepContext) -> TrainOutput:
        """Loss (reconstruction + sparsity + auxiliary terms) for one batch of normalised inputs."""

    def optimizer_groups(self) -> list[dict]:
        """Parameter groups for the optimiser; `lr_scale` multiplies the scheduled lr."""
        return [{"params": list(self.parameters()), "lr_scale": 1.0}]

    def after_optimizer_step(self) -> None:
        """Re-impose constraints that the optimiser may break (e.g. positive thresholds)."""

    # ----- weight surgery -------------------------------------------------------------------
    @torch.no_grad()
    def scale_latents(self, factor: Tensor) -> None:
        """Multiply every latent's activation by `factor` [d_sae] (> 0) without changing x_hat
        for the architectures whose activation commutes with positive scaling."""
        self.W_enc.mul_(factor)
        self.W_dec.div_(factor[:, None])
        self._scale_extra_latent_params(factor)

    def _scale_extra_latent_params(self, factor: Tensor) -> None:
        """Rescale architecture-specific per-latent parameters; see `scale_latents`."""

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Give every decoder row unit norm, moving the norm into the encoder side."""
        norms = self.W_dec.norm(dim=1).clamp_min(1e-12)
        self.scale_latents(norms)

    @torch.no_grad()
    def fold_input_scale(self, scale: float) -> None:
        """Turn an SAE trained on x/scale into one that reads and writes raw x.

        Latent activations are unchanged, so thresholds and gates need no change.
        """
        self.W_enc.div_(scale)
        self.W_dec.mul_(scale)
        self.b_dec.mul_(scale)

    @torch.no_grad()
    def reinitialize_latents(self, idx: Tensor, generator: torch.Generator | None = None) -> None:
        """Re-initialise the latents in `idx` as a fresh SAE of the same config would be."""
        fresh = type(self)(self.cfg, generator=generator).to(self.W_dec.device)
        fresh.b_dec.copy_(self.b_dec)
        own = dict(self.named_parameters()) | dict(self.named_buffers())
        new = dict(fresh.named_parameters()) | dict(fresh.named_buffers())
        for name, dim in self.latent_dims.items():
            own[name].index_copy_(dim, idx.to(own[name].device), new[name].index_select(dim, idx))

    def export_for_inference(self) -> SAE:
        """The SAE to save. BatchTopK returns an equivalent JumpReLU; others return themselves."""
        return self


class LinearEncoderSAE(SAE):
    """An SAE whose pre-activation is z = W_enc^T (x - b_dec) + b_enc (all but Gated)."""

    latent_dims: ClassVar[dict[str, int]] = {"W_enc": 1, "W_dec": 0, "b_enc": 0}

    def create_extra_parameters(self) -> None:
        self.b_enc = nn.Parameter(torch.zeros(self.cfg.d_sae))

    def reset_extra_parameters(self) -> None:
        self.b_enc.zero_()

    def pre_activation(self, x: Tensor) -> Tensor:
        return self.encoder_input(x) @ self.W_enc + self.b_enc

    def _scale_extra_latent_params(self, factor: Tensor) -> None:
        self.b_enc.mul_(factor)
