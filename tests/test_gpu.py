"""The CUDA path against the CPU (marker ``gpu``; skipped where no GPU is visible).

``bench/gpu.sh`` runs these on a GPU machine and collects what each test measured (the
``figures`` fixture appends them to ``$CERTSMOOTH_GPU_FIGURES`` as JSON lines, failing
tests included). ``CERTSMOOTH_GPU_TEST_DEVICE`` names the device under test (default
``cuda``); ``bench/gpu.sh --device cpu`` sets it to ``cpu``, so that on a machine without a
GPU the same tests run CPU against CPU and the check keeps working.

Tolerances (fp32 with TF32 off, see :mod:`certsmooth.device`): the GPU computes the same
functions with other kernels (summation orders, transcendental functions within a few
ulp), so results agree to rounding, not bit for bit. Where rounding can flip a discrete
outcome (a prediction on the decision boundary, a count), the bound is on how often.
"""

from __future__ import annotations

import copy
import json
import os
import warnings

import numpy as np
import pytest
import torch

from certsmooth.device import resolve_device

DEVICE = os.environ.get("CERTSMOOTH_GPU_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE.startswith("cuda") and not torch.cuda.is_available(),
        reason="no CUDA device (bench/gpu.sh --device cpu runs these tests CPU against CPU)",
    ),
]

NOISE_ATOL = 1e-5  # counter-based normals, |z| <= 6.8: log/cos/sin within a few ulp
FORWARD_RTOL = 1e-4  # max |logit difference| / max |logit|
GRAD_RTOL = 1e-4  # per parameter tensor: ‖g_dev − g_cpu‖ / ‖g_cpu‖
STEP_FLIP_FRACTION = 1e-3  # Adam's first step is ±lr·sign(g): entries with g ≈ 0 may differ
TRAINED_AGREEMENT = 0.99  # test predictions of models trained on the device vs on the CPU
BF16_AGREEMENT = 0.97  # bf16-autocast models vs fp32 models, test predictions
PROB_ATOL = 1e-4  # ensemble class probabilities
COUNT_FRACTION = 1e-3  # Cohen: Σ|Δ count| / Σ n over all points


@pytest.fixture(scope="module")
def dev():
    return resolve_device(DEVICE)


@pytest.fixture
def figures(request):
    """What the test measured; appended to $CERTSMOOTH_GPU_FIGURES (JSON lines) if set."""
    figs: dict = {}
    yield figs
    path = os.environ.get("CERTSMOOTH_GPU_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": request.node.name, "device": DEVICE, "figures": figs}, default=float) + "\n")


@pytest.fixture(scope="module")
def digits():
    """The embedded mnist5k 0-vs-1 task (800 training, 200 test images)."""
    from certsmooth.data.prepared import prepare

    parts = prepare("mnist5k", [0, 1], {"test_fraction": 0.2, "seed": 0}, "unused")
    return parts["train"].floats(), parts["train"].y, parts["test"].floats(), parts["test"].y


def _cfg(**kw):
    from certsmooth.smoothing.train import TrainConfig

    base = dict(arch="mnist_cnn", sigma=0.5, epochs=2, batch_size=128, lr=1e-3, lane_width=2)
    return TrainConfig(**{**base, **kw})


def _predict(states: dict, x: np.ndarray) -> np.ndarray:
    """Noise-free predictions (M, T) of trained models, on the CPU."""
    from certsmooth.models import wide_lane

    net = wide_lane(states, sorted(states), "mnist_cnn", x.shape[1:], 2, "cpu")
    with torch.no_grad():
        logits = net(torch.from_numpy(x)[None].expand(len(states), *x.shape))
    return (logits[..., 0] > 0).numpy()


@pytest.fixture(scope="module")
def cpu_models(digits):
    """4 models trained on the CPU (the reference of the device's training)."""
    from certsmooth.smoothing.train import train_partition

    x, y, _, _ = digits
    return train_partition(x, y, [[0, 1], [2, 3]], 0, _cfg(), 2, "cpu")


