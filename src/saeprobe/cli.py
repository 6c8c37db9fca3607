"""The `saeprobe` command line. Each command parses options and calls one library function."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from saeprobe.errors import ConfigError, SaeprobeError


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


def _options(*decorators: Callable) -> Callable:
    def apply(fn: Callable) -> Callable:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


_PATH = click.Path(path_type=Path)


sae_options = _options(
    click.option("--arch", help="relu | gated | jumprelu | topk | batchtopk [topk]"),
    click.option("--d-sae", type=int, help="number of latents"),
    click.option(
        "--k", type=float, help="active latents per row (topk; batchtopk may be fractional)"
    ),
    click.option(
        "--sparsity-coefficient",
        "--l1-coefficient",
        "sparsity",
        type=float,
        help="lambda: L1 for relu/gated, L0 or QF for jumprelu",
    ),
    click.option(
        "--sparsity-penalty",
        type=click.Choice(["l0", "quadratic-frequency"]),
        help="jumprelu sparsity penalty [l0]",
    ),
    click.option("--frequency-scale", type=float, help="omega_0 of the QF penalty, e.g. 0.1"),
    click.option("--bandwidth", type=float, help="jumprelu STE bandwidth (normalised units)"),
    click.option("--threshold-init", type=float, help="jumprelu initial threshold"),
    click.option("--encoder-init-scale", type=float, help="W_enc = scale * W_dec^T at init [0.1]"),
    click.option(
        "--auxk/--no-auxk",
        default=None,
        help="AuxK dead-latent loss [on for jumprelu/topk/batchtopk, off for relu/gated]",
    ),
)

train_options = _options(
    click.option("--steps", type=int, help="training steps"),
    click.option("--batch-size", type=int, help="rows per step"),
    click.option("--lr", type=float, help="Adam learning rate"),
    click.option(
        "--max-grad-norm",
        help="clip each SAE's gradient to this global norm, or 'off' [0.01]",
    ),
    click.option("--seed", type=int, help="seed for data order and initialisation [0]"),
    click.option("--device", help="auto | cpu | cuda[:N]"),
    click.option("--bf16/--no-bf16", default=None, help="bf16 autocast for the SAE"),
    click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the step"),
    click.option("--checkpoint-every", type=int, help="checkpoint every N steps"),
    click.option("--resume", is_flag=True, help="continue from the last checkpoint"),
    click.option("--metrics", "metrics_path", type=_PATH, help="JSONL file for training metrics"),
    click.option("--progress/--no-progress", default=True, help="show a progress bar"),
    click.option(
        "--recipe",
        help="preset of training settings: gemma-scope (docs/recipes.md). It sets only what you "
        "did not set yourself (options, the config's sae:/train:); cfg.json records what it set",
    ),
)


def _sparsity_field(arch: str) -> str:
    return "sparsity_coefficient" if arch == "jumprelu" else "l1_coefficient"


def _set(target: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`target` updated with the values that were given (not None)."""
    return {**target, **{k: v for k, v in values.items() if v is not None}}


def _sae_overrides(arch: str, base: dict[str, Any], o: dict[str, Any]) -> dict[str, Any]:
    from saeprobe.sae.auxk import auxk_settings

    return _set(
        base,
        {
            **auxk_settings(o["auxk"], base),
            "k": o["k"],
            _sparsity_field(arch): o["sparsity"],
            "sparsity_penalty": o["sparsity_penalty"],
            "frequency_scale": o["frequency_scale"],
            "bandwidth": o["bandwidth"],
            "threshold_init": o["threshold_init"],
            "encoder_init_scale": o["encoder_init_scale"],
        },
    )


def _train_overrides(base: dict[str, Any], o: dict[str, Any]) -> dict[str, Any]:
    train = _set(
        base,
        {
            "steps": o["steps"],
            "lr": o["lr"],
            "max_grad_norm": o["max_grad_norm"],
            "seed": o["seed"],
            "device": o["device"],
            "autocast_bf16": o["bf16"],
            "compile": o["compile_"],
            "checkpoint_every": o["checkpoint_every"],
            "metrics_path": o["metrics_path"],
        },
    )
    train["progress"] = o["progress"]
    return train


