import pytest
import torch

ARCH_KW = {
    "relu": {},
    "gated": {},
    "jumprelu": {},
    "jumprelu_qf": {"sparsity_penalty": "quadratic-frequency", "frequency_scale": 0.1},
    "topk": {"k": 4},
    "batchtopk": {"k": 4},
}


def sae_config(variant: str, d_in: int = 16, d_sae: int = 64, **kw) -> dict:
    arch = "jumprelu" if variant == "jumprelu_qf" else variant
    return {"architecture": arch, "d_in": d_in, "d_sae": d_sae, **ARCH_KW[variant], **kw}


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture
def shared_data():
    """../shared/data beside the checkout; tests that need it skip cleanly when it is absent."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not available")
    return path
