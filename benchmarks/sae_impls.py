"""One full training step of saeprobe's SAEs and of the peers' (SAELens, sparsify), driven the way
each library's own trainer drives it. Used by train_throughput.py.

Each implementation gets the same batch, d_in, d_sae, k and Adam (lr, betas, eps); everything
else is the library's own default, read from its installed source:

    saeprobe   Trainer._train_step: architecture step (sparse for TopK/BatchTopK/JumpReLU),
               backward, parallel-gradient removal, clip_grad_norm_(0.01), Adam, decoder
               renormalisation, constraints, dead-latent bookkeeping. AuxK (1/32) on the dead
               latents.
    sae_lens   TrainingSAE.training_forward_pass, the trainer's firing bookkeeping, backward,
               clip_grad_norm_(1.0), Adam. Its TopK AuxK on the dead latents.
    sparsify   set_decoder_norm_to_unit_norm, SparseCoder.forward (fused top-k encoder with the
               index_add backward, embedding-bag decoder; no Triton on CPU), FVU + 1/32 AuxK,
               remove_gradient_parallel_to_decoder_directions, Adam.

bf16 means torch.autocast("cpu", bfloat16) around the forward, fp32 master weights, for all.
"""

from __future__ import annotations

import importlib.util
import math

import torch
from torch import Tensor

ADAM = {"betas": (0.9, 0.999), "eps": 1e-8}
OUR_ARCHS = {
    "relu": ("relu", {}),
    "gated": ("gated", {}),
    "jumprelu": ("jumprelu", {}),
    "jumprelu_qf": (
        "jumprelu",
        {"sparsity_penalty": "quadratic-frequency", "frequency_scale": 0.1},
    ),
    "topk": ("topk", {"k": None}),
    "batchtopk": ("batchtopk", {"k": None}),
}
# saeprobe arch -> the SAELens training class that matches it (QF has no SAELens counterpart:
# it is compared against SAELens' JumpReLU L0).
SAELENS_ARCHS = {
    "relu": "Standard",
    "gated": "Gated",
    "jumprelu": "JumpReLU",
    "jumprelu_qf": "JumpReLU",
    "topk": "TopK",
    "batchtopk": "BatchTopK",
}
SPARSIFY_ARCHS = {"topk"}


def available(impl: str) -> bool:
    module = {"saeprobe": "saeprobe", "sae_lens": "sae_lens", "sparsify": "sparsify"}[impl]
    return importlib.util.find_spec(module) is not None


def supports(impl: str, arch: str) -> bool:
    if impl in ("saeprobe", "saeprobe_dense"):
        return arch in OUR_ARCHS
    if impl == "sae_lens":
        return arch in SAELENS_ARCHS
    return arch in SPARSIFY_ARCHS


def _autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def _spread_encoder(W_enc: Tensor, z: Tensor, bandwidth: float) -> Tensor:
    """Scale W_enc in place so the pre-activations spread over 5 STE bandwidths (std), as in a
    trained SAE, where few pre-activations sit inside the kernel window; returns the new z."""
    factor = 5 * bandwidth / float(z.float().std())
    W_enc.mul_(factor)
    return z * factor


def _firing_thresholds(z: Tensor, mean_l0: float) -> Tensor:
    """Per-latent thresholds at which every latent fires on a fraction mean_l0 / d_sae of the
    rows of z [rows, d_sae]: a JumpReLU in a trained state (L0 about mean_l0), not at init."""
    rows = z.shape[0]
    above = max(1, round(rows * mean_l0 / z.shape[1]))
    return z.float().kthvalue(rows - above, dim=0).values.clamp_min(1e-4)


class Impl:
    impl: str
    arch: str

    def step(self, x: Tensor, dead: Tensor | None) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(x_hat, L0 per row) in the implementation's own input units."""
        raise NotImplementedError

    def set_trained_sparsity(self, x: Tensor, mean_l0: float) -> None:
        """Put the SAE where L0 is about mean_l0, as after training (TopK: nothing to do): JumpReLU
        thresholds, ReLU and Gated (gate) biases. Dense implementations run at the same speed in
        any state; sparse ones depend on it."""