@main.command()
@sae_options
@train_options
@click.option("--config", "config_path", type=_PATH, help="YAML toy config; options override it")
@click.option(
    "--density",
    type=click.Choice(["sparse", "dense"]),
    help="planted regime: ~4 (sparse) or ~9 (dense) active features per sample",
)
@click.option(
    "--rare-range", type=(float, float), help="firing-probability range LO HI of rare features"
)
@click.option("--checkpoint-dir", type=_PATH, help="where checkpoints go")
@click.option("--json", "json_path", type=_PATH, help="write results here")
@click.option("--out", type=_PATH, help="save the trained SAE here")
def toy(config_path, density, rare_range, checkpoint_dir, json_path, out, **o):
    """Train an SAE on planted features and report how many it recovered."""
    from saeprobe.sae.config import build_config
    from saeprobe.train.toy import ToyConfig, dump, run_toy
    from saeprobe.yaml_config import load_yaml_config

    data = load_yaml_config(config_path)
    arch = o["arch"] or data.get("architecture") or "topk"
    data["architecture"] = arch
    seed = o.pop("seed")
    data["sae"] = _sae_overrides(arch, dict(data.get("sae", {})), o)
    data["train"] = _train_overrides(dict(data.get("train", {})), o | {"seed": None})
    if checkpoint_dir is not None:
        data["train"]["checkpoint_dir"] = checkpoint_dir
    data["planted"] = _set(
        dict(data.get("planted", {})), {"density": density, "rare_range": rare_range, "seed": seed}
    )
    data = _set(data, {"d_sae": o["d_sae"], "batch_size": o["batch_size"], "recipe": o["recipe"]})
    cfg = build_config(ToyConfig, data, what="toy config")
    report = run_toy(cfg, out=out, json_path=json_path, resume=o["resume"])
    click.echo(dump(report))


@main.command()
@click.option(
    "--model", help="smollm2 | minilm | a local directory, .gguf file or hub id [smollm2]"
)
@click.option(
    "--layer", "layers", type=int, multiple=True, required=True, help="block index; repeat"
)
@click.option("--data", help="corpus file, hf:NAME[:SPLIT[:FIELD]] [python-docs, offline]")
@click.option("--field", help="text field (jsonl/parquet) or column (csv)")
@click.option("--out", required=True, type=_PATH, help="store directory")
@click.option("--max-tokens", type=int, help="stop after this many tokens")
@click.option("--context", type=int, help="tokens per window, specials included [128]")
@click.option("--batch-size", type=int, help="windows per forward pass [32]")
@click.option("--shard-tokens", type=int, help="tokens per shard file [65536]")
@click.option("--chat", is_flag=True, help="wrap each text document as a chat user turn")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), help="model + store dtype")
@click.option(
    "--autocast/--no-autocast",
    default=None,
    help="run the model under bf16 autocast [on only where bf16 is fast]",
)
@click.option("--device", help="auto | cpu | cuda[:N]")
@click.option(
    "--outlier-factor",
    type=float,
    help="drop tokens with norm > F x batch median [10; 0: keep all]",
)
@click.option("--resume", is_flag=True, help="continue an interrupted harvest in --out")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
def harvest(resume, **o):
    """Run a model over a corpus and store residual activations at the given layers.

    A JSONL file whose rows hold `messages` (saeprobe rollouts) is harvested as chats: the
    user and assistant text, never template tokens."""
    from saeprobe.activations.harvest import HarvestConfig, harvest
    from saeprobe.sae.config import build_config

    o = {k: v for k, v in o.items() if v is not None}
    if o.get("outlier_factor") == 0:
        o["outlier_factor"] = None
    cfg = build_config(HarvestConfig, o, what="harvest settings")
    manifest = harvest(cfg, resume=resume)
    if manifest is not None:
        click.echo(
            f"{manifest.n_tokens} tokens x {manifest.d_model} at layers {manifest.layers} "
            f"in {len(manifest.shards)} shards -> {cfg.out}"
        )


