import csv
import json

import numpy as np
import pytest

from saeprobe.errors import ConfigError, DataError
from saeprobe.probes import PROBE_TYPES, ProbeData, run_probe_suite, write_results
from saeprobe.probes.plots import (
    plot_auroc_vs_k,
    plot_reconstruction_delta_table,
    reconstruction_delta_markdown,
)
from saeprobe.probes.suite import RESULT_COLUMNS
from saeprobe.probes.synthetic import make_synthetic

KS = (1, 2, 4)


@pytest.fixture(scope="module")
def suite():
    data, saes = make_synthetic(160, 60, 60, d_model=8, d_sae=64, sae_names=("sae_a", "sae_b"))
    return data, saes, run_probe_suite(data, saes, ks=KS, n_bootstrap=100)


def test_records_cover_every_probe_split_and_k(suite):
    data, _, res = suite
    assert {r["probe"] for r in res.results} == set(PROBE_TYPES)
    assert {r["split"] for r in res.results} == {"train", "val", "ood"}
    for r in res.results:
        assert set(RESULT_COLUMNS) <= set(r)
        assert r["auroc_ci_low"] <= r["auroc"] <= r["auroc_ci_high"]
        assert r["n"] == len(data.y[r["split"]]) and r["n_pos"] == int(np.sum(data.y[r["split"]]))
        if r["probe"] in ("dense", "diff_of_means"):
            assert r["sae"] is None and r["k"] is None
        elif r["probe"] == "reconstruction":
            assert r["sae"] in ("sae_a", "sae_b") and r["k"] is None
        elif r["probe"] == "one_sparse":
            assert r["k"] == 1
        else:
            assert r["k"] in KS
    # 2 unkeyed probes + per SAE (one_sparse + 3 selections x 3 ks + reconstruction + 3 random).
    assert len(res.results) == 3 * (2 + 2 * (1 + 9 + 1 + 3))


def test_planted_signal_is_found(suite):
    _, _, res = suite
    one = res.find(probe="one_sparse", sae="sae_a")
    info = next(p for p in res.probe_info if p["probe"] == "one_sparse" and p["sae"] == "sae_a")
    assert info["latents"] == [0] and info["sign"] == 1  # latent 0 is the strongest planted one
    assert min(r["auroc"] for r in one) > 0.7
    k4 = res.find(probe="k_sparse", sae="sae_a", k=4, selection="mean_diff", split="val")[0]
    rand = res.find(probe="random_latents", sae="sae_a", k=4, split="val")[0]
    assert k4["auroc"] > rand["auroc"] + 0.2


def test_selected_latents_recorded(suite):
    _, _, res = suite
    for p in res.probe_info:
        if p["probe"] in ("k_sparse", "random_latents"):
            assert len(p["latents"]) == p["k"] == len(set(p["latents"]))
        if p["selection"] == "l1":
            assert {"l1_c", "l1_n_nonzero", "l1_n_padded"} <= set(p)


def test_ood_breakdown_convention(suite):
    data, _, res = suite
    y = np.asarray(data.y["ood"])
    rows = [r for r in res.ood_breakdown if r["probe"] == "dense"]
    transforms = np.asarray(data.transform["ood"])
    for r in rows:
        meta = np.asarray(data.source["ood"] if r["group_type"] == "source" else transforms)
        in_group = meta == r["group"]
        n_pos_group = int(y[in_group].sum())
        if r["reference"] == "group":
            assert 0 < n_pos_group < in_group.sum()
            assert (r["n"], r["n_pos"]) == (in_group.sum(), n_pos_group)
        elif r["reference"] == "split_negatives":  # positive-only group vs all OOD negatives
            assert n_pos_group == in_group.sum()
            assert (r["n"], r["n_pos"]) == (n_pos_group + int((y == 0).sum()), n_pos_group)
        else:  # negative-only group vs all OOD positives
            assert r["reference"] == "split_positives" and n_pos_group == 0
            assert (r["n"], r["n_pos"]) == (in_group.sum() + int(y.sum()), int(y.sum()))
    # The synthetic OOD set has an all-negative transform (all_caps) and source (or_bench).
    assert {r["reference"] for r in rows} >= {"group", "split_positives"}