def test_counter_noise_same_on_device(dev, figures):
    from certsmooth.noise import row_hashes, standard_normal
    from certsmooth.seeding import derive_seed

    keys = torch.tensor([derive_seed(0, "model", i, "train-noise") for i in range(4)], dtype=torch.int64)
    rows = torch.stack([torch.randperm(5000, generator=torch.Generator().manual_seed(i))[:256] for i in range(4)])
    h_cpu, h_dev = row_hashes(keys, rows), row_hashes(keys.to(dev), rows.to(dev)).cpu()
    z_cpu, z_dev = standard_normal(keys, rows, 784), standard_normal(keys.to(dev), rows.to(dev), 784).cpu()
    diff = (z_cpu - z_dev).abs()
    figures.update(hashes_equal=bool(torch.equal(h_cpu, h_dev)), max_abs_diff=float(diff.max()),
                   fraction_bitwise_equal=float((diff == 0).float().mean()), tolerance=NOISE_ATOL)  # fmt: skip
    assert torch.equal(h_cpu, h_dev), "the integer hashes must be identical on every device"
    assert diff.max() <= NOISE_ATOL


@pytest.mark.parametrize(
    "arch,shape,k,mode", [("mnist_cnn", (1, 28, 28), 8, "eval"), ("mnist_cnn", (1, 28, 28), 8, "train"),
                          ("preact_resnet32", (3, 32, 32), 2, "train")],
)  # fmt: skip
def test_wide_forward_matches_cpu(dev, figures, arch, shape, k, mode):
    from certsmooth.models import WideEnsemble, build_model

    cpu = WideEnsemble([build_model(arch, shape, 2, seed=s) for s in range(k)])
    gpu = copy.deepcopy(cpu).to(dev)
    x = torch.rand(k, 64, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = getattr(cpu, mode)()(x)
        b = getattr(gpu, mode)()(x.to(dev)).cpu()
    rel = float((a - b).abs().max() / a.abs().max())
    figures.update(max_rel_diff=rel, tolerance=FORWARD_RTOL)
    assert rel <= FORWARD_RTOL


def test_training_step_matches_cpu(dev, figures, digits):
    """One forward, backward and fused-Adam step of a lane, on the same noisy batch."""
    from certsmooth.models import WideEnsemble, build_model
    from certsmooth.noise import standard_normal
    from certsmooth.smoothing.train import loss_per_model

    x, y, _, _ = digits
    k, b, lr = 4, 128, 1e-3
    idx = torch.stack([torch.randperm(len(y), generator=torch.Generator().manual_seed(i))[:b] for i in range(k)])
    noise = standard_normal(torch.arange(1, k + 1), idx, 784).reshape(k, b, 1, 28, 28)
    xb, yb = torch.from_numpy(x)[idx] + 0.5 * noise, torch.from_numpy(y)[idx]
    nets = {"cpu": WideEnsemble([build_model("mnist_cnn", (1, 28, 28), 2, seed=s) for s in range(k)])}
    nets["dev"] = copy.deepcopy(nets["cpu"]).to(dev)
    losses, grads, params = {}, {}, {}
    for name, net in nets.items():
        d = next(net.parameters()).device
        opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True)
        loss = loss_per_model(net.train()(xb.to(d)), yb.to(d))
        loss.sum().backward()
        losses[name] = loss.detach().cpu()
        grads[name] = [p.grad.detach().cpu().clone() for p in net.parameters()]
        opt.step()
        params[name] = torch.cat([p.detach().cpu().flatten() for p in net.parameters()])
    grad_rel = max(float((g - h).norm() / g.norm()) for g, h in zip(grads["cpu"], grads["dev"], strict=True))
    moved = (params["cpu"] - params["dev"]).abs()
    flips = float((moved > 1e-2 * lr).float().mean())
    figures.update(loss_max_rel_diff=float(((losses["cpu"] - losses["dev"]) / losses["cpu"]).abs().max()),
                   grad_max_rel_diff=grad_rel, param_max_abs_diff=float(moved.max()),
                   param_fraction_differing_over_1pct_lr=flips,
                   tolerance={"grad_rel": GRAD_RTOL, "flip_fraction": STEP_FLIP_FRACTION})  # fmt: skip
    assert grad_rel <= GRAD_RTOL
    assert flips <= STEP_FLIP_FRACTION


def test_trained_models_agree_with_cpu(dev, figures, digits, cpu_models):
    from certsmooth.smoothing.train import train_partition

    x, y, xt, _ = digits
    ref_states, ref_stats, _ = cpu_models
    states, stats, timing = train_partition(x, y, [[0, 1], [2, 3]], 0, _cfg(), 2, str(dev))
    agree = (_predict(states, xt) == _predict(ref_states, xt)).mean(1)
    loss_rel = [abs(a["final_epoch_loss"] - b["final_epoch_loss"]) / b["final_epoch_loss"]
                for a, b in zip(stats, ref_stats, strict=True)]  # fmt: skip
    wdiff = max(float((states[i][k] - ref_states[i][k]).abs().max()) for i in states for k in states[i])
    figures.update(test_prediction_agreement=agree.tolist(), final_loss_rel_diff=loss_rel, max_weight_diff=wdiff,
                   device_sample_steps_per_s=timing["sample_steps_per_s"], tolerance=TRAINED_AGREEMENT)  # fmt: skip
    assert timing["device"] == str(dev)
    assert agree.min() >= TRAINED_AGREEMENT