@main.command()
@click.option("--acts", required=True, type=_PATH, help="activation store from saeprobe harvest")
@click.option("--layer", type=int, help="stored layer to train on (needed if several)")
@click.option("--out", required=True, type=_PATH, help="directory for the trained SAE")
@click.option("--config", "config_path", type=_PATH, help="YAML with sae: and train: sections")
@click.option("--epochs", type=float, help="passes over the store [1 unless --steps]")
@click.option("--init-from", type=_PATH, help="finetune from this SAE directory")
@click.option("--reinit-fraction", type=float, help="latents re-initialised before finetuning")
@click.option("--no-verify", is_flag=True, help="skip shard checksums")
@click.option(
    "--holdout-tokens",
    type=int,
    help="train on all but the store's last N tokens; `evaluate --eval-tokens N` then scores "
    "held-out tokens [0]",
)
@sae_options
@train_options
def train(
    acts, layer, out, config_path, epochs, init_from, reinit_fraction, no_verify, holdout_tokens,
    **o,
):  # fmt: skip
    """Train an SAE on a harvested activation store."""
    import json

    from saeprobe.sae.config import build_config
    from saeprobe.train.from_store import StoreTrainConfig, train_from_store
    from saeprobe.yaml_config import load_yaml_config

    data = load_yaml_config(config_path)
    arch = o["arch"] or data.get("architecture")
    if arch is None:  # a finetune inherits the saved SAE's architecture
        from saeprobe.train.finetune import inherited_settings

        source = init_from or data.get("init_from")
        arch = inherited_settings(source)["architecture"] if source else "topk"
    data = _set(
        data,
        {
            "acts": acts,
            "out": out,
            "layer": layer,
            "architecture": arch,
            "d_sae": o["d_sae"],
            "batch_size": o["batch_size"],
            "epochs": epochs,
            "init_from": init_from,
            "reinit_fraction": reinit_fraction,
            "holdout_tokens": holdout_tokens,
            "recipe": o["recipe"],
        },
    )
    data["verify"] = not no_verify
    data["sae"] = _sae_overrides(arch, dict(data.get("sae", {})), o)
    data["train"] = _train_overrides(dict(data.get("train", {})), o)
    cfg = build_config(StoreTrainConfig, data, what="train settings")
    report = train_from_store(cfg, resume=o["resume"])
    if report is not None:  # None on the other ranks of a torchrun job
        click.echo(
            json.dumps({k: v for k, v in report.items() if k not in ("sae", "train")}, indent=2)
        )


@main.command()
@click.option("--sae", required=True, type=_PATH, help="SAE directory")
@click.option("--acts", required=True, type=_PATH, help="activation store to evaluate on")
@click.option("--layer", type=int, help="stored layer [the SAE's hook_layer]")
@click.option("--json", "json_path", required=True, type=_PATH, help="write the metrics here")
@click.option("--eval-tokens", type=int, help="evaluate the store's last N tokens [65536]")
@click.option(
    "--eval-range",
    type=(int, int),
    help="evaluate tokens START STOP of the store instead (e.g. ones held out from training)",
)
@click.option("--batch-size", type=int, help="tokens per batch [4096]")
@click.option("--model", help="model for the spliced evaluation [the store's]")
@click.option("--data", help="texts for the spliced evaluation [the store's, held out]")
@click.option("--field", help="text field of --data")
@click.option("--lm-windows", type=int, help="context windows for the spliced evaluation [64]")
@click.option("--lm/--no-lm", default=True, help="splice the SAE into the model")
@click.option("--device", help="auto | cpu | cuda[:N]")
@click.option("--no-verify", is_flag=True, help="skip shard checksums")
def evaluate(json_path, no_verify, **o):
    """Reconstruction, sparsity and firing-frequency metrics, and the SAE's effect on the model."""
    import json

    from saeprobe.metrics.evaluate import EvaluateConfig, evaluate_sae
    from saeprobe.sae.config import build_config

    data = {k: v for k, v in o.items() if v is not None} | {"verify": not no_verify}
    report = evaluate_sae(build_config(EvaluateConfig, data, what="evaluate settings"), json_path)
    click.echo(json.dumps(report, indent=2))


@main.command()
@click.argument("config_path", metavar="CONFIG.yaml", type=_PATH)
@click.option("--out", required=True, type=_PATH, help="sweep directory (re-run to resume)")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
def sweep(config_path, out, progress):
    """Train and evaluate a grid of SAEs; write sweep.csv/json and the figures."""
    from saeprobe.sae.config import build_config
    from saeprobe.sweep.config import SweepConfig
    from saeprobe.sweep.runner import run_sweep
    from saeprobe.yaml_config import load_yaml_config

    data = load_yaml_config(config_path)
    if not data:
        raise ConfigError(f"config file {config_path} is empty; see configs/sweep-minilm.yaml")
    cfg = build_config(SweepConfig, data, what=f"sweep config {config_path}")
    rows = run_sweep(cfg, out, progress=progress)
    click.echo(f"{len(rows)} SAEs -> {out}/sweep.csv")