def test_reconstruction_delta(suite):
    _, _, res = suite
    assert len(res.reconstruction_delta) == 2 * 3
    for d in res.reconstruction_delta:
        dense = res.find(probe="dense", split=d["split"])[0]["auroc"]
        recon = res.find(probe="reconstruction", sae=d["sae"], split=d["split"])[0]["auroc"]
        assert d["delta"] == pytest.approx(dense - recon)
        assert d["delta_ci_low"] <= d["delta"] <= d["delta_ci_high"]
    table = reconstruction_delta_markdown(res)
    assert table.splitlines()[0] == "| SAE | Train | Val | OOD |"
    assert table.count("| sae_") == 2


def test_write_results_and_json_roundtrip(suite, tmp_path):
    _, _, res = suite
    paths = write_results(res, tmp_path / "out")
    loaded = json.loads(paths["json"].read_text())
    assert len(loaded["results"]) == len(res.results)
    assert loaded["config"]["ks"] == list(KS)
    assert loaded["timings"]["total"] > 0
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == RESULT_COLUMNS and len(rows) == len(res.results)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths.values()
    )  # no temporary files left over


def test_plots(suite, tmp_path):
    _, _, res = suite
    png = plot_auroc_vs_k(res, tmp_path / "auroc_vs_k.png", title="synthetic")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in plot_auroc_vs_k(res.results, tmp_path / "a.svg", splits=["ood"]).read_bytes()
    table = plot_reconstruction_delta_table(res, tmp_path / "delta.png")
    assert table.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(DataError, match=r"\.png or \.svg"):
        plot_auroc_vs_k(res, tmp_path / "a.jpg")


def test_seeds_change_random_latents_and_bootstrap():
    data, saes = make_synthetic(120, 40, 40, d_model=8, d_sae=48, seed=2)
    res = run_probe_suite(data, saes, ks=(3,), selections=(), seeds=(0, 1), n_bootstrap=50)
    draws = {p["seed"]: p["latents"] for p in res.probe_info if p["probe"] == "random_latents"}
    assert draws[0] != draws[1]
    ci = {r["seed"]: r["auroc_ci_low"] for r in res.find(probe="dense", split="val")}
    assert ci[0] != ci[1]
    again = run_probe_suite(data, saes, ks=(3,), selections=(), seeds=(0, 1), n_bootstrap=50)
    assert again.results == res.results


def test_one_class_split_raises_before_fitting():
    data, saes = make_synthetic(80, 40, 40, d_model=4, d_sae=16)
    y = dict(data.y)
    y["val"] = np.zeros_like(y["val"])
    bad = ProbeData(
        X=data.X, y=y, source=data.source, transform=data.transform, base_id=data.base_id
    )
    with pytest.raises(DataError, match=r"split 'val' has only negative.*add positive examples"):
        run_probe_suite(bad, saes, ks=(1,), n_bootstrap=10)


def test_k_above_firing_latents_raises_before_fitting():
    data, saes = make_synthetic(80, 40, 40, d_model=4, d_sae=16)
    with pytest.raises(DataError, match=r"k=17 exceeds the 16 latents of SAE 'sae_a'"):
        run_probe_suite(data, saes, ks=(1, 17), n_bootstrap=10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ks": (0,)}, "positive integer"),
        ({"selections": ("best_on_val",)}, "unknown selection"),
        ({"seeds": ()}, "seeds"),
        ({"n_bootstrap": 0}, "n_bootstrap"),
    ],
)
def test_bad_settings_raise_config_error(kwargs, match):
    data, saes = make_synthetic(80, 40, 40, d_model=4, d_sae=16)
    with pytest.raises(ConfigError, match=match):
        run_probe_suite(data, saes, **{"ks": (1,), **kwargs})


def test_missing_metadata_and_shape_mismatch():
    data, saes = make_synthetic(80, 40, 40, d_model=4, d_sae=16)
    no_groups = ProbeData(X=data.X, y=data.y, source=data.source, transform=data.transform)
    with pytest.raises(DataError, match=r"base_id has no 'train' split"):
        run_probe_suite(no_groups, saes, ks=(1,))
    short = {"sae_a": {"Z": {s: z[:-1] for s, z in saes["sae_a"].Z.items()}, "R": saes["sae_a"].R}}
    with pytest.raises(DataError, match="same prompts"):
        run_probe_suite(data, short, ks=(1,))
