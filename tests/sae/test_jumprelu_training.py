"""JumpReLU thresholds must actually train: the L0 penalty has to pull L0 down."""

import torch

from saeprobe.data.planted import PlantedConfig, PlantedDictionary, PlantedSource
from saeprobe.metrics import evaluate_on_tensor
from saeprobe.train import RunSpec, TrainConfig, Trainer


def _train(**sae_kw):
    d = PlantedDictionary(PlantedConfig(d=16, n_features=64, n_frequent=2))
    spec = RunSpec(
        name="j",
        sae={"architecture": "jumprelu", "d_in": 16, "d_sae": 64, "threshold_init": 0.01, **sae_kw},
    )
    cfg = TrainConfig(steps=300, lr=3e-3, lr_warmup_steps=10, progress=False, seed=0)
    result = Trainer(cfg, [spec]).fit(PlantedSource(d, 256))
    x = d.sample(4096, torch.Generator().manual_seed(9))
    sae = result.export("j")
    metrics, _ = evaluate_on_tensor(sae, x)
    return metrics["l0"], sae.threshold.detach()


def test_l0_penalty_lowers_l0_and_moves_thresholds():
    l0_free, theta_free = _train(sparsity_coefficient=0.0)
    l0_pen, theta_pen = _train(sparsity_coefficient=0.05)
    assert l0_pen < 0.5 * l0_free, (l0_pen, l0_free)
    # Thresholds start at 0.01: the penalty must have raised them well above that.
    assert float(theta_pen.median()) > 5 * 0.01
    assert float(theta_pen.median()) > float(theta_free.median())


def test_stronger_penalty_gives_lower_l0():
    l0_weak, _ = _train(sparsity_coefficient=0.005)
    l0_strong, _ = _train(sparsity_coefficient=0.05)
    assert l0_strong < l0_weak