@main.command("build-dataset")
@click.argument("config_path", metavar="[CONFIG.yaml]", type=_PATH, required=False)
@click.option("--out", required=True, type=_PATH, help="dataset directory")
def build_dataset_cmd(config_path, out):
    """Build the harmful-intent probing dataset (offline default without CONFIG)."""
    from saeprobe.data.prompts.build import build_dataset
    from saeprobe.data.prompts.config import load_dataset_config

    summary = build_dataset(load_dataset_config(config_path), out)
    click.echo(summary.table)
    click.echo(f"{summary.n_rows} rows -> {summary.dataset_path}")


@main.command()
@click.argument("config_path", metavar="CONFIG.yaml", type=_PATH)
@click.option("--out", required=True, type=_PATH, help="results directory")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
def probe(config_path, out, progress):
    """Dense vs SAE probes for harmful intent, in distribution and OOD."""
    import json

    from saeprobe.probes.benchmark import load_probe_config, run_probe

    report = run_probe(load_probe_config(config_path), out, progress=progress)
    click.echo(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=2))


@main.command()
@click.option("--model", help="chat model: alias, local path or hub id [smollm2]")
@click.option("--prompts", help="prompt file (txt/jsonl/json/csv) [builtin-harmless]")
@click.option("--field", help="prompt field (jsonl/json) or column (csv)")
@click.option("--out", required=True, type=_PATH, help="JSONL file of chats to write")
@click.option("--max-new-tokens", type=int, help="response length limit in tokens [64]")
@click.option("--batch-size", type=int, help="prompts per generate call [8]")
@click.option("--skip", type=int, help="skip the first N prompts [0]")
@click.option("--limit", type=int, help="use only N prompts (after --skip)")
@click.option("--sample/--greedy", default=None, help="sample, or decode greedily [greedy]")
@click.option("--temperature", type=float, help="sampling temperature [1.0]")
@click.option("--top-p", type=float, help="nucleus sampling threshold [1.0]")
@click.option("--seed", type=int, help="sampling seed [0]")
@click.option("--resume", is_flag=True, help="continue an interrupted run into --out")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
@click.option("--device", help="auto | cpu | cuda[:N]")
def rollouts(resume, **o):
    """Generate a chat model's own responses to prompts, as chat data for chat SAEs."""
    from saeprobe.data.rollouts import RolloutsConfig, run_rollouts
    from saeprobe.sae.config import build_config

    o = {k: v for k, v in o.items() if v is not None}
    cfg = build_config(RolloutsConfig, o, what="rollouts settings")
    click.echo(run_rollouts(cfg, resume=resume).line())


