import pytest
import torch

from saeprobe.metrics import feature_recovery


def test_known_recovery():
    planted = torch.eye(3)
    # recovers e0 exactly, e1 at cos 0.8 (below 0.9), e2 with a flipped sign (cos -1: not recovered)
    decoder = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.8, 0.6], [0.0, 0.0, -1.0]])
    r = feature_recovery(planted, decoder)
    assert r["recovered_fraction"] == pytest.approx(1 / 3)
    assert r["mean_max_cosine"] == pytest.approx((1.0 + 0.8 + 0.6) / 3)


def test_width_mismatch():
    with pytest.raises(ValueError, match="width"):
        feature_recovery(torch.eye(3), torch.eye(4))
