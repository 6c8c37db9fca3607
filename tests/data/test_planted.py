import torch

from saeprobe.data.planted import PlantedConfig, PlantedDictionary, PlantedSource


def test_documented_firing_probabilities_and_unit_second_moment():
    d = PlantedDictionary(PlantedConfig())
    assert d.directions.shape == (512, 64)
    assert torch.allclose(d.directions.norm(dim=1), torch.ones(512), atol=1e-6)
    assert torch.allclose(d.probs[:8], torch.linspace(0.15, 0.30, 8))
    assert abs(float(d.probs[8]) - 0.002) < 1e-7 and abs(float(d.probs[-1]) - 0.0075) < 1e-7
    assert abs(d.expected_l0 - 3.90) < 0.01
    x = d.sample(100_000, torch.Generator().manual_seed(0))
    assert abs(float(x.pow(2).sum(1).mean()) - 1.0) < 0.02


def test_dense_regime_has_about_nine_active_features():
    assert abs(PlantedDictionary(PlantedConfig(density="dense")).expected_l0 - 9.33) < 0.01


def test_rare_range_overrides_the_preset():
    d = PlantedDictionary(PlantedConfig(rare_range=(0.0006, 0.015)))
    assert abs(float(d.probs[8]) - 0.0006) < 1e-7 and abs(d.expected_l0 - 4.06) < 0.01


def test_source_is_addressable_by_step():
    src = PlantedSource(PlantedDictionary(PlantedConfig(d=8, n_features=20)), 32, seed=3)
    it = src.batches(0)
    first = [next(it) for _ in range(4)]
    assert torch.equal(next(src.batches(2)), first[2])
    assert not torch.equal(first[0], first[1])
