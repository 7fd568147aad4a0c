"""The subset trainer of the count certificates: each model of a wide lane follows the
trajectory it would follow alone, and depends on its own subset only (bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from certsmooth.lanes import job_lanes, lanes, step_lanes
from certsmooth.models import build_model
from certsmooth.subsets import rows
from certsmooth.subsets.rows import subset_sizes
from certsmooth.subsets.train import SubsetTrainConfig, model_seeds, train_subsets

CFG = SubsetTrainConfig(arch="mnist_cnn", epochs=2, batch_size=16, lr=1e-3, lane_width=4)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(120, 1, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 3, size=120)
    return x, y


def _alone(x, y, rows, model_id, seed, cfg, num_classes):
    """The reference: one model, torch.optim.Adam, the same seeds and batches."""
    s = model_seeds(seed, model_id)
    model = build_model(cfg.arch, x.shape[1:], num_classes, seed=s["init"], check=False)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=False)
    gen = torch.Generator().manual_seed(s["shuffle"])
    xt = torch.from_numpy(x.astype(np.float32) / np.float32(255.0))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    members = torch.as_tensor(rows)
    for _ in range(cfg.epochs):
        order = members[torch.randperm(len(members), generator=gen)] if len(members) else members
        for start in range(0, len(order), cfg.batch_size):
            b = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(model(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.state_dict()


def test_each_model_trains_as_if_alone(data):
    x, y = data
    subsets = {0: np.arange(0, 37), 1: np.arange(37, 101), 2: np.arange(101, 111), 3: np.array([], dtype=np.int64),
               4: np.arange(111, 120)}  # fmt: skip
    states, stats, _ = train_subsets(x, y, subsets, 5, CFG, 3, "cpu")
    assert [s["steps_per_epoch"] for s in stats] == [3, 4, 1, 0, 1]
    for m, index in subsets.items():
        want = _alone(x, y, index, m, 5, CFG, 3)
        for key, t in want.items():
            torch.testing.assert_close(states[m][key], t, rtol=2e-5, atol=2e-6, msg=f"model {m} {key}")
    init = build_model("mnist_cnn", (1, 28, 28), 3, seed=model_seeds(5, 3)["init"], check=False).state_dict()
    assert all(torch.equal(states[3][k], v) for k, v in init.items())  # an empty subset: not trained


@pytest.mark.parametrize("arch", ["preact_resnet32", "nin"])
def test_models_with_batchnorm_train_as_if_alone(arch):
    """BatchNorm statistics over each model's own rows: the padding rows of a short batch, the
    steps a model sits out and the other models' rows change nothing (8×8 colour images keep
    it fast). lr 1e-6: Adam moves a weight whose gradient is near 0 by ±lr on float noise
    alone, so at 1e-3 two correct runs differ by ~1e-3; wrong statistics (padding rows in
    them, as plain BatchNorm has) move the running statistics by ~0.1 whatever the lr."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(60, 3, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 3, size=60)
    cfg = SubsetTrainConfig(arch=arch, epochs=2, batch_size=8, lr=1e-6, lane_width=3)
    subsets = {0: np.arange(0, 13), 1: np.arange(13, 16), 2: np.arange(16, 40)}  # 2, 1 and 3 steps per epoch
    states, _, _ = train_subsets(x, y, subsets, 4, cfg, 3, "cpu")
    for m, index in subsets.items():
        want = _alone(x, y, index, m, 4, cfg, 3)
        for key, t in want.items():
            torch.testing.assert_close(states[m][key], t, rtol=1e-4, atol=1e-5, msg=f"{arch} model {m} {key}")


