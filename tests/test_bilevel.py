"""Mehra et al.'s bilevel attack (certsmooth.attacks.bilevel) and the victims' losses."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from certsmooth.attacks.bilevel import BilevelConfig, bilevel_poison, hypergradient, linf_norms, project, solve_p
from certsmooth.errors import ConfigError
from certsmooth.smoothing.ga import GAConfig, smoothadv_eps, train_gaussian
from certsmooth.smoothing.robust import (
    cross_entropy,
    macer_loss,
    smoothadv_perturbation,
    soft_abstain,
    soft_radius,
)


def _tiny_problem(seed=0, d=3, n=12, m=4):
    g = torch.Generator().manual_seed(seed)
    xc = torch.randn(n, d, generator=g, dtype=torch.float64)
    yc = (torch.rand(n, generator=g) > 0.5).double()
    u0 = torch.randn(m, d, generator=g, dtype=torch.float64)
    yp = torch.ones(m, dtype=torch.float64)
    xv = torch.randn(5, d, generator=g, dtype=torch.float64)
    lam = 0.3

    def lower(params, u):
        (w,) = params
        z = torch.cat([xc, u]) @ w
        lab = torch.cat([yc, yp])
        return torch.nn.functional.binary_cross_entropy_with_logits(z, lab) + 0.5 * lam * (w**2).sum()

    def upper(params):
        (w,) = params
        return torch.nn.functional.logsigmoid(xv @ w).sum() + (w**3).sum() / 3

    return lower, upper, u0, d


def _argmin(lower, u, d):
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    for _ in range(30):  # Newton's method on a strongly convex function
        g = torch.autograd.grad(lower([w], u), w, create_graph=True)[0]
        h = torch.stack([torch.autograd.grad(g[i], w, retain_graph=True)[0] for i in range(d)])
        with torch.no_grad():
            w -= torch.linalg.solve(h, g)
    return w.detach().requires_grad_(True)


def test_hypergradient_matches_finite_differences():
    lower, upper, u0, d = _tiny_problem()
    w = _argmin(lower, u0, d)
    grad_f = [g.detach() for g in torch.autograd.grad(upper([w]), [w])]
    p = [torch.zeros(d, dtype=torch.float64, requires_grad=True)]
    opt = torch.optim.Adam(p, lr=0.05)
    res = solve_p(lambda prm: lower(prm, u0), [w], grad_f, p, opt, 3000, damping=0.0)
    assert res < 1e-14
    hg = hypergradient(lower, [w], u0, p)
    fd = torch.zeros_like(u0)
    h = 1e-5
    for idx in np.ndindex(*u0.shape):
        up, um = u0.clone(), u0.clone()
        up[idx] += h
        um[idx] -= h
        wp, wm = _argmin(lower, up, d), _argmin(lower, um, d)
        with torch.no_grad():
            fd[idx] = (upper([wp]) - upper([wm])) / (2 * h)
    np.testing.assert_allclose(hg.numpy(), fd.numpy(), rtol=1e-5, atol=1e-8)


def test_solve_p_damping():
    lower, upper, u0, d = _tiny_problem(1)
    w = _argmin(lower, u0, d)
    gv = torch.autograd.grad(lower([w], u0), w, create_graph=True)[0]
    hess = torch.stack([torch.autograd.grad(gv[i], w, retain_graph=True)[0] for i in range(d)])
    grad_f = torch.autograd.grad(upper([w]), w)[0]
    p = [torch.zeros(d, dtype=torch.float64, requires_grad=True)]
    solve_p(lambda prm: lower(prm, u0), [w], [grad_f], p, torch.optim.Adam(p, lr=0.05), 3000, damping=0.5)
    exact = torch.linalg.solve(hess + 0.5 * torch.eye(d, dtype=torch.float64), grad_f)
    np.testing.assert_allclose(p[0].detach().numpy(), exact.numpy(), rtol=1e-6)


def test_project_holds_frozen_pixels():
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(6, 1, 4, 4, generator=g)
    u = x0 + 0.5 * torch.randn(6, 1, 4, 4, generator=g)
    frozen = torch.zeros(1, 4, 4, dtype=torch.bool)
    frozen[0, 2:, 2:] = True
    out = project(u, x0, 0.1, frozen)
    assert torch.equal(out[:, :, 2:, 2:], x0[:, :, 2:, 2:])
    assert torch.equal(out[:, :, :2], project(u, x0, 0.1)[:, :, :2])  # elsewhere the plain projection, same bits


def test_trigger_pixels_are_the_pixels_a_trigger_sets():
    from certsmooth.attacks.bilevel import trigger_pixels
    from certsmooth.attacks.triggers import make_trigger

    patch = trigger_pixels(make_trigger({"name": "badnets", "size": 3, "position": None, "value": 1.0,
                                         "style": "solid"}), (1, 28, 28))  # fmt: skip
    assert patch.sum() == 9 and patch[0, 25:, 25:].all()
    four = trigger_pixels(make_trigger({"name": "fourpixel", "delta": 0.5, "positions": None}), (1, 28, 28))
    assert four.sum() == 4 and four[0, 18, 20] and four[0, 20, 20]


def test_project_bounds():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(50, 1, 4, 4, generator=g)
    u = x0 + 0.5 * torch.randn(50, 1, 4, 4, generator=g)
    out = project(u, x0, 0.1)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert float((out - x0).abs().max()) <= 0.1 + 1e-7
    inside = x0 + 0.05 * torch.sign(torch.randn(50, 1, 4, 4, generator=g))
    inside = inside.clamp(0, 1)
    assert torch.equal(project(inside, x0, 0.1), inside)


def _data(n=120, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.uniform(0, 0.3, size=(n, 1, 28, 28)).astype(np.float32)
    for c in range(classes):  # class-dependent bright block
        x[y == c, :, 4 * c : 4 * c + 6, 6:16] += 0.6
    return x.clip(0, 1), y.astype(np.int64)


TINY = dict(
    arch="mnist_cnn",
    sigma=0.5,
    epsilon=0.1,
    k=2,
    niter1=10,
    niter2=2,
    epochs=2,
    restart=10,
    batch_clean=40,
    batch_poison=10,
    batch_val=8,
)


@pytest.mark.parametrize("victim", ["ga", "macer", "smoothadv"])
def test_poisons_within_budget_and_move(victim):
    x, y = _data()
    cfg = BilevelConfig(victim=victim, save_final=True, **TINY)
    res = bilevel_poison(x, y, 2, cfg, seed=0, num_classes=3, device="cpu")
    clean = x[res.index]
    assert np.array_equal(res.index, np.flatnonzero(y == 2))
    assert res.poisons.min() >= 0 and res.poisons.max() <= 1
    d = linf_norms(res.poisons, clean)
    assert d.max() <= 0.1 + 1e-6
    assert d.max() > 0.05  # the attack moved the poisons (Adam steps of size ≈ lr_u, clipped at ε)
    assert len(res.history) == 2 and np.isfinite(res.history[-1]["upper_f"])


def test_bilevel_deterministic_and_save_final():
    x, y = _data()
    a = bilevel_poison(x, y, 1, BilevelConfig(save_final=False, **TINY), 3, 3, "cpu")
    b = bilevel_poison(x, y, 1, BilevelConfig(save_final=False, **TINY), 3, 3, "cpu")
    assert np.array_equal(a.poisons, b.poisons)
    one = bilevel_poison(x, y, 1, BilevelConfig(save_final=True, **{**TINY, "epochs": 1}), 3, 3, "cpu")
    # save_final: false drops the last epoch's updates: 2 epochs unsaved == 1 epoch saved
    assert np.array_equal(a.poisons, one.poisons)
    c = bilevel_poison(x, y, 1, BilevelConfig(save_final=False, u_moments="per_poison", **TINY), 3, 3, "cpu")
    assert not np.array_equal(a.poisons, c.poisons)


def test_bilevel_config_errors():
    with pytest.raises(ConfigError, match="victim"):
        BilevelConfig(victim="trades", sigma=0.5, epsilon=0.1)
    with pytest.raises(ConfigError, match="objective = 'entropy'"):
        BilevelConfig(objective="entropy", sigma=0.5, epsilon=0.1)
    with pytest.raises(ConfigError, match="u_moments"):
        BilevelConfig(u_moments="global", sigma=0.5, epsilon=0.1)


def test_soft_radius_closed_form():
    # two classes, identical copies: p̂ = softmax(β·z); radius (σ/2)(Φ⁻¹(p1) − Φ⁻¹(p2))
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]).repeat(3, 1, 1)
    y = torch.tensor([0, 0])
    beta, sigma, a = 1.0, 0.5, 0.01
    p = torch.softmax(torch.tensor([2.0, 0.0]), 0).numpy()
    p = (1 - 2 * a) * p + a
    want = 0.5 * sigma * (norm.ppf(p[0]) - norm.ppf(p[1])) / 2  # the second point is wrong: 0
    assert float(soft_radius(logits, y, sigma, beta, a)) == pytest.approx(want, rel=1e-5)


def test_soft_abstain_closed_form():
    # p̂ = mean over copies of softmax(β·z), squeezed to (1 − 2a)p̂ + a; f = mean σ·max(Φ⁻¹(p̂₁), 0)
    z = torch.tensor([[[3.0, 0.0, 0.0], [0.2, 0.0, 0.1]], [[1.0, 0.0, 0.0], [0.0, 0.3, 0.1]]])
    sigma, beta, a = 0.5, 2.0, 0.01
    p = torch.softmax(beta * z, -1).mean(0).numpy().astype(np.float64)
    p = (1 - 2 * a) * p + a
    top = p.max(1)
    assert top[0] > 0.5 > top[1]  # the second point already abstains: it adds nothing
    assert float(soft_abstain(z, sigma, beta, a)) == pytest.approx(sigma * norm.ppf(top[0]) / 2, rel=1e-5)
    z.requires_grad_(True)
    soft_abstain(z, sigma, beta, a).backward()
    assert z.grad[:, 1].abs().max() == 0 and z.grad[:, 0].abs().max() > 0
    # a confident wrong class counts as much as a confident right one (the radius objective drops it)
    flipped = torch.tensor([[[0.0, 3.0, 0.0]], [[0.0, 1.0, 0.0]]])
    assert float(soft_abstain(flipped, sigma, beta, a)) == pytest.approx(sigma * norm.ppf(top[0]), rel=1e-5)
    assert float(soft_radius(flipped, torch.tensor([0]), sigma, beta, a)) == 0


def test_abstain_objective_lowers_the_surrogates_top_probability():
    """The abstain upper level moves the poisons, differently from the radius, and its
    recorded f is a soft radius (≥ 0)."""
    x, y = _data()
    radius = bilevel_poison(x, y, 2, BilevelConfig(save_final=True, **TINY), seed=0, num_classes=3, device="cpu")
    cfg = BilevelConfig(save_final=True, objective="abstain", **TINY)
    res = bilevel_poison(x, y, 2, cfg, seed=0, num_classes=3, device="cpu")
    assert linf_norms(res.poisons, x[res.index]).max() <= 0.1 + 1e-6
    assert not np.array_equal(res.poisons, radius.poisons)
    assert all(h["upper_f"] >= 0 for h in res.history)


def test_macer_loss_terms():
    logits = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [20.0, -20.0]]])
    y = torch.tensor([0, 0, 0])
    sigma, beta, gamma, lam = 0.5, 1.0, 8.0, 2.0
    loss = macer_loss(logits, y, sigma, beta, gamma, lam)
    pb = torch.softmax(logits[0], -1).numpy()
    ce = -np.log(pb[:, 0]).sum()
    # only point 0 is correct with finite |ξ| ≤ γ; point 2's ξ is finite but |ξ| > γ
    xi0 = norm.ppf(pb[0, 1]) - norm.ppf(pb[0, 0])
    xi2 = norm.ppf(pb[2, 1]) - norm.ppf(pb[2, 0])
    assert abs(xi2) > gamma
    assert float(loss) == pytest.approx((ce + lam * 0.5 * sigma * (xi0 + gamma)) / 3, rel=1e-5)
    logits.requires_grad_(True)
    macer_loss(logits, y, sigma, beta, gamma, lam).backward()
    assert torch.isfinite(logits.grad).all()


def test_smoothadv_perturbation_projected():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x = torch.rand(8, 1, 4, 4)
    noise = 0.1 * torch.randn_like(x)
    y = torch.randint(0, 3, (8,))
    d = smoothadv_perturbation(model, x, noise, y, 0.5, 2)
    assert (d.flatten(1).norm(dim=1) <= 0.5 + 1e-6).all()
    assert float((x + d).min()) >= 0 and float((x + d).max()) <= 1
    with torch.no_grad():
        before = cross_entropy(model(x + noise), y)
        after = cross_entropy(model(x + d + noise), y)
    assert float(after) > float(before)
    assert torch.equal(smoothadv_perturbation(model, x, noise, y, 0.0, 2), torch.zeros_like(x))


def test_smoothadv_warmup():
    cfg = {"eps": 1.0, "warmup_epochs": 10}
    assert smoothadv_eps(cfg, 0) == pytest.approx(0.1)
    assert smoothadv_eps(cfg, 9) == 1.0 and smoothadv_eps(cfg, 50) == 1.0


@pytest.mark.parametrize("method", ["macer", "smoothadv"])
def test_victim_methods_train_and_are_seeded(method):
    x, y = _data(60)
    extra = {"macer": {"macer": {"k": 2, "beta": 16.0, "gamma": 8.0, "lam": 1.0}}}.get(method, {})
    cfg = GAConfig(arch="mnist_cnn", sigma=0.25, epochs=2, batch_size=20, lr=1e-3, method=method, **extra)
    s1, st1 = train_gaussian(x, y, cfg, 0, 3, "cpu")
    s2, _ = train_gaussian(x, y, cfg, 0, 3, "cpu")
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert np.isfinite(st1["final_epoch_loss"])
    ga, _ = train_gaussian(x, y, GAConfig(arch="mnist_cnn", sigma=0.25, epochs=2, batch_size=20, lr=1e-3), 0, 3, "cpu")
    assert not all(torch.equal(s1[k], ga[k]) for k in s1)
    assert "macer" not in GAConfig(arch="a", sigma=1, epochs=1, batch_size=1, lr=1, method="smoothadv").to_dict()
    with pytest.raises(ConfigError, match="train_method"):
        GAConfig(arch="a", sigma=1, epochs=1, batch_size=1, lr=1, method="trades")


def test_avail_bilevel_step_refines_avail_uniform_within_eps(tmp_path):
    """The `bilevel-poison` step for avail_bilevel: avail_uniform's rows, labels and trigger
    (the `poison` step's poisons are the starting points), each poison within ε of its
    triggered image, every other image untouched, the trigger on the test set, and the
    upper level on the other training images with the trigger (never a poison)."""
    from certsmooth.artifacts import read_json, sha256_array
    from certsmooth.attacks.bilevel import trigger_plan
    from certsmooth.attacks.store import load_poisoned_train, load_triggered_test
    from certsmooth.attacks.triggers import make_trigger
    from certsmooth.data.prepared import PreparedSplit, save_prepared
    from certsmooth.steps import bilevel_poison as bstep
    from certsmooth.steps import poison as pstep
    from certsmooth.steps.plot_samples import describe

    x, y = _data(n=120, classes=3)
    for name, (xs, ys) in (("train", (x, y)), ("test", (x[:30], y[:30]))):
        u8 = np.round(xs * 255).astype(np.uint8)
        part = PreparedSplit(u8, ys, np.arange(len(ys)), ["a", "b", "c"], {"raw_sha256": "r" * 64})
        part.provenance["content_sha256"] = sha256_array(part.x, part.y)
        save_prepared(tmp_path / f"{name}.npz", part)
    trig = {"name": "badnets", "size": 4, "position": None, "value": 1.0, "style": "solid"}
    files = {"train": str(tmp_path / "train.npz"), "test": str(tmp_path / "test.npz")}
    pstep.run(**files, attack={"kind": "avail_uniform", "trigger": trig, "rate": 0.1}, seed=4, experiment="s/u",
              out_dir=str(tmp_path / "uniform"))  # fmt: skip
    bl = {k: v for k, v in TINY.items() if k not in ("sigma", "epsilon")}
    bl |= {"victim": "ga", "objective": "abstain", "save_final": True}
    attack = {"kind": "avail_bilevel", "trigger": trig, "rate": 0.1, "epsilon": 0.2, "bilevel": bl}
    bstep.run(**files, attack=attack, sigma=0.5, seed=4, experiment="s/b", device="cpu", out_dir=str(tmp_path / "b"))
    uni, bil = load_poisoned_train(tmp_path / "uniform/train.npz"), load_poisoned_train(tmp_path / "b/train.npz")
    idx = uni.poison_index
    assert idx.size == 12 and np.array_equal(bil.poison_index, idx) and np.array_equal(bil.y, uni.y)
    assert np.array_equal(bil.clean_y, y) and not np.array_equal(bil.y[idx], y[idx])  # relabelled as avail_uniform
    step = np.abs(bil.x[idx] - uni.x[idx])
    assert step.max() <= 0.2 + 1e-6 and step.max() > 0.05  # moved, within ε of the triggered start
    assert bil.x.min() >= 0 and bil.x.max() <= 1
    rest = np.setdiff1d(np.arange(y.size), idx)
    assert np.array_equal(bil.x[rest], uni.x[rest])  # the other images are the clean ones
    t_uni, t_bil = load_triggered_test(tmp_path / "uniform/test.npz"), load_triggered_test(tmp_path / "b/test.npz")
    assert np.array_equal(t_bil.x, t_uni.x) and t_bil.target == -1
    rec = read_json(tmp_path / "b/record.json")
    assert rec["bilevel"]["target"] is None and rec["bilevel"]["linf"]["max"] <= 0.2 + 1e-6
    assert "triggered" in rec["bilevel"]["start"] and rec["bilevel"]["stats"]["validation"].startswith("every non-")
    kind, _, relabel = describe(rec, ["a", "b", "c"])
    assert kind == "avail_bilevel" and "abstain" in relabel
    plan = trigger_plan(x, y, make_trigger(trig), idx, uni.y[idx])
    assert len(plan.val_x) == rest.size and np.array_equal(plan.val_y, y[rest])
    assert np.array_equal(plan.val_x, make_trigger(trig).apply(x[rest]))
    assert plan.frozen is None and rec["bilevel"]["stats"]["frozen_pixels"] == 0
    # keep_trigger: the same refinement with the 4×4 patch held at 1 in every poison
    attack["bilevel"] = {**bl, "keep_trigger": True}
    bstep.run(**files, attack=attack, sigma=0.5, seed=4, experiment="s/k", device="cpu", out_dir=str(tmp_path / "k"))
    kept = load_poisoned_train(tmp_path / "k/train.npz")
    assert np.array_equal(kept.x[idx][:, :, 24:, 24:], uni.x[idx][:, :, 24:, 24:])  # the patch, as triggered
    assert (kept.x[idx][:, :, 24:, 24:] == 1).all() and read_json(tmp_path / "k/record.json")["bilevel"]["stats"][
        "frozen_pixels"] == 16  # fmt: skip
    moved = np.abs(kept.x[idx] - uni.x[idx])
    assert moved.max() > 0.05 and moved.max() <= 0.2 + 1e-6 and np.array_equal(kept.x[rest], uni.x[rest])
