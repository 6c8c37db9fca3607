"""SAEs with known answers, shared by the evaluation tests."""

import torch

from saeprobe.sae.registry import create_sae


def identity_sae(d: int):
    """A ReLU SAE with W_enc = [I, -I], W_dec = [I; -I]: relu(x) - relu(-x) == x exactly."""
    sae = create_sae({"architecture": "relu", "d_in": d, "d_sae": 2 * d})
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def mean_only_sae(mean: torch.Tensor):
    """An SAE whose reconstruction is `mean` whatever the input (zeros: zero ablation)."""
    sae = create_sae({"architecture": "relu", "d_in": mean.shape[0], "d_sae": 8})
    with torch.no_grad():
        sae.W_dec.zero_()
        sae.b_dec.copy_(mean)
    return sae
