"""The store reader: random access, seeded step-addressable batches, corruption detected."""

import shutil

import numpy as np
import pytest
import torch

from saeprobe.activations.store import ActivationStore
from saeprobe.errors import DataError
from saeprobe.train.source import BatchSource


def test_random_access_matches_the_concatenated_shards(store):
    acts = ActivationStore(store)
    whole = acts.activations(slice(None), 3)
    assert whole.shape == (3000, 384)
    index = np.array([2999, 0, 511, 512, 1700, 0])
    torch.testing.assert_close(acts.activations(index, 3), whole[index], rtol=0, atol=0)
    assert not torch.equal(acts.activations(index, 1), whole[index])  # layer 1 differs
    with pytest.raises(IndexError):
        acts.activations([3000], 3)


@pytest.mark.parametrize("block", [1 << 20, 700])
def test_batches_are_seeded_addressable_and_cover_each_epoch_once(store, block):
    acts = ActivationStore(store)
    source = acts.source(batch_size=256, layer=3, seed=4, block_tokens=block)
    assert isinstance(source, BatchSource) and source.d_in == 384
    stream = source.batches(0)
    first = [next(stream) for _ in range(14)]
    torch.testing.assert_close(next(source.batches(12)), first[12], rtol=0, atol=0)
    epoch = np.concatenate([source.rows(i) for i in range(source.per_epoch)])
    assert len(epoch) == 11 * 256 and len(np.unique(epoch)) == len(epoch)
    assert not np.array_equal(epoch, np.sort(epoch))  # shuffled
    next_epoch = np.concatenate([source.rows(i) for i in range(11, 22)])
    assert not np.array_equal(epoch, next_epoch)
    other_seed = acts.source(batch_size=256, layer=3, seed=5, block_tokens=block)
    assert not np.array_equal(source.rows(0), other_seed.rows(0))
    assert source.normalization_scale == acts.manifest.normalization_scale["3"]


def _copy(store, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(store, dst)
    return dst


def test_corrupt_shard_fails_its_checksum(store, tmp_path):
    copy = _copy(store, tmp_path)
    shard = copy / "shards" / "r00-00002.L3.npy"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"r00-00002.L3.npy is corrupt \(sha256"):
        ActivationStore(copy)


def test_truncated_shard_is_caught_even_without_checksums(store, tmp_path):
    copy = _copy(store, tmp_path)
    shard = copy / "shards" / "r00-00001.L1.npy"
    shard.write_bytes(shard.read_bytes()[:5000])
    with pytest.raises(DataError, match="corrupt"):
        ActivationStore(copy)
    unverified = ActivationStore(copy, verify=False)
    with pytest.raises(DataError, match="truncated or not a .npy file"):
        unverified.activations(slice(None), 1)


def test_store_without_manifest_says_how_to_finish(store, tmp_path):
    copy = _copy(store, tmp_path)
    (copy / "manifest.json").unlink()
    with pytest.raises(DataError, match="did not finish; finish it with .* --resume"):
        ActivationStore(copy)
    with pytest.raises(DataError, match="not found; run saeprobe harvest"):
        ActivationStore(tmp_path / "nowhere")


def test_layer_and_batch_size_errors(store):
    acts = ActivationStore(store, verify=False)
    with pytest.raises(DataError, match=r"holds layers \[1, 3\]; choose one with --layer"):
        acts.source(256)
    with pytest.raises(DataError, match="not 2"):
        acts.activations([0], 2)
    with pytest.raises(DataError, match="fewer than batch_size=4096"):
        acts.source(4096, layer=3)


def test_a_token_range_restricts_batches_to_it(store):
    acts = ActivationStore(store, verify=False)
    source = acts.source(batch_size=200, layer=3, seed=0, block_tokens=300, rows=(1000, 3000))
    rows = np.concatenate([source.rows(i) for i in range(source.per_epoch)])
    assert source.per_epoch == 10 and rows.min() >= 1000 and rows.max() < 3000
    assert len(np.unique(rows)) == len(rows) == 2000
    with pytest.raises(DataError, match="not inside this store of 3000 tokens"):
        acts.source(batch_size=200, layer=3, rows=(2000, 3001))