def test_training_is_deterministic_on_device(dev, figures, digits):
    """Two runs of the same training on the device give the same bits (MNIST CNN and the
    pre-activation ResNet, whose BatchNorm and pooling have their own CUDA kernels)."""
    from certsmooth.smoothing.train import train_partition

    x, y, _, _ = digits
    rng = np.random.default_rng(0)
    cases = {
        "mnist_cnn": (x, y, _cfg()),
        "preact_resnet32": (rng.random((64, 3, 32, 32), dtype=np.float32), np.arange(64) % 2,
                            _cfg(arch="preact_resnet32", epochs=1, batch_size=32)),
    }  # fmt: skip
    equal = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for arch, (xa, ya, cfg) in cases.items():
            a, _, _ = train_partition(xa, ya, [[0, 1]], 3, cfg, 2, str(dev))
            b, _, _ = train_partition(xa, ya, [[0, 1]], 3, cfg, 2, str(dev))
            equal[arch] = all(torch.equal(a[i][k], b[i][k]) for i in a for k in a[i])
    nondeterministic = sorted({str(w.message).splitlines()[0] for w in caught if "deterministic" in str(w.message)})
    figures.update(bitwise_equal=equal, nondeterministic_op_warnings=nondeterministic)
    assert all(equal.values()), equal


def test_interrupted_training_resumes_bit_for_bit_on_device(dev, figures, digits, tmp_path, monkeypatch):
    from certsmooth.smoothing.resume import Checkpoint
    from certsmooth.smoothing.train import train_partition

    x, y, _, _ = digits
    cfg = _cfg(epochs=3)
    ref, _, _ = train_partition(x, y, [[0, 1]], 5, cfg, 2, str(dev))
    monkeypatch.setenv("CERTSMOOTH_CHECKPOINT_EVERY_S", "0")

    class Killed(BaseException):
        pass

    original = Checkpoint.save

    def save_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(Checkpoint, "save", save_then_die)
        with pytest.raises(Killed):
            train_partition(x, y, [[0, 1]], 5, cfg, 2, str(dev), checkpoint_dir=tmp_path)
    resumed, _, timing = train_partition(x, y, [[0, 1]], 5, cfg, 2, str(dev), checkpoint_dir=tmp_path)
    equal = all(torch.equal(ref[i][k], resumed[i][k]) for i in ref for k in ref[i])
    figures.update(resumed_lane_epochs=timing["resumed_lane_epochs"], bitwise_equal=equal)
    assert timing["resumed_lane_epochs"] == 1 and equal


def test_bf16_autocast_training_on_device(dev, figures, digits):
    from certsmooth.smoothing.train import train_partition

    x, y, xt, yt = digits
    fp32, _, _ = train_partition(x, y, [[0, 1]], 0, _cfg(), 2, str(dev))
    bf16, stats, _ = train_partition(x, y, [[0, 1]], 0, _cfg(bf16=True), 2, str(dev))
    pb, pf = _predict(bf16, xt), _predict(fp32, xt)
    acc = (pb == yt[None]).mean(1)
    agree = (pb == pf).mean(1)
    figures.update(final_loss=[s["final_epoch_loss"] for s in stats], test_accuracy=acc.tolist(),
                   agreement_with_fp32=agree.tolist(), tolerance=BF16_AGREEMENT)  # fmt: skip
    assert all(np.isfinite(s["final_epoch_loss"]) for s in stats)
    assert acc.min() >= 0.95 and agree.min() >= BF16_AGREEMENT


def test_ensemble_certificates_match_cpu(dev, figures, digits, cpu_models):
    from certsmooth.certificates.ensemble import certify_points, model_probabilities

    _, _, xt, _ = digits
    states, stats, _ = cpu_models
    keys = {s["model"]: s["test_noise"] for s in stats}
    for scope in ("train", "joint"):
        p_cpu, p_dev = (model_probabilities(states, keys, "mnist_cnn", 2, xt, 0.5, scope, 2, d)
                        for d in (torch.device("cpu"), dev))  # fmt: skip
        a, b = certify_points(p_cpu, 0.01, 0.5, "soft"), certify_points(p_dev, 0.01, 0.5, "soft")
        diff = float(np.abs(p_cpu - p_dev).max())
        same = float((a.predict == b.predict).mean())
        figures[scope] = {"max_prob_diff": diff, "prediction_agreement": same,
                          "max_radius_diff": float(np.abs(a.radius - b.radius).max()), "tolerance": PROB_ATOL}
        assert diff <= PROB_ATOL and same == 1.0


