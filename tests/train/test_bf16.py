"""bf16 autocast training follows the fp32 loss curve on real activations (MiniLM layer 3), and
JumpReLU thresholds and their updates stay float32."""

import json

import numpy as np
import pytest
import torch

from saeprobe.activations.store import ActivationStore
from saeprobe.train import RunSpec, TrainConfig, Trainer

SAE = {
    "topk": {"architecture": "topk", "k": 16},
    "jumprelu": {"architecture": "jumprelu", "threshold_init": 0.01, "bandwidth": 0.01},
}


def _train(store, tmp_path, arch, bf16):
    source = ActivationStore(store, verify=False).source(256, layer=3, seed=0)
    metrics = tmp_path / f"{arch}-{bf16}.jsonl"
    cfg = TrainConfig(
        steps=30,
        lr=2e-3,
        lr_warmup_steps=3,
        autocast_bf16=bf16,
        device="cpu",
        progress=False,
        log_every=3,
        metrics_path=metrics,
    )
    spec = RunSpec(name=arch, sae={"d_in": 384, "d_sae": 1536, **SAE[arch]})
    result = Trainer(cfg, [spec]).fit(source)
    lines = metrics.read_text().splitlines()
    return result.saes[arch], np.array([json.loads(line)["fvu"] for line in lines])


@pytest.mark.parametrize("arch", ["topk", "jumprelu"])
def test_bf16_loss_curve_follows_fp32(store, tmp_path, arch):
    sae32, fvu32 = _train(store, tmp_path, arch, bf16=False)
    sae16, fvu16 = _train(store, tmp_path, arch, bf16=True)
    assert fvu32[-1] < 0.8 * fvu32[0]  # it trained
    assert np.abs(fvu16 / fvu32 - 1).max() < 0.05, (fvu32, fvu16)
    for p in sae16.parameters():
        assert p.dtype == torch.float32  # master weights stay fp32 under autocast
    if arch == "jumprelu":
        moved32 = sae32.threshold.detach() - 0.01
        moved16 = sae16.threshold.detach() - 0.01
        assert moved16.abs().mean() > 0.1 * moved32.abs().mean() > 0  # bf16 did not freeze them
        assert torch.corrcoef(torch.stack([moved32, moved16]))[0, 1] > 0.9
