"""Known-answer tests of the JumpReLU straight-through estimators."""

import torch

from saeprobe.sae import StepContext, create_sae
from saeprobe.sae.ste import jumprelu, step


def test_jumprelu_forward_and_pseudo_gradients():
    eps = 0.1
    theta = torch.tensor([0.5, 0.5, 0.5, 0.5], requires_grad=True)
    # rows: far below, inside kernel below, inside kernel above, far above theta
    z = torch.tensor([[0.1, 0.47, 0.53, 0.9]], requires_grad=True)
    out = jumprelu(z, theta, eps)
    assert torch.equal(out.detach(), torch.tensor([[0.0, 0.0, 0.53, 0.9]]))
    out.sum().backward()
    # d/dz = H(z - theta); d/dtheta = -(theta/eps) * K((z - theta)/eps)
    assert torch.equal(z.grad, torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    assert torch.allclose(theta.grad, torch.tensor([0.0, -5.0, -5.0, 0.0]))


def test_step_gives_gradient_to_threshold_only():
    eps = 0.1
    theta = torch.tensor([0.5, 0.5], requires_grad=True)
    z = torch.tensor([[0.52, 0.9], [0.48, 0.2]], requires_grad=True)
    h = step(z, theta, eps)
    assert torch.equal(h.detach(), torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    h.sum().backward()
    assert z.grad is None or torch.count_nonzero(z.grad) == 0
    # two rows inside the kernel for latent 0, none for latent 1: -(1/eps) * 2
    assert torch.allclose(theta.grad, torch.tensor([-20.0, 0.0]))


def _threshold_grad(cfg_extra, z):
    sae = create_sae(
        {
            "architecture": "jumprelu",
            "d_in": 2,
            "d_sae": 3,
            "threshold_init": 0.5,
            "bandwidth": 0.1,
            "sparsity_coefficient": 1.0,
            "apply_b_dec_to_input": False,
            **cfg_extra,
        },
        seed=0,
    )
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.W_dec.zero_()
    sae.pre_activation = lambda x: z  # isolate the sparsity term from the encoder
    sae.sparse_training = False  # the dense step is the one that reads pre_activation
    out = sae.training_step(torch.zeros(z.shape[0], 2), StepContext(1.0))
    out.loss.backward()
    return sae.threshold.grad, out


def test_quadratic_frequency_gradient_is_frequency_weighted_l0_gradient():
    z = torch.tensor([[0.52, 0.52, 0.1], [0.52, 0.1, 0.1], [0.52, 0.1, 0.1], [0.1, 0.1, 0.1]])
    g_l0, _ = _threshold_grad({}, z)
    w0 = 0.1
    g_qf, out = _threshold_grad(
        {"sparsity_penalty": "quadratic-frequency", "frequency_scale": w0}, z
    )
    omega = torch.tensor([0.75, 0.25, 0.0])
    assert torch.allclose(g_qf, g_l0 * (1 + 2 * omega / w0))
    # lambda * sum_i omega_i (1 + omega_i / w0)
    assert torch.isclose(out.terms["sparsity"], (omega * (1 + omega / w0)).sum())
