"""One architecture-agnostic trainer for any number of SAEs fed by one activation stream.

Per step and per SAE: normalised batch -> architecture's `training_step` -> backward -> remove the
decoder-gradient component parallel to each (unit) decoder row -> gradient-norm clipping (on by
default) -> Adam -> renormalise decoder rows -> architecture constraints -> dead-latent
bookkeeping. The trainer never looks at dense latents, so an architecture may implement its step
with fused or sparse kernels.
"""

from __future__ import annotations

import copy
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from saeprobe.errors import ConfigError, DataError, SaeprobeError
from saeprobe.sae.base import SAE, StepContext, TrainOutput
from saeprobe.sae.io import save_sae
from saeprobe.sae.registry import create_sae
from saeprobe.train import distributed
from saeprobe.train.checkpoint import (
    Checkpoint,
    RunState,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from saeprobe.train.config import RunSpec, TrainConfig
from saeprobe.train.dead import DeadLatentTracker
from saeprobe.train.finetune import load_into
from saeprobe.train.metrics_log import MetricsLogger
from saeprobe.train.schedule import lr_at, sparsity_scale_at
from saeprobe.train.source import BatchSource


class TrainingDiverged(SaeprobeError):
    """The loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return torch.device(name)


@dataclass
class _Run:
    spec: RunSpec
    sae: SAE
    optimizer: torch.optim.Adam
    tracker: DeadLatentTracker
    step_fn: Callable[[Tensor, StepContext], TrainOutput]
    base_lr: float
    sums: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class TrainResult:
    """Trained SAEs in normalised units plus the scale that maps them to raw activations."""

    saes: dict[str, SAE]
    scale: float
    steps: int
    seconds: float
    dead_fraction: dict[str, float]

    def export(self, name: str) -> SAE:
        """A copy of SAE `name` that reads and writes raw (unnormalised) activations."""
        return raw_units_copy(self.saes[name], self.scale)

    def save(self, name: str, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        meta = {"normalization_scale_folded": self.scale, "train_steps": self.steps}
        return save_sae(self.export(name), path, metadata=meta | (metadata or {}))


class Trainer:
    def __init__(self, cfg: TrainConfig, runs: list[RunSpec]):
        if not runs:
            raise ConfigError("no SAE to train; give at least one run")
        names = [r.name for r in runs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"duplicate run names {dupes}; give every run a unique name")
        self.cfg = cfg
        self.specs = runs

    # ----- public ---------------------------------------------------------------------------
    def fit(self, source: BatchSource, resume: bool = False) -> TrainResult:
        """Train every run on `source`. Under torchrun each rank trains on its slice of every
        global batch with gradients averaged over the ranks (see train/distributed.py)."""
        cfg = self.cfg
        t0 = time.perf_counter()
        rank, world = distributed.world()
        device = distributed.ranks.device_for(resolve_device(cfg.device), rank)
        for spec in self.specs:
            if spec.sae.d_in != source.d_in:
                raise DataError(
                    f"run {spec.name!r}: SAE d_in={spec.sae.d_in} but the activations have width "
                    f"{source.d_in}; set d_in to {source.d_in} or use matching activations"
                )
        ckpt = self._load_resume_checkpoint() if resume else None
        if ckpt is not None:
            scale, start = float(ckpt.meta["scale"]), ckpt.step
        else:
            # A store knows sqrt(E||x||^2) over all its tokens; other sources are sampled.
            known = getattr(source, "normalization_scale", None)
            scale = float(known) if known else estimate_scale(source, cfg.normalization_batches)
            start = 0
        runs = [
            self._build_run(i, s, scale, device, source, ckpt) for i, s in enumerate(self.specs)
        ]
        local = distributed.shard(source)
        main = distributed.is_main()
        logger = MetricsLogger(
            cfg.metrics_path if main else None,
            resume_step=start if ckpt is not None else None,
            wandb_project=cfg.wandb_project if main else None,
            wandb_config={"train": cfg.model_dump(mode="json")},
        )
        bar = tqdm(
            total=cfg.steps,
            initial=start,
            disable=not (cfg.progress and main),
            desc="train",
            unit="step",
        )
        try:
            batches = local.batches(start)
            for step in range(start, cfg.steps):
                x = self._prepare(next(batches), step, scale, device)
                self._step_all(runs, x, step, x.shape[0] * world)
                if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                    self._flush_logs(runs, step, logger, bar, x.shape[0] * world, t0)
                bar.update(1)
                if step + 1 in cfg.snapshot_steps:
                    self._snapshot(runs, step + 1, scale)
                if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                    self._save(runs, step + 1, scale)
            if cfg.checkpoint_dir is not None and start < cfg.steps:
                self._save(runs, cfg.steps, scale)
            distributed.barrier()  # rank 0's files are complete before any rank goes on
        finally:
            bar.close()
            logger.close()
        return TrainResult(
            saes={r.spec.name: r.sae for r in runs},
            scale=scale,
            steps=cfg.steps,
            seconds=time.perf_counter() - t0,
            dead_fraction={r.spec.name: r.tracker.dead_fraction for r in runs},
        )

    # ----- setup ----------------------------------------------------------------------------
    def _load_resume_checkpoint(self) -> Checkpoint | None:
        if self.cfg.checkpoint_dir is None:
            raise ConfigError("--resume needs --checkpoint-dir (where the checkpoint was written)")
        if not checkpoint_path(self.cfg.checkpoint_dir).exists():
            return None  # nothing to resume: start fresh
        ckpt = load_checkpoint(self.cfg.checkpoint_dir)
        expected = self._fingerprint()
        got = {"train": ckpt.meta.get("train"), "runs": ckpt.meta.get("runs")}
        if got != expected:
            diff = _describe_difference(got, expected)
            raise ConfigError(
                f"checkpoint in {self.cfg.checkpoint_dir} was written with a different "
                f"configuration ({diff}); resume with the original settings or use a new "
                "--checkpoint-dir"
            )
        return ckpt

    def _fingerprint(self) -> dict[str, Any]:
        return {
            "train": self.cfg.resume_fingerprint(),
            "runs": [
                {
                    "name": s.name,
                    "sae": s.sae.model_dump(mode="json"),
                    "init_from": str(s.init_from) if s.init_from else None,
                    "reinit_fraction": s.reinit_fraction,
                    "lr": s.lr,
                }
                for s in self.specs
            ],
        }

    def _build_run(
        self,
        index: int,
        spec: RunSpec,
        scale: float,
        device: torch.device,
        source: BatchSource,
        ckpt: Checkpoint | None,
    ) -> _Run:
        cfg = self.cfg
        # Seeded by run name, so adding or reordering runs never changes another run's init.
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + zlib.crc32(spec.name.encode()))
        sae = (
            create_sae(spec.sae, seed=None)
            if ckpt is not None
            else self._init_sae(spec, scale, source, gen)
        )
        sae = sae.to(device)
        if ckpt is None:
            distributed.broadcast_module(sae)  # every rank starts from rank 0's weights
        optimizer = make_adam(sae, cfg, device)
        tracker = DeadLatentTracker(spec.sae.d_sae, cfg.dead_after_tokens, device)
        if ckpt is not None:
            _restore(ckpt.runs[index], sae, optimizer, tracker, device)
        step_fn = torch.compile(sae.training_step) if cfg.compile else sae.training_step
        base_lr = spec.lr if spec.lr is not None else cfg.lr
        return _Run(spec, sae, optimizer, tracker, step_fn, base_lr)

    def _init_sae(
        self, spec: RunSpec, scale: float, source: BatchSource, gen: torch.Generator
    ) -> SAE:
        sae = create_sae(spec.sae, seed=int(torch.randint(0, 2**62, (1,), generator=gen)))
        if spec.init_from is None:
            if self.cfg.b_dec_init == "mean":
                sae.init_from_data(next(source.batches(0)).float() / scale)
            return sae
        load_into(sae, spec.init_from, scale, run=spec.name)
        n_reinit = round(spec.reinit_fraction * spec.sae.d_sae)
        if n_reinit:
            idx = torch.randperm(spec.sae.d_sae, generator=gen)[:n_reinit]
            sae.reinitialize_latents(idx, generator=gen)
        return sae

    # ----- the step -------------------------------------------------------------------------
    @staticmethod
    def _prepare(batch: Tensor, step: int, scale: float, device: torch.device) -> Tensor:
        if batch.ndim != 2:
            raise DataError(f"batch {step} has shape {tuple(batch.shape)}; expected [rows, d_in]")
        if not torch.isfinite(batch).all():
            raise DataError(
                f"batch {step} contains NaN or inf activations; clean or re-harvest the "
                "activations (the last checkpoint is kept)"
            )
        return batch.to(device=device, dtype=torch.float32, non_blocking=True) / scale

    def _step_all(self, runs: list[_Run], x: Tensor, step: int, global_rows: int) -> None:
        """One step of every run on batch `x`. Under torchrun a run's gradient all-reduce is in
        flight while the next run computes its forward and backward."""
        total_var = (x - x.mean(0)).pow(2).sum()
        if not distributed.active():
            for run in runs:
                self._train_step(run, x, step, total_var)
            return
        pending = None
        for run in runs:
            out = self._backward(run, x, step)
            sync = distributed.GradSync(list(run.sae.parameters()), out.fire_counts, out.loss)
            if pending is not None:
                self._update(*pending)
            pending = (run, out, sync, step, global_rows, total_var, x.shape[0])
        self._update(*pending)

    def _train_step(self, run: _Run, x: Tensor, step: int, total_var: Tensor) -> None:
        """One step of one run (single process)."""
        out = self._backward(run, x, step)
        sync = distributed.GradSync(list(run.sae.parameters()), out.fire_counts, out.loss)
        self._update(run, out, sync, step, x.shape[0], total_var, x.shape[0])

    def _backward(self, run: _Run, x: Tensor, step: int) -> TrainOutput:
        cfg = self.cfg
        lr = lr_at(step, cfg, run.base_lr)
        for group in run.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        ctx = StepContext(sparsity_scale_at(step, cfg), run.tracker.dead_mask)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.autocast_bf16):
            out = run.step_fn(x, ctx)
        if not distributed.active():
            self._check_finite(run, out.loss, step)
        run.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        return out

    def _check_finite(self, run: _Run, loss: Tensor, step: int) -> None:
        if not torch.isfinite(loss):
            cfg = self.cfg
            where = f" (last checkpoint kept in {cfg.checkpoint_dir})" if cfg.checkpoint_dir else ""
            raise TrainingDiverged(
                f"run {run.spec.name!r}: loss became {float(loss)} at step {step}; lower the "
                f"learning rate or the sparsity coefficient{where}"
            )

    def _update(
        self, run: _Run, out: TrainOutput, sync, step: int, rows: int, total_var, local_rows: int
    ) -> None:
        """Average gradients over ranks, then Adam and the constraints, identical on each rank."""
        sae = run.sae
        fire_counts, loss = sync.wait()
        self._check_finite(run, loss, step)  # every rank sees the same mean loss
        _remove_parallel_decoder_grad(sae.W_dec)
        if self.cfg.max_grad_norm is not None:  # after the all-reduce: the same on every rank
            torch.nn.utils.clip_grad_norm_(sae.parameters(), self.cfg.max_grad_norm)
        run.optimizer.step()
        with torch.no_grad():
            sae.W_dec.div_(sae.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))
        sae.after_optimizer_step()
        run.tracker.update(fire_counts, rows)
        _accumulate(run.sums, out, local_rows, total_var)

    # ----- bookkeeping ----------------------------------------------------------------------
    def _flush_logs(
        self, runs: list[_Run], step: int, logger: MetricsLogger, bar, rows: int, t0: float
    ) -> None:
        postfix = {}
        for run in runs:
            _average_over_ranks(run.sums)
            n = float(run.sums.pop("_n"))
            rec: dict[str, Any] = {
                "step": step + 1,
                "run": run.spec.name,
                "rows": (step + 1) * rows,
                "lr": lr_at(step, self.cfg, run.base_lr),
                "sparsity_scale": sparsity_scale_at(step, self.cfg),
            }
            rec.update({k: float(v) / n for k, v in run.sums.items()})
            rec["dead_fraction"] = run.tracker.dead_fraction
            rec["elapsed_s"] = round(time.perf_counter() - t0, 3)
            run.sums.clear()
            logger.log(rec)
            if not postfix:
                postfix = {"fvu": f"{rec['fvu']:.3f}", "l0": f"{rec['l0']:.1f}"}
        bar.set_postfix(postfix)

    def _save(self, runs: list[_Run], step: int, scale: float) -> None:
        if not distributed.is_main():
            return
        states = [
            RunState(
                sae=r.sae.state_dict(),
                optim=_optimizer_state(r.sae, r.optimizer),
                rows_since_fired=r.tracker.rows_since_fired,
            )
            for r in runs
        ]
        meta = {"scale": scale} | self._fingerprint()
        save_checkpoint(self.cfg.checkpoint_dir, Checkpoint(step=step, meta=meta, runs=states))

    def _snapshot(self, runs: list[_Run], step: int, scale: float) -> None:
        """Save each run's SAE as it is after `step` (raw units), e.g. to finetune from later."""
        if not distributed.is_main():
            return
        for run in runs:
            sae = raw_units_copy(run.sae, scale)
            meta = {"normalization_scale_folded": scale, "train_steps": step, "run": run.spec.name}
            save_sae(sae, snapshot_path(self.cfg.snapshot_dir, run.spec.name, step), metadata=meta)


def raw_units_copy(sae: SAE, scale: float) -> SAE:
    """A CPU copy of `sae` (trained on x / scale) that reads and writes raw activations."""
    sae = copy.deepcopy(sae).cpu()
    sae.fold_input_scale(scale)
    return sae


def snapshot_path(snapshot_dir: str | Path, run: str, step: int) -> Path:
    return Path(snapshot_dir) / run / f"step{step}"


def estimate_scale(source: BatchSource, n_batches: int) -> float:
    """sqrt(E||x||^2) over the first batches: dividing by it gives E||x||^2 = 1."""
    total, rows = 0.0, 0
    batches = source.batches(0)
    for i in range(n_batches):
        b = next(batches).double()
        if not torch.isfinite(b).all():
            raise DataError(f"batch {i} contains NaN or inf activations; clean the activations")
        total += float(b.pow(2).sum())
        rows += b.shape[0]
    scale = math.sqrt(total / max(rows, 1))
    if not scale > 0:
        raise DataError("the activations are all zero; check the layer and data you harvested")
    return scale


def make_adam(sae: SAE, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam over the SAE's parameter groups; the fused kernel where torch has one (CPU and CUDA):
    one pass over each parameter instead of about ten element-wise ops, the same update."""
    fused = device.type in ("cpu", "cuda") and all(
        p.dtype.is_floating_point for p in sae.parameters()
    )
    return torch.optim.Adam(
        sae.optimizer_groups(),
        lr=cfg.lr,
        betas=cfg.adam_betas,
        eps=cfg.adam_eps,
        fused=fused or None,
    )


@torch.no_grad()
def _remove_parallel_decoder_grad(W_dec: torch.nn.Parameter) -> None:
    if W_dec.grad is None:
        return
    W = W_dec.detach()
    parallel = (W_dec.grad * W).sum(dim=1, keepdim=True)
    W_dec.grad.sub_(parallel * W)


def _accumulate(sums: dict[str, Tensor], out: TrainOutput, rows: int, total_var: Tensor) -> None:
    vals = {
        "loss": out.loss.detach(),
        "fvu": out.sq_error / total_var.clamp_min(1e-12),
        "l0": out.fire_counts.sum() / rows,
        **out.terms,
    }
    for k, v in vals.items():
        sums[k] = sums.get(k, 0) + v.float()
    sums["_n"] = sums.get("_n", 0) + 1


def _average_over_ranks(sums: dict[str, Tensor]) -> None:
    """Average the logged sums over the ranks (every rank has the same keys: the dead set, and
    so whether AuxK ran, is the same on every rank)."""
    if not distributed.active():
        return
    keys = sorted(sums)
    total = distributed.global_sum(torch.stack([torch.as_tensor(sums[k]).double() for k in keys]))
    world = torch.distributed.get_world_size()
    sums.update({k: v / world for k, v in zip(keys, total, strict=True)})


def _optimizer_state(sae: SAE, optimizer: torch.optim.Adam) -> dict[str, dict[str, Tensor]]:
    out = {}
    for name, p in sae.named_parameters():
        state = optimizer.state.get(p)
        if state:
            out[name] = {k: v if torch.is_tensor(v) else torch.tensor(v) for k, v in state.items()}
    return out


def _restore(
    state: RunState,
    sae: SAE,
    optimizer: torch.optim.Adam,
    tracker: DeadLatentTracker,
    device: torch.device,
) -> None:
    sae.load_state_dict(state.sae)
    params = dict(sae.named_parameters())
    # Adam keeps its scalar step on the CPU unless fused/capturable (then beside the parameter).
    on_device = any(g.get("fused") or g.get("capturable") for g in optimizer.param_groups)
    for name, st in state.optim.items():
        p = params[name]
        optimizer.state[p] = {
            k: (v.to(device) if on_device or k != "step" else v.cpu()) for k, v in st.items()
        }
    tracker.rows_since_fired.copy_(state.rows_since_fired.to(device))


def _describe_difference(got: dict[str, Any], expected: dict[str, Any]) -> str:
    g_train, e_train = got.get("train") or {}, expected["train"]
    diffs = [f"{k}: {g_train.get(k)!r} -> {v!r}" for k, v in e_train.items() if g_train.get(k) != v]
    if got.get("runs") != expected["runs"]:
        diffs.append("runs or SAE configs changed")
    return "; ".join(diffs) or "metadata differs"
