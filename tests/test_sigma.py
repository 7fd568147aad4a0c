"""Per-sample σ ascent: both variants, reproducibility, the objective increases."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from certsmooth.errors import ConfigError
from certsmooth.smoothing.sigma import SigmaConfig, optimize_sigma, radius_objective


class Constant(torch.nn.Module):
    """A model with the same logit for every input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def test_released_code_update_matches_the_hand_computed_step():
    x = torch.zeros(3, 1, 4, 4)
    sigma0 = torch.tensor([0.12, 0.25, 1.0])
    cfg = SigmaConfig(variant="released-code", steps=7, lr=1e-4)
    for logit, q in ((0.4, 1 / (1 + np.exp(-0.4))), (10.0, 0.98), (-10.0, 0.02)):
        out = optimize_sigma(Constant([logit]), x, sigma0, cfg, seed=0)
        step = 1e-4 * abs(norm.ppf(q))
        np.testing.assert_allclose(out.numpy(), sigma0.numpy() + 7 * step, rtol=1e-5)
    assert 1e-4 * norm.ppf(0.98) == pytest.approx(2.0537e-4, rel=1e-4)  # the released Cert-SSB code's maximal step


def test_released_code_sigma_only_grows():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    x = torch.rand(20, 1, 4, 4)
    sigma0 = torch.full((20,), 0.5)
    out = optimize_sigma(model, x, sigma0, SigmaConfig(variant="released-code", steps=20, lr=1e-4), seed=1)
    assert torch.all(out >= sigma0)


def linear_model():
    """Class 1 iff w·x + b > 0, a steep sigmoid: the smoothed classifier is near Φ(margin/σ‖w‖)."""
    torch.manual_seed(3)
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[8.0, 0.0]]))
        lin.bias.zero_()
    return lin


def test_paper_ascent_increases_the_objective():
    model = linear_model()
    x = torch.tensor([[0.5, 0.0], [1.0, 0.3], [-0.8, 0.1], [0.3, -0.2]])
    sigma0 = torch.full((4,), 0.1)
    cfg = SigmaConfig(variant="paper", steps=60, lr=0.05, mc_samples=16, sigma_min=0.05, sigma_max=3.0)
    out = optimize_sigma(model, x, sigma0, cfg, seed=7)
    z = torch.randn((4000, *x.shape), generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        before = radius_objective(model, x, sigma0, z, 1e-4)
        after = radius_objective(model, x, out, z, 1e-4)
    assert torch.all(after > before + 0.05), (before, after)
    assert torch.all((out >= 0.05) & (out <= 3.0))


def test_sigma_reproducible_from_the_seed():
    model = linear_model()
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    cfg = SigmaConfig(variant="paper", steps=10, lr=0.05, mc_samples=4)
    a = optimize_sigma(model, x, torch.full((8,), 0.3), cfg, seed=11)
    b = optimize_sigma(model, x, torch.full((8,), 0.3), cfg, seed=11)
    c = optimize_sigma(model, x, torch.full((8,), 0.3), cfg, seed=12)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_config_checks():
    with pytest.raises(ConfigError, match="variant"):
        SigmaConfig(variant="ddrs")
    with pytest.raises(ConfigError, match="bounds"):
        SigmaConfig(sigma_min=1.0, sigma_max=0.5)
