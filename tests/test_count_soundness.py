"""Count certificates on real data, end to end in the library: hash locality of the
partitions and a real retraining check of DPA's and FA's certificates (mnist5k 0-vs-1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from certsmooth.certificates import dpa, fa
from certsmooth.data.prepared import prepare
from certsmooth.models import WideEnsemble, build_model, predictions
from certsmooth.subsets import rows
from certsmooth.subsets.train import SubsetTrainConfig, train_subsets

CFG = SubsetTrainConfig(arch="mnist_cnn", epochs=4, batch_size=32, lr=1e-3, lane_width=10)
K = 10


@pytest.fixture(scope="module")
def digits():
    parts = prepare("mnist5k", [0, 1], {"test_fraction": 0.2, "seed": 0}, "unused")
    tr, te = parts["train"], parts["test"]
    return tr.x[:400], tr.y[:400], te.x[:60], te.y[:60]


def _votes(states, ids, x, num_classes=2):
    """(points, models) hard predictions of the models ``ids`` on uint8 images x."""
    models = []
    for m in ids:
        net = build_model("mnist_cnn", x.shape[1:], num_classes, check=False)
        net.load_state_dict(states[m])
        models.append(net)
    wide = WideEnsemble(models).eval()
    xf = torch.from_numpy(x.astype(np.float32) / np.float32(255.0))
    with torch.no_grad():
        logits = wide(xf[None].expand(len(ids), *xf.shape))
    return predictions(logits).T.numpy()


def _train_dpa(x, y):
    subsets = dict(enumerate(rows.dpa_partitions(x, y, K)))
    states, _, _ = train_subsets(x, y, subsets, 0, CFG, 2, "cpu")
    return states


def test_m_poisons_in_one_partition_change_at_most_one_vote(digits):
    x, y, xt, yt = digits
    base = _votes(_train_dpa(x, y), range(K), xt)
    # m = 5 inserted copies of one image, relabelled: one hash value, so one partition
    extra = np.repeat(x[:1], 5, axis=0)
    x2, y2 = np.concatenate([x, extra]), np.concatenate([y, np.full(5, 1 - y[0])])
    poisoned = _votes(_train_dpa(x2, y2), range(K), xt)
    changed = np.flatnonzero((base != poisoned).any(axis=0))
    assert set(changed) <= {int(rows.content_hash(x[:1])[0] % K)}


def test_a_certified_point_keeps_its_prediction_after_retraining(digits):
    """DPA: points certified at ρ̄ ≥ 2 keep their prediction when ⌊ρ̄/2⌋ training samples of
    the partitions that vote for them have their labels flipped and every model retrains."""
    x, y, xt, yt = digits
    votes = _votes(_train_dpa(x, y), range(K), xt)
    pred, rho = dpa.certify(dpa.vote_counts(votes, 2), labels=yt)
    assert (rho >= 2).mean() > 0.5  # the ensemble is good enough for the check to bite
    budget = int(rho[rho >= 2].min()) // 2  # modified samples (each = 1 deletion + 1 insertion)
    point = int(np.flatnonzero(rho == rho[rho >= 2].min())[0])
    h = rows.content_hash(x) % K
    for_c = [p for p in range(K) if votes[point, p] == pred[point]]
    victims = [int(np.flatnonzero(h == p)[0]) for p in for_c[:budget]]  # one sample per partition voting c
    y2 = y.copy()
    y2[victims] = 1 - y2[victims]
    after = _votes(_train_dpa(x, y2), range(K), xt)
    p2, _ = dpa.certify(dpa.vote_counts(after, 2))
    certified = rho >= 2 * budget
    assert np.array_equal(p2[certified], pred[certified])  # every point certified at 2·budget holds
    changed = sorted(set(np.flatnonzero((votes != after).any(axis=0))))
    assert set(changed) <= set(for_c[:budget])  # and only the poisoned partitions moved


def test_fa_retraining_check(digits):
    x, y, xt, yt = digits
    k, d = 5, 2
    shifts = rows.fa_shifts(k, d, seed=0)
    subsets = dict(enumerate(rows.fa_subsets(x, y, k, d, shifts)))
    votes = _votes(train_subsets(x, y, subsets, 0, CFG, 2, "cpu")[0], range(k * d), xt)
    pred, rho = fa.certify(votes, 2, k, d, shifts, labels=yt)
    assert (rho >= 2).mean() > 0.5
    victims = np.flatnonzero(rows.content_hash(x) % (k * d) == 3)[:1]  # one sample: ρ = 2 (delete + insert)
    y2 = y.copy()
    y2[victims] = 1 - y2[victims]
    subsets2 = dict(enumerate(rows.fa_subsets(x, y2, k, d, shifts)))
    after = _votes(train_subsets(x, y2, subsets2, 0, CFG, 2, "cpu")[0], range(k * d), xt)
    p2, _ = fa.certify(after, 2, k, d, shifts)
    assert np.array_equal(p2[rho >= 2], pred[rho >= 2])
    reach = set(rows.fa_classifiers_of_hash(k, d, shifts)[3].tolist())
    assert set(np.flatnonzero((votes != after).any(axis=0))) <= reach