class Saeprobe(Impl):
    impl = "saeprobe"

    def __init__(
        self, arch, d, m, k, lr, bf16, first, settings: dict | None = None, train=None
    ):  # settings: SAE config fields over OUR_ARCHS's; train: TrainConfig fields
        from saeprobe.train import RunSpec, TensorSource, TrainConfig, Trainer

        self.arch = arch
        variant, kw = OUR_ARCHS[arch]
        kw = {key: (k if v is None else v) for key, v in kw.items()} | (settings or {})
        spec = RunSpec(name=arch, sae={"architecture": variant, "d_in": d, "d_sae": m, **kw})
        cfg = TrainConfig(
            steps=10**9,
            lr=lr,
            adam_betas=ADAM["betas"],
            adam_eps=ADAM["eps"],
            lr_warmup_steps=0,
            lr_decay_steps=0,
            sparsity_warmup_steps=0,
            device="cpu",
            autocast_bf16=bf16,
            progress=False,
            seed=torch.initial_seed(),  # saeprobe seeds its own init: follow build()'s seed
            **(train or {}),
        )
        self.trainer = Trainer(cfg, [spec])
        source = TensorSource(first, first.shape[0])
        self.run = self.trainer._build_run(0, spec, 1.0, torch.device("cpu"), source, None)
        self.sae = self.run.sae
        self.dead_after = cfg.dead_after_tokens
        self.i = 0

    def step(self, x: Tensor, dead: Tensor | None) -> None:
        if dead is not None:  # pin the dead set, so every repeat does the same AuxK work
            self.run.tracker.rows_since_fired.copy_(dead.long() * self.dead_after)
        total_var = (x - x.mean(0)).pow(2).sum()
        self.trainer._train_step(self.run, x, self.i, total_var)
        self.i += 1

    @torch.no_grad()
    def reconstruct(self, x):
        if self.sae.architecture == "batchtopk":  # the batch rule, as SAELens' training SAE
            f = self.sae._select(torch.relu(self.sae.pre_activation(x)))
        else:
            f = self.sae.encode(x)
        return self.sae.decode(f), (f > 0).sum(-1).float()

    @torch.no_grad()
    def set_trained_sparsity(self, x, mean_l0):
        if self.sae.architecture in ("relu", "gated"):  # lower the biases: L0 about mean_l0
            bias = self.sae.b_enc if self.sae.architecture == "relu" else self.sae.b_gate
            bias.zero_()
            z = self.sae.encoder_input(x) @ self.sae.W_enc
            bias.copy_(-_firing_thresholds(z, mean_l0))
        if self.sae.architecture == "jumprelu":
            b = self.sae.b_enc.clone()
            self.sae.b_enc.zero_()
            z = _spread_encoder(self.sae.W_enc, self.sae.pre_activation(x), self.sae.cfg.bandwidth)
            self.sae.b_enc.copy_(b)
            self.sae.threshold.copy_(_firing_thresholds(z + b, mean_l0))


class SaeprobeDense(Saeprobe):
    """saeprobe with its dense reference step: the quality check shows the sparse step trains
    the same SAE (it is exact), so any gap to a peer is the recipe, not the speed-up."""

    impl = "saeprobe_dense"

    def __init__(self, *args):
        super().__init__(*args)
        self.sae.sparse_training = False


class SAELens(Impl):
    impl = "sae_lens"

    def __init__(
        self, arch, d, m, k, lr, bf16, first, settings: dict | None = None, config=None
    ):  # settings: training coefficients, e.g. {"l0": 3.0}; config: SAE config fields
        import sae_lens
        from sae_lens.saes.sae import TrainCoefficientConfig

        self.arch, self.bf16 = arch, bf16
        name = SAELENS_ARCHS[arch]
        cls = getattr(sae_lens, f"{name}TrainingSAE")
        cfg_cls = getattr(sae_lens, f"{name}TrainingSAEConfig")
        kw = ({"k": k} if name in ("TopK", "BatchTopK") else {}) | (config or {})
        self.sae = cls(cfg_cls(d_in=d, d_sae=m, device="cpu", dtype="float32", **kw))
        self.coefficients = {
            n: c.value if isinstance(c, TrainCoefficientConfig) else c
            for n, c in self.sae.get_coefficients().items()
        } | (settings or {})
        self.opt = torch.optim.Adam(self.sae.parameters(), lr=lr, betas=ADAM["betas"])
        self.since_fired = torch.zeros(m)
        self.dead_window = 1000  # LanguageModelSAERunnerConfig.dead_feature_window default
        self.i = 0

    def step(self, x: Tensor, dead: Tensor | None) -> None:
        from sae_lens.saes.sae import TrainStepInput

        if dead is None:
            dead = self.since_fired > self.dead_window
        self.sae.train()
        with _autocast(self.bf16):
            out = self.sae.training_forward_pass(
                TrainStepInput(
                    sae_in=x,
                    coefficients=self.coefficients,
                    dead_neuron_mask=dead,
                    n_training_steps=self.i,
                    is_logging_step=False,
                )
            )
            with torch.no_grad():  # SAETrainer._train_step's bookkeeping
                firing = out.feature_acts.bool().float()
                did_fire = firing.sum(-2).bool()
                self.since_fired += 1
                self.since_fired[did_fire] = 0
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.sae.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad()
        self.i += 1

    @torch.no_grad()
    def reconstruct(self, x):
        self.sae.eval()
        f = self.sae.encode(x)
        return self.sae.decode(f), (f > 0).sum(-1).float()

    @torch.no_grad()
    def set_trained_sparsity(self, x, mean_l0):
        if hasattr(self.sae, "threshold"):
            _, pre = self.sae.encode_with_hidden_pre(x)
            pre = _spread_encoder(
                self.sae.W_enc, pre - self.sae.b_enc, self.sae.cfg.jumprelu_bandwidth
            )
            self.sae.threshold.copy_(_firing_thresholds(pre + self.sae.b_enc, mean_l0))


