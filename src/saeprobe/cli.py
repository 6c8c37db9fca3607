"""The `saeprobe` command line. Each command parses options and calls one library function."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from saeprobe.errors import SaeprobeError


class _Group(click.Group):
    """Print user errors as one line (no traceback) and exit with status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SaeprobeError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="saeprobe")
def main() -> None:
    """Train sparse autoencoders and test whether they help on downstream tasks."""


def _sparsity_field(arch: str) -> str:
    return "sparsity_coefficient" if arch == "jumprelu" else "l1_coefficient"


@main.command()
@click.option("--arch", help="relu | gated | jumprelu | topk | batchtopk [topk]")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="YAML toy config; command-line options override it",
)
@click.option("--d-sae", type=int, help="number of latents [1024]")
@click.option(
    "--k", type=float, help="active latents per row (topk [4]; batchtopk, may be fractional [1])"
)
@click.option(
    "--sparsity-coefficient",
    "--l1-coefficient",
    "sparsity",
    type=float,
    help="lambda: L1 for relu/gated, L0 or QF for jumprelu",
)
@click.option(
    "--sparsity-penalty",
    type=click.Choice(["l0", "quadratic-frequency"]),
    help="jumprelu sparsity penalty [l0]",
)
@click.option("--frequency-scale", type=float, help="omega_0 of the QF penalty, e.g. 0.1")
@click.option("--bandwidth", type=float, help="jumprelu STE bandwidth (normalised units)")
@click.option("--threshold-init", type=float, help="jumprelu initial threshold")
@click.option("--encoder-init-scale", type=float, help="W_enc = scale * W_dec^T at init [0.1]")
@click.option(
    "--density",
    type=click.Choice(["sparse", "dense"]),
    help="planted regime: ~4 (sparse) or ~9 (dense) active features per sample",
)
@click.option(
    "--rare-range",
    type=(float, float),
    help="firing-probability range LO HI of the rare planted features",
)
@click.option("--steps", type=int, help="training steps [3000; 4500 for jumprelu, batchtopk]")
@click.option("--batch-size", type=int, help="rows per step [1024]")
@click.option("--lr", type=float, help="Adam learning rate [3e-3]")
@click.option("--seed", type=int, help="seed for the planted dictionary, data and init [0]")
@click.option("--device", help="auto | cpu | cuda[:N]")
@click.option("--bf16/--no-bf16", default=None, help="bf16 autocast for the SAE")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the step")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path), help="where checkpoints go")
@click.option("--checkpoint-every", type=int, help="checkpoint every N steps")
@click.option("--resume", is_flag=True, help="continue from the checkpoint in --checkpoint-dir")
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(path_type=Path),
    help="JSONL file for training metrics",
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="write results here")
@click.option("--out", type=click.Path(path_type=Path), help="save the trained SAE here")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
def toy(
    arch,
    config_path,
    d_sae,
    k,
    sparsity,
    sparsity_penalty,
    frequency_scale,
    bandwidth,
    threshold_init,
    encoder_init_scale,
    density,
    rare_range,
    steps,
    batch_size,
    lr,
    seed,
    device,
    bf16,
    compile_,
    checkpoint_dir,
    checkpoint_every,
    resume,
    metrics_path,
    json_path,
    out,
    progress,
):
    """Train an SAE on planted features and report how many it recovered."""
    from saeprobe.pipeline.toy import ToyConfig, dump, load_toy_config, run_toy
    from saeprobe.sae.config import build_config

    data = load_toy_config(config_path)
    arch = arch or data.get("architecture") or "topk"
    data["architecture"] = arch
    sae = dict(data.get("sae", {}))
    for key, val in {
        "k": k,
        _sparsity_field(arch): sparsity,
        "sparsity_penalty": sparsity_penalty,
        "frequency_scale": frequency_scale,
        "bandwidth": bandwidth,
        "threshold_init": threshold_init,
        "encoder_init_scale": encoder_init_scale,
    }.items():
        if val is not None:
            sae[key] = val
    train = dict(data.get("train", {}))
    for key, val in {
        "steps": steps,
        "lr": lr,
        "device": device,
        "autocast_bf16": bf16,
        "compile": compile_,
        "checkpoint_dir": checkpoint_dir,
        "checkpoint_every": checkpoint_every,
        "metrics_path": metrics_path,
    }.items():
        if val is not None:
            train[key] = val
    train["progress"] = progress
    planted = dict(data.get("planted", {}))
    if density is not None:
        planted["density"] = density
    if rare_range is not None:
        planted["rare_range"] = rare_range
    if seed is not None:
        planted["seed"] = seed
    data.update(sae=sae, train=train, planted=planted)
    if d_sae is not None:
        data["d_sae"] = d_sae
    if batch_size is not None:
        data["batch_size"] = batch_size
    cfg = build_config(ToyConfig, data, what="toy config")
    report = run_toy(cfg, out=out, json_path=json_path, resume=resume)
    click.echo(dump(report))


if __name__ == "__main__":
    main()
