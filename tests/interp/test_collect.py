"""`saeprobe latents`: the streaming pass must agree with a brute-force computation over the
whole (tiny) store, keep explainer and held-out windows apart, and fail in one line on bad
input."""

import numpy as np
import pytest
import torch
from conftest import N_DEAD, make_sae

from saeprobe.activations.store import ActivationStore
from saeprobe.errors import DataError
from saeprobe.interp.collect import (
    LatentsConfig,
    collect_latents,
    heldout_windows,
    window_starts,
)
from saeprobe.interp.records import KINDS, PARTS, LatentRecords
from saeprobe.sae.io import load_sae, save_sae
from saeprobe.sae.registry import create_sae


def _brute(store_path, sae_path):
    store = ActivationStore(store_path)
    sae = load_sae(sae_path)
    with torch.no_grad():
        z = sae.encode(store.activations(slice(None), 1).float()).clamp_min(0).numpy()
    meta = store.tokens()
    key = meta["doc_id"].astype(np.int64) * (1 << 20) + meta["window"]
    window = np.concatenate([[0], np.cumsum(np.diff(key) != 0)])
    return store, z, meta, window


def _windows_of(records, part, kind, latent, window):
    rows = records.array(part, kind, "row")[latent]
    return [int(window[r]) for r in rows if r >= 0]


def test_records_match_brute_force(tiny_store, tiny_sae, tiny_records):
    store, z, meta, window = _brute(tiny_store, tiny_sae)
    rec = LatentRecords(tiny_records)
    n_windows = window.max() + 1
    starts = window_starts(store, store.n_tokens)
    assert len(starts) == n_windows
    held = heldout_windows(meta["doc_id"][starts], meta["window"][starts], 0.5, 0)
    # Frequencies, maxima and histograms over every token.
    np.testing.assert_allclose(rec.frequency, (z > 0).mean(0))
    np.testing.assert_allclose(rec.max_activation, z.max(0), rtol=1e-6)
    assert (rec.histogram.sum(1) == (z > 0).sum(0)).all()
    assert rec.meta["counts"] == {"live": 48 - N_DEAD, "dead": N_DEAD}
    win_max = np.zeros((n_windows, z.shape[1]))
    np.maximum.at(win_max, window, z)
    np.testing.assert_allclose(rec.window_frequency, (win_max > 0).mean(0))
    for latent in range(N_DEAD, 48):
        for p_index, part in enumerate(PARTS):
            in_part = np.flatnonzero((held == bool(p_index)) & (win_max[:, latent] > 0))
            best = in_part[np.argsort(-win_max[in_part, latent], kind="stable")][:6]
            got = _windows_of(rec, part, "top", latent, window)
            # Same windows in the same order, up to float rounding between block sizes.
            np.testing.assert_allclose(
                win_max[got, latent], win_max[best, latent], rtol=1e-5, atol=1e-7
            )
            for e in rec.examples(latent, part, "top"):
                rows = np.arange(e.row, e.row + len(e.tokens))
                assert len(set(window[rows])) == 1  # a span never leaves its window
                np.testing.assert_allclose(e.acts, z[rows, latent], rtol=2e-3, atol=1e-6)
                assert e.value == pytest.approx(win_max[window[e.row], latent], rel=1e-6)
                assert e.acts[e.peak] == pytest.approx(e.value, rel=2e-3)
                assert [rec.vocab[int(t)] for t in meta["token_id"][rows]] == e.tokens
            top = set(got)
            for e in rec.examples(latent, part, "quantile"):
                w = int(window[e.row])
                assert held[w] == bool(p_index) and w not in top and e.value > 0
            bands = [e.band for e in rec.examples(latent, part, "quantile")]
            assert bands == sorted(bands)
            for e in rec.examples(latent, part, "random"):
                assert win_max[window[e.row], latent] == 0


def test_explainer_and_heldout_windows_never_meet(tiny_store, tiny_sae, tiny_records):
    _, _, _, window = _brute(tiny_store, tiny_sae)
    rec = LatentRecords(tiny_records)
    seen = {p: set() for p in PARTS}
    for part in PARTS:
        for kind in KINDS:
            for latent in range(rec.d_sae):
                seen[part].update(_windows_of(rec, part, kind, latent, window))
    assert seen["explain"] and seen["heldout"]
    assert not seen["explain"] & seen["heldout"]


def test_result_does_not_depend_on_block_size(tiny_store, tiny_sae, tiny_records, tmp_path):
    small = tmp_path / "small-blocks"
    collect_latents(
        LatentsConfig(
            sae=tiny_sae,
            acts=tiny_store,
            out=small,
            n_top=6,
            n_random=6,
            batch_tokens=100,
            progress=False,
        ),  # fmt: skip
        log=lambda _: None,
    )
    a, b = LatentRecords(tiny_records), LatentRecords(small)
    np.testing.assert_array_equal(a.frequency, b.frequency)
    for part in PARTS:
        # The top values agree up to float rounding (the encoder's matmul is blocked
        # differently); near-ties may swap places, so compare values, not rows.
        np.testing.assert_allclose(
            a.array(part, "top", "value"), b.array(part, "top", "value"), rtol=1e-5, atol=1e-7
        )
        # Samples are keyed by a hash of (seed, window, latent), not by the blocks.
        for field in ("row", "length", "tokens"):
            np.testing.assert_array_equal(
                a.array(part, "random", field), b.array(part, "random", field)
            )


def test_heldout_split_is_seeded_and_balanced():
    doc, win = np.arange(4000) // 4, np.arange(4000) % 4
    a = heldout_windows(doc, win, 0.5, seed=0)
    assert 0.45 < a.mean() < 0.55
    assert (a == heldout_windows(doc, win, 0.5, seed=0)).all()
    assert (a != heldout_windows(doc, win, 0.5, seed=1)).any()


def test_sae_not_matching_the_store(tiny_store, tmp_path):
    wide = tmp_path / "wide"
    save_sae(create_sae({"architecture": "relu", "d_in": 64, "d_sae": 8}), wide)
    with pytest.raises(DataError, match="d_in=64.*width 32") as err:
        collect_latents(LatentsConfig(sae=wide, acts=tiny_store, out=tmp_path / "o"))
    assert "\n" not in str(err.value)
    other_layer = tmp_path / "layer2"
    save_sae(create_sae({"architecture": "relu", "d_in": 32, "d_sae": 8}), other_layer,
             metadata={"hook_layer": 2})  # fmt: skip
    with pytest.raises(DataError, match="trained on layer 2"):
        collect_latents(LatentsConfig(sae=other_layer, acts=tiny_store, out=tmp_path / "o"))


def test_no_live_latents(tiny_store, tmp_path):
    dead = make_sae(tmp_path / "dead", tiny_store, d_sae=8, dead=8)
    with pytest.raises(DataError, match="no live latents") as err:
        collect_latents(LatentsConfig(sae=dead, acts=tiny_store, out=tmp_path / "o"))
    assert "\n" not in str(err.value)