class Sparsify(Impl):
    impl = "sparsify"

    def __init__(self, arch: str, d: int, m: int, k: int, lr: float, bf16: bool, first: Tensor):
        from sparsify import SparseCoder, SparseCoderConfig

        self.arch, self.bf16 = arch, bf16
        self.sae = SparseCoder(d, SparseCoderConfig(num_latents=m, k=k), device="cpu")
        with torch.no_grad():  # Trainer.fit, first step: b_dec = batch mean
            self.sae.b_dec.copy_(first.mean(0))
        self.opt = torch.optim.Adam(self.sae.parameters(), lr=lr, betas=ADAM["betas"])
        self.auxk_alpha = 1 / 32
        self.since_fired = torch.zeros(m, dtype=torch.long)
        self.dead_after = 10_000_000  # TrainConfig.dead_feature_threshold default

    def step(self, x: Tensor, dead: Tensor | None) -> None:
        if dead is None:
            dead = self.since_fired > self.dead_after
        self.sae.set_decoder_norm_to_unit_norm()
        with _autocast(self.bf16):
            out = self.sae(x, dead_mask=dead)
            loss = out.fvu + self.auxk_alpha * out.auxk_loss
        loss.backward()
        with torch.no_grad():
            did_fire = torch.zeros_like(dead)
            did_fire[out.latent_indices.flatten()] = True
            self.since_fired += x.shape[0]
            self.since_fired[did_fire] = 0
        self.sae.remove_gradient_parallel_to_decoder_directions()
        self.opt.step()
        self.opt.zero_grad()

    @torch.no_grad()
    def reconstruct(self, x):
        out = self.sae(x)
        return out.sae_out.float(), torch.full((x.shape[0],), float(self.sae.cfg.k))


CLASSES = {
    "saeprobe": Saeprobe,
    "saeprobe_dense": SaeprobeDense,
    "sae_lens": SAELens,
    "sparsify": Sparsify,
}


def build(
    impl: str, arch: str, d: int, m: int, k: int, lr: float, bf16: bool, first: Tensor, seed=0, **kw
):
    torch.manual_seed(seed)  # every library draws its init from torch's global generator
    return CLASSES[impl](arch, d, m, k, lr, bf16, first, **kw)


def gemm_step(b: int, d: int, m: int, bf16: bool):
    """The 5 GEMMs of 2*b*d*m FLOPs a dense SAE step needs (the reference for 'fraction')."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    x = torch.randn(b, d, dtype=dtype)
    w = torch.randn(d, m, dtype=dtype)
    f = torch.randn(b, m, dtype=dtype)
    wd = torch.randn(m, d, dtype=dtype)

    def five(_x=None, _dead=None):
        x @ w  # encoder forward
        f @ wd  # decoder forward
        x @ wd.T  # gradient into the latents
        f.T @ x  # decoder weight gradient
        x.T @ f  # encoder weight gradient

    return five, 5 * 2 * b * d * m


def fvu(x: Tensor, x_hat: Tensor) -> float:
    return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def peer_scale(impl: str, x: Tensor, raw_scale: float) -> float:
    """The factor each library's own normalisation applies to raw activations:
    saeprobe E||x||^2 = 1 (the store's scale), SAELens expected_average_only_in (E||x|| = sqrt d),
    sparsify none (FVU is scale free)."""
    if impl.startswith("saeprobe"):  # the dense reference step too: same SAE, same units
        return 1.0 / raw_scale
    if impl == "sae_lens":
        return math.sqrt(x.shape[1]) / float(x.norm(dim=1).mean())
    return 1.0