def test_cohen_counts_match_cpu(dev, figures, digits):
    """CERTIFY's counts on the device against the CPU's, from the same noise stream."""
    from certsmooth.certificates.cohen import CohenConfig, certify_point, sample_counts
    from certsmooth.models import build_model
    from certsmooth.smoothing.ga import GAConfig, train_gaussian

    x, y, xt, _ = digits
    state, _ = train_gaussian(x, y, GAConfig("mnist_cnn", 0.5, 2, 128, 1e-3), 0, 2, "cpu")
    models = []
    for d in (torch.device("cpu"), dev):
        m = build_model("mnist_cnn", (1, 28, 28), 2)
        m.load_state_dict(state)
        models.append((d, m.to(d).eval()))
    cfg = CohenConfig(sigma=0.5, n0=100, n=2000, alpha=0.001, batch=1000)
    delta, total, same_cert = 0, 0, 0
    for i in range(10):
        xi = torch.from_numpy(np.ascontiguousarray(xt[i]))
        c_cpu, c_dev = (sample_counts(m, xi.to(d), cfg.n, cfg.sigma, 1000 + i, 2, cfg.batch) for d, m in models)
        delta += int(np.abs(c_cpu - c_dev).sum())
        total += cfg.n
        cert_cpu, cert_dev = (certify_point(m, xi.to(d), i, cfg, 0, 2) for d, m in models)
        same_cert += int(cert_cpu == cert_dev)
    figures.update(points=10, sum_abs_count_diff=delta, samples=total, identical_certificates=same_cert,
                   tolerance=COUNT_FRACTION)  # fmt: skip
    assert delta <= COUNT_FRACTION * total


def test_subset_trainer_on_device_matches_cpu_and_is_deterministic(dev, figures):
    """The count certifiers' subset trainer (lanes of models on different subsets, padding,
    masked BatchNorm): two runs on the device give the same bits, models stay local (another
    model's subset changing leaves them equal bit for bit), and the device's models predict
    as the CPU's."""
    from certsmooth.models import build_model
    from certsmooth.subsets.train import SubsetTrainConfig, train_subsets

    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(90, 3, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 3, size=90)
    subsets = {0: np.arange(0, 13), 1: np.arange(13, 16), 2: np.arange(16, 40)}
    moved = {**subsets, 2: np.arange(16, 90)}
    figs = {}
    for arch in ("mnist_cnn", "nin"):
        xa = x[:, :1] if arch == "mnist_cnn" else x
        xa = np.pad(xa, ((0, 0), (0, 0), (10, 10), (10, 10))) if arch == "mnist_cnn" else xa  # 28×28
        cfg = SubsetTrainConfig(arch=arch, epochs=2, batch_size=8, lr=1e-3, lane_width=3)
        a, _, _ = train_subsets(xa, y, subsets, 4, cfg, 3, str(dev))
        b, _, _ = train_subsets(xa, y, subsets, 4, cfg, 3, str(dev))
        c, _, _ = train_subsets(xa, y, moved, 4, cfg, 3, str(dev))
        cpu, _, _ = train_subsets(xa, y, subsets, 4, cfg, 3, "cpu")
        probe = torch.from_numpy(xa[40:].astype(np.float32) / 255)
        agree = []
        for m in subsets:
            nets = []
            for states in (a, cpu):
                net = build_model(arch, xa.shape[1:], 3, check=False)
                net.load_state_dict(states[m])
                nets.append(net.eval())
            with torch.no_grad():
                agree.append(float((nets[0](probe).argmax(1) == nets[1](probe).argmax(1)).float().mean()))
        figs[arch] = {
            "bitwise_equal": all(torch.equal(a[m][k], b[m][k]) for m in a for k in a[m]),
            "local_bitwise": all(torch.equal(a[m][k], c[m][k]) for m in (0, 1) for k in a[m]),
            "prediction_agreement_with_cpu": min(agree),
        }
    figures.update(figs)
    assert all(f["bitwise_equal"] and f["local_bitwise"] for f in figs.values()), figs
    assert all(f["prediction_agreement_with_cpu"] >= 0.9 for f in figs.values()), figs
