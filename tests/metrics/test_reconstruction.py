import pytest
import torch

from saeprobe.metrics import ReconstructionAccumulator, evaluate_on_tensor, summarize_frequencies
from saeprobe.sae import create_sae


class _Fixed(torch.nn.Module):
    """An 'SAE' whose reconstruction is a given function, for known-answer tests."""

    def __init__(self, d, recon, latents):
        super().__init__()
        self.d_in, self.d_sae = d, latents.shape[-1] if latents is not None else 1
        self._recon, self._latents = recon, latents
        self.p = torch.nn.Parameter(torch.zeros(1))

    def check_input(self, x):
        pass

    def encode(self, x):
        return self._latents[: x.shape[0]] if self._latents is not None else x

    def decode(self, f):
        return self._recon(f)


def test_identity_reconstruction_has_zero_fvu():
    x = torch.randn(100, 5)
    m, _ = evaluate_on_tensor(_Fixed(5, lambda f: f, None), x, batch_size=7)
    assert m["fvu"] == pytest.approx(0.0, abs=1e-12)
    assert m["nmse"] == pytest.approx(0.0, abs=1e-12)
    assert m["cosine"] == pytest.approx(1.0)


def test_predicting_the_mean_has_fvu_one():
    x = torch.randn(64, 3) + 5.0
    mean = x.double().mean(0).float()
    m, _ = evaluate_on_tensor(
        _Fixed(3, lambda f: mean.expand(f.shape[0], 3), None), x, batch_size=10
    )
    assert m["fvu"] == pytest.approx(1.0, abs=1e-5)


def test_zero_sae_on_centred_data_has_fvu_one():
    x = torch.randn(200, 4)
    x = x - x.mean(0)
    sae = create_sae({"architecture": "relu", "d_in": 4, "d_sae": 8}, seed=0)
    with torch.no_grad():
        for p in sae.parameters():
            p.zero_()
    m, freq = evaluate_on_tensor(sae, x)
    assert m["fvu"] == pytest.approx(1.0, abs=1e-6)
    assert m["l0"] == 0 and m["dead_fraction"] == 1.0 and float(freq.sum()) == 0


def test_hand_computed_case():
    # x = [[1,0],[3,0]] mean [2,0]; total variance = 1 + 1 = 2
    # x_hat = [[1,1],[3,0]] squared error = 1  -> FVU = 0.5; NMSE = 1 / 10
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    x_hat = torch.tensor([[1.0, 1.0], [3.0, 0.0]])
    latents = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 5.0]])
    acc = ReconstructionAccumulator(3)
    acc.update(x[:1], x_hat[:1], latents[:1])  # accumulate over two batches
    acc.update(x[1:], x_hat[1:], latents[1:])
    r = acc.result()
    assert r["fvu"] == pytest.approx(0.5)
    assert r["nmse"] == pytest.approx(0.1)
    assert r["l0"] == pytest.approx(1.5)
    assert acc.frequencies().tolist() == [0.5, 0.0, 1.0]
    assert r["n_high_frequency"] == 2 and r["dead_fraction"] == pytest.approx(1 / 3)


def test_fvu_is_not_a_mean_of_batch_ratios():
    # Two batches with very different variance: the pooled FVU differs from the per-batch mean.
    x = torch.tensor([[0.0], [2.0], [10.0], [30.0]])
    m, _ = evaluate_on_tensor(_Fixed(1, lambda f: f + 1.0, None), x, batch_size=2)
    total_var = float(((x - x.mean()) ** 2).sum())
    assert m["fvu"] == pytest.approx(4.0 / total_var)


def test_high_frequency_threshold_is_inclusive():
    s = summarize_frequencies(torch.tensor([0.1, 0.0999, 0.5, 0.0]))
    assert (s.n_high_frequency, s.n_dead) == (2, 1)


def test_empty_evaluation_set_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ReconstructionAccumulator(3).result()