def test_masked_batchnorm_equals_batchnorm_on_each_models_rows():
    from certsmooth.models.wide import _wide_leaf
    from certsmooth.subsets.train import RowWeights, masked_batchnorm

    torch.manual_seed(0)
    k, c, b = 3, 4, 8
    bns = [torch.nn.BatchNorm2d(c) for _ in range(k)]
    for bn in bns:
        torch.nn.init.uniform_(bn.weight, 0.5, 1.5)
        torch.nn.init.uniform_(bn.bias, -1, 1)
    wide = _wide_leaf(bns[0], [bn.state_dict() for bn in bns]).train()
    weights = RowWeights()
    wide.forward = masked_batchnorm(wide, weights, k)
    weights.w = torch.zeros(k, b)
    weights.w[0, :5], weights.w[1, :] = 1, 1  # model 2 has no rows in this step
    x = torch.randn(b, k * c, 5, 5, requires_grad=True)
    out = wide(x)
    (out[:5, :c].square().sum() + out[:, c : 2 * c].square().sum()).backward()
    assert torch.isfinite(out).all()
    for m, n in ((0, 5), (1, 8)):
        xm = x.detach()[:n, m * c : (m + 1) * c].clone().requires_grad_(True)
        ref = bns[m](xm)
        ref.square().sum().backward()
        sl = slice(m * c, (m + 1) * c)
        torch.testing.assert_close(out[:n, sl], ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(x.grad[:n, sl], xm.grad, rtol=1e-4, atol=1e-5)
        assert torch.all(x.grad[n:, sl] == 0)  # padding rows get no gradient
        torch.testing.assert_close(wide.weight.grad[sl], bns[m].weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(wide.running_mean[sl], bns[m].running_mean)
        torch.testing.assert_close(wide.running_var[sl], bns[m].running_var)


@pytest.mark.parametrize("arch", ["mnist_cnn", "preact_resnet32"])
def test_a_model_depends_on_its_own_subset_only_bit_for_bit(data, arch):
    x, y = data
    cfg = SubsetTrainConfig(arch=arch, epochs=2, batch_size=16, lr=1e-3, lane_width=4)
    subsets = {0: np.arange(0, 30), 1: np.arange(30, 60), 2: np.arange(60, 80)}
    a, _, _ = train_subsets(x, y, subsets, 1, cfg, 3, "cpu")
    x2 = x.copy()
    x2[60:80] = 255 - x2[60:80]  # model 2's samples change content
    b, _, _ = train_subsets(x2, y, {**subsets, 2: np.arange(60, 120)}, 1, cfg, 3, "cpu")  # ... and it gains 40
    for m in (0, 1):
        assert all(torch.equal(a[m][k], b[m][k]) for k in a[m]), m
    assert not all(torch.equal(a[2][k], b[2][k]) for k in a[2])


def test_lane_width_does_not_change_the_models(data):
    x, y = data
    subsets = {m: np.arange(m * 20, m * 20 + 20) for m in range(5)}
    a, _, _ = train_subsets(x, y, subsets, 2, CFG, 3, "cpu")
    b, _, _ = train_subsets(x, y, subsets, 2, SubsetTrainConfig("mnist_cnn", 2, 16, 1e-3, 2), 3, "cpu")
    for m in subsets:
        for k in a[m]:
            torch.testing.assert_close(a[m][k], b[m][k], rtol=1e-5, atol=1e-6)


def test_step_lanes_group_models_by_steps_per_epoch():
    # 3, 1, 1, 3, 1 steps at batch 16: the one-step models share lanes, the three-step ones too
    assert step_lanes([40, 10, 12, 35, 8], 16, 2) == [[1, 2], [4, 0], [3]]
    assert step_lanes([40, 10, 12, 35, 8], 16, 3) == [[1, 2, 4], [0, 3]]
    assert step_lanes([5] * 5, 16, 2) == lanes(5, 2)  # equal sizes: consecutive ids, as before
    plan = step_lanes([40, 10, 12, 35, 8], 16, 2)
    assert job_lanes(5, 2, 2, plan) == [[[1, 2], [4, 0]], [[3]]]


def test_subset_sizes_are_the_sizes_of_the_subsets(data):
    x, y = data
    dpa = {"k": 7}
    assert subset_sizes("dpa", x, dpa, 0).tolist() == [len(s) for s in rows.dpa_partitions(x, y, 7)]
    fa = {"k": 5, "d": 3}
    shifts = rows.fa_shifts(5, 3, 4)
    want = [len(s) for s in rows.fa_subsets(x, y, 5, 3, shifts)]
    assert subset_sizes("fa", x, fa, 4).tolist() == want and sum(want) == 3 * len(x)
    assert subset_sizes("bagging", x, {"k": 30, "models": 4}, 0).tolist() == [30] * 4
    h = rows.content_hash(x)  # train-count hashes once and passes the hashes on: the same subsets
    assert subset_sizes("fa", x, fa, 4, h).tolist() == want
    assert all(np.array_equal(a, b) for a, b in zip(rows.fa_subsets(x, y, 5, 3, shifts, hashes=h),
                                                    rows.fa_subsets(x, y, 5, 3, shifts), strict=True))  # fmt: skip
    assert all(np.array_equal(a, b) for a, b in zip(rows.dpa_partitions(x, y, 7, hashes=h),
                                                    rows.dpa_partitions(x, y, 7), strict=True))  # fmt: skip


def test_a_lane_plan_trains_the_same_bits_in_one_call_or_split_like_jobs(data):
    """train-count passes step_lanes' plan split into jobs: a model's weights must not depend
    on how the plan's lanes are split; states and statistics come back in model order."""
    x, y = data
    subsets = {0: np.arange(0, 40), 1: np.arange(40, 50), 2: np.arange(50, 62), 3: np.arange(62, 97),
               4: np.arange(97, 105)}  # fmt: skip
    cfg = SubsetTrainConfig("mnist_cnn", 2, 16, 1e-3, 2)
    plan = step_lanes([len(subsets[m]) for m in range(5)], 16, 2)
    states, stats, _ = train_subsets(x, y, subsets, 3, cfg, 3, "cpu", plan)
    assert list(states) == [0, 1, 2, 3, 4] and [s["model"] for s in stats] == [0, 1, 2, 3, 4]
    assert [s["steps_per_epoch"] for s in stats] == [3, 1, 1, 3, 1]
    for job in job_lanes(5, 2, 2, plan):
        ids = sorted(m for lane in job for m in lane)
        part, _, _ = train_subsets(x, y, {m: subsets[m] for m in ids}, 3, cfg, 3, "cpu", job)
        for m in ids:
            assert all(torch.equal(states[m][k], part[m][k]) for k in states[m]), m
    with pytest.raises(ValueError, match="exactly once"):
        train_subsets(x, y, subsets, 3, cfg, 3, "cpu", [[0, 1], [2, 3]])