@main.command("scan-layers")
@click.argument("config_path", metavar="CONFIG.yaml", type=_PATH)
@click.option("--layers", required=True, help="comma-separated layers, e.g. 6,9,12,15,18,21")
@click.option("--out", required=True, type=_PATH, help="results directory")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
def scan_layers_cmd(config_path, layers, out, progress):
    """Choose a probing layer: dense-probe CV on the train split only, per layer."""
    from saeprobe.probes.benchmark import load_probe_config
    from saeprobe.probes.layer_scan import scan_layers

    try:
        wanted = [int(v) for v in layers.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--layers {layers!r} must be integers separated by commas") from None
    report = scan_layers(load_probe_config(config_path), wanted, out, progress=progress)
    click.echo(f"best layer {report['best_layer']} ({report['ranked_by']}) -> {out}")


# --- interp ----------------------------------------------------------------------------------


def _given(o: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in o.items() if v is not None}


@main.command()
@click.option("--sae", required=True, type=_PATH, help="SAE directory")
@click.option("--acts", required=True, type=_PATH, help="activation store of the SAE's model")
@click.option("--out", required=True, type=_PATH, help="records directory to write")
@click.option("--layer", type=int, help="stored layer [the SAE's hook_layer]")
@click.option("--n-top", type=int, help="top-activating windows per part [20]")
@click.option("--n-quantiles", type=int, help="activation bands of quantile examples [5]")
@click.option("--n-per-quantile", type=int, help="examples per band and part [2]")
@click.option("--n-random", type=int, help="non-activating windows per part [20]")
@click.option("--before", type=int, help="tokens shown before the peak token [16]")
@click.option("--after", type=int, help="tokens shown after it [4]")
@click.option("--heldout-fraction", type=float, help="windows held out for scoring [0.5]")
@click.option("--max-tokens", type=int, help="read only the store's first N tokens")
@click.option("--batch-tokens", type=int, help="tokens encoded per block [2048]")
@click.option("--seed", type=int, help="sampling seed [0]")
@click.option("--device", help="auto | cpu | cuda[:N]")
@click.option("--no-verify", is_flag=True, help="skip shard checksums")
@click.option("--progress/--no-progress", default=True, help="show a progress bar")
def latents(no_verify, **o):
    """Record every latent's frequency, top / quantile / non-activating examples."""
    from saeprobe.interp.collect import LatentsConfig, collect_latents
    from saeprobe.sae.config import build_config

    data = _given(o) | {"verify": not no_verify}
    collect_latents(build_config(LatentsConfig, data, what="latents settings"), log=click.echo)


def _scorings(value: tuple[str, ...]) -> list[str] | None:
    names = [v.strip() for item in value for v in item.split(",") if v.strip()]
    return names or None


autointerp_options = _options(
    click.option("--explainer", help="baseline | hf:MODEL | openai:MODEL [hf:smollm2]"),
    click.option("--scorer", help="backend that scores the explanations [the explainer]"),
    click.option(
        "--scoring",
        multiple=True,
        help="simulation | detection | fuzzing; repeat or comma-separate [simulation]",
    ),
    click.option("--n-latents", type=int, help="latents to explain and score [50]"),
    click.option("--sample", type=click.Choice(["uniform", "frequency"]), help="[uniform]"),
    click.option("--seed", type=int, help="sampling seed [0]"),
    click.option(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 [$OPENAI_BASE_URL]",
    ),  # fmt: skip
    click.option("--api-key", help="key for that server [$OPENAI_API_KEY]; never written out"),
    click.option("--concurrency", type=int, help="requests in flight [4]"),
    click.option("--max-retries", type=int, help="retries per request [4]"),
    click.option("--timeout", type=float, help="seconds per request [60]"),
    click.option("--cache-dir", type=_PATH, help="LLM response cache [$SAEPROBE_CACHE/llm]"),
    click.option("--device", help="device of an hf: backend [cpu]"),
    click.option("--batch-size", type=int, help="prompts per forward pass of an hf: backend [8]"),
    click.option("--n-bootstrap", type=int, help="bootstrap resamples over latents [1000]"),
    click.option("--progress/--no-progress", default=True, help="show a progress bar"),
)


@main.command()
@click.option("--latents", "latents_dir", required=True, type=_PATH, help="records directory")
@click.option("--sae", type=_PATH, help="check that the records belong to this SAE")
@click.option("--out", required=True, type=_PATH, help="results directory (re-run to resume)")
@click.option("--config", "config_path", type=_PATH, help="YAML of settings; options override")
@autointerp_options
def autointerp(latents_dir, config_path, scoring, api_key, **o):
    """Explain latents with an LLM and score the explanations on held-out examples."""
    from saeprobe.interp.autointerp import AutointerpConfig, run_autointerp
    from saeprobe.sae.config import build_config
    from saeprobe.yaml_config import load_yaml_config

    settings = load_yaml_config(config_path)
    settings = settings.get("autointerp", settings)  # a sweep's settings file works too
    data = settings | _given(o) | {"latents": latents_dir}
    if _scorings(scoring):
        data["scoring"] = _scorings(scoring)
    cfg = build_config(AutointerpConfig, data, what="autointerp settings")
    report = run_autointerp(cfg, api_key=api_key, log=click.echo)
    click.echo(_autointerp_line(report))


def _autointerp_line(report: dict[str, Any]) -> str:
    def fmt(block: dict[str, Any], key: str) -> str:
        value = block.get(key)
        if value is None:
            return "n/a"
        return f"{value:.3f} [{block[key + '_ci_low']:.3f}, {block[key + '_ci_high']:.3f}]"

    parts = [
        f"{m}: uniform {fmt(b, 'uniform_mean')}, frequency-weighted "
        f"{fmt(b, 'frequency_weighted_mean')} (n={b['n']})"
        for m, b in report["scores"].items()
    ]
    return "; ".join(parts) + f" -> {report['config']['out']}/autointerp.json"


@main.command("autointerp-sweep")
@click.argument("sweep_dir", metavar="SWEEP_DIR", type=_PATH)
@click.option("--out", type=_PATH, help="results directory [SWEEP_DIR/autointerp/<explainer>]")
@click.option("--runs", help="comma-separated runs of the sweep [all]")
@click.option("--store", help="read every SAE on this store of the sweep [each phase's]")
@click.option("--max-tokens", type=int, help="tokens of the store read per SAE [all]")
@click.option(
    "--config", "config_path", type=_PATH, help="YAML with latents: and autointerp: settings"
)
@autointerp_options
def autointerp_sweep(
    sweep_dir, out, runs, store, max_tokens, config_path, scoring, api_key, progress, **o
):
    """Autointerp for every SAE of a sweep; score vs L0 and vs latent frequency figures."""
    from saeprobe.interp.sweep import SweepAutointerpConfig, run_autointerp_sweep
    from saeprobe.sae.config import build_config
    from saeprobe.yaml_config import load_yaml_config

    data = load_yaml_config(config_path)
    ai = dict(data.get("autointerp") or {}) | _given(o)
    if _scorings(scoring):
        ai["scoring"] = _scorings(scoring)
    data |= _given({"sweep_dir": sweep_dir, "out": out, "store": store, "max_tokens": max_tokens})
    data |= {"autointerp": ai, "progress": progress}
    if runs:
        data["runs"] = [r.strip() for r in runs.split(",") if r.strip()]
    cfg = build_config(SweepAutointerpConfig, data, what="autointerp-sweep settings")
    run_autointerp_sweep(cfg, api_key=api_key, log=click.echo)


@main.command("debug-dataset")
@click.option("--config", "config_path", required=True, type=_PATH, help="debug config YAML")
@click.option("--out", required=True, type=_PATH, help="findings directory")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
def debug_dataset(config_path, out, progress):
    """Find SAE latents that separate a dataset's classes and flag surface cues."""
    from saeprobe.interp.debug_dataset import load_debug_config, run_debug_dataset

    run_debug_dataset(load_debug_config(config_path), out, progress=progress, log=click.echo)


@main.command()
@click.option("--latents", "latents_dir", required=True, type=_PATH, help="records directory")
@click.option("--autointerp", "autointerp_path", type=_PATH, help="autointerp.json or its dir")
@click.option("--out", required=True, type=_PATH, help="HTML file to write")
@click.option("--max-latents", type=int, default=300, show_default=True, help="latents shown")
def dashboard(latents_dir, autointerp_path, out, max_latents):
    """Write one self-contained HTML page of an SAE's latents, with a search box."""
    from saeprobe.interp.dashboard import write_dashboard

    click.echo(f"-> {write_dashboard(latents_dir, out, autointerp_path, max_latents)}")


@main.command()
@click.argument("config_path", metavar="CONFIG.yaml", type=_PATH)
@click.option("--out", type=_PATH, help="study directory (re-run to resume) [runs/<config name>]")
@click.option("--from", "from_stage", help="re-run this stage and every later one")
@click.option("--dry-run", is_flag=True, help="print the plan, sizes and costs; load nothing")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
def run(config_path, out, from_stage, dry_run, progress):
    """The whole study from one YAML file: harvest to report.html."""
    from saeprobe.study.runner import run_from_config

    run_from_config(config_path, out, from_stage, dry_run, progress, log=click.echo)


@main.command()
@click.option("--out", type=_PATH, default="runs/quickstart", show_default=True)
@click.option("--from", "from_stage", help="re-run this stage and every later one")
@click.option("--progress/--no-progress", default=True, help="show progress bars")
def quickstart(out, from_stage, progress):
    """The whole study on the offline default (SmolLM2, CPU, minutes); prints the headline."""
    from saeprobe.study.runner import run_quickstart

    run_quickstart(out, from_stage, progress, log=click.echo)


if __name__ == "__main__":
    main()
