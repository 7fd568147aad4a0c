"""Cert-SSB wiring: batched ascent, the ensemble score, training-/test-sample σ, settings."""

import numpy as np
import pytest
import torch

from certsmooth.artifacts import load_sigma
from certsmooth.models import WideEnsemble, build_model, probabilities
from certsmooth.smoothing import certssb
from certsmooth.smoothing.sigma import MeanProbability, SigmaConfig, optimize_sigma, optimize_sigma_batched

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(1)
    y = np.arange(40) % 2
    x = 0.3 * rng.random((40, 1, 28, 28), dtype=np.float32)
    x[y == 1, :, 8:20, 8:20] += 0.6
    return x, y


ENS = {"arch": "mnist_cnn", "epochs": 1, "batch_size": 20, "lr": 1e-3, "lane_width": 2, "bf16": False}
OPT = {"steps": 2, "test_steps": 2, "mc_samples": 2, "pilot_models": 2, "test_models": 2, "sigma_max": 1.0}


def wide(n, seed=0):
    return WideEnsemble([build_model("mnist_cnn", (1, 28, 28), 2, seed=seed + i) for i in range(n)]).eval()


def test_mean_probability_is_the_ensemble_mean():
    lanes_ = [wide(2, 0), wide(3, 10)]
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        out = MeanProbability(lanes_)(x)
        want = torch.cat([probabilities(lane(x[None].expand(lane.k, *x.shape))) for lane in lanes_]).mean(0)
    torch.testing.assert_close(torch.softmax(out, -1), want)
    assert not any(p.requires_grad for p in MeanProbability(lanes_).parameters())


@pytest.mark.parametrize("variant", ["paper", "released-code"])
def test_batched_ascent_does_not_depend_on_the_batch_size(variant):
    scorer = MeanProbability([wide(2)])
    x = np.random.default_rng(0).random((7, 1, 28, 28), dtype=np.float32)
    cfg = SigmaConfig(variant=variant, steps=3, lr=0.05 if variant == "paper" else 1e-4, mc_samples=2)
    a = optimize_sigma_batched(scorer, x, 0.5, cfg, seed=4, device=CPU, batch_size=7)
    b = optimize_sigma_batched(scorer, x, 0.5, cfg, seed=4, device=CPU, batch_size=3)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    # a point's σ is that of the single-point problem with its own row index
    one = optimize_sigma(scorer, torch.from_numpy(x[5:6]), torch.tensor([0.5]), cfg, 4, torch.tensor([5]))
    np.testing.assert_allclose(a[5], one.numpy()[0], rtol=1e-6)


def test_training_sigma_reproducible_from_the_seed(toy):
    x, y = toy
    s1, states, info = certssb.train_sigmas(x, y, 2, ENS, OPT, 0.5, seed=3, device=CPU)
    s2, _, _ = certssb.train_sigmas(x, y, 2, ENS, OPT, 0.5, seed=3, device=CPU)
    s3, _, _ = certssb.train_sigmas(x, y, 2, ENS, OPT, 0.5, seed=4, device=CPU)
    assert s1.shape == (40,) and s1.dtype == np.float32
    assert np.array_equal(s1, s2) and not np.array_equal(s1, s3)
    assert np.all((s1 >= 0.05) & (s1 <= 1.0)) and not np.allclose(s1, 0.5)  # moved, inside the bounds
    assert sorted(states) == [0, 1] and info["pilot"]["train"]["sigma"] == 0.5
    assert info["ascent"] == {"variant": "paper", "steps": 2, "lr": 0.01, "mc_samples": 2, "sigma_min": 0.05,
                              "sigma_max": 1.0}  # fmt: skip


def test_released_code_training_sigma_only_grows(toy):
    x, y = toy
    opt = {**OPT, "variant": "released-code", "steps": 5}
    s, _, info = certssb.train_sigmas(x, y, 2, ENS, opt, 0.5, seed=3, device=CPU)
    assert info["ascent"]["lr"] == 1e-4  # the public code's lr_sig
    assert np.all(s >= 0.5) and np.all(s <= 0.5 + 5 * 2.0537e-4 + 1e-6)


def test_test_sigma_is_scored_by_models_the_bound_does_not_use(toy):
    """σ_x comes from a test-scoring ensemble of its own: reproducible from the seed, trained
    as the M models (same settings, same σ vector), with no seed in common with them, and the
    certification step refuses σ_x whose scorer shares a seed with the certified models."""
    from certsmooth.errors import CorruptFileError
    from certsmooth.smoothing.train import model_seeds
    from certsmooth.steps.certify import check_scorer_independent

    x, y = toy
    sig = np.full(len(y), 0.5, dtype=np.float32)
    sets = {"clean": x[:6], "triggered": np.clip(x[:6] + 0.2, 0, 1)}
    out, info = certssb.test_sigmas(x, y, 2, ENS, sig, sets, OPT, 0.5, seed=0, device=CPU)
    assert set(out) == {"clean", "triggered"} and info["scorer"]["models"] == 2
    assert info["scorer"]["train"]["sigma"] == 0.5 and info["scorer"]["train"]["epochs"] == ENS["epochs"]
    again, _ = certssb.test_sigmas(x, y, 2, ENS, sig, sets, OPT, 0.5, seed=0, device=CPU)
    assert all(np.array_equal(out[k], again[k]) for k in out)
    ensemble = [{"model": m, **model_seeds(0, m)} for m in range(50)]  # the M models of seed 0
    scorer_seeds = {p["init"] for p in info["scorer"]["per_model"]}
    assert not scorer_seeds & {p["init"] for p in ensemble}
    rec = check_scorer_independent(info, ensemble, "test_sigma.json")
    assert rec["disjoint"] and "2 models" in rec["tuned_by"] and "50 certified" in rec["estimated_by"]
    shared = {**info, "scorer": {**info["scorer"], "per_model": ensemble[:2]}}  # scored by models 0 and 1
    with pytest.raises(CorruptFileError, match="shares seeds with the certified models"):
        check_scorer_independent(shared, ensemble, "test_sigma.json")
    with pytest.raises(CorruptFileError, match="without a test-scoring ensemble"):
        check_scorer_independent({"stage": "test", "models_used": [0, 1]}, ensemble, "test_sigma.json")


def test_sigma_files_are_checked(tmp_path):
    from certsmooth.artifacts import save_npz
    from certsmooth.errors import CorruptFileError

    save_npz(tmp_path / "s.npz", train=np.full(5, 0.5, dtype=np.float32))
    assert load_sigma(tmp_path / "s.npz", "train", 5).shape == (5,)
    with pytest.raises(CorruptFileError, match="holds 5 noise scales .* but the data has 6 points"):
        load_sigma(tmp_path / "s.npz", "train", 6)
    save_npz(tmp_path / "z.npz", train=np.zeros(5, dtype=np.float32))
    with pytest.raises(CorruptFileError, match="all positive: False"):
        load_sigma(tmp_path / "z.npz", "train", 5)
