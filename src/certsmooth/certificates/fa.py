"""Finite Aggregation's certificate (Wang, Levine & Feizi, ICML 2022, arXiv 2202.02628):
deterministic, from the hard predictions of the k·d base models, one per subset of
:func:`certsmooth.subsets.rows.fa_subsets`.

A training sample of hash value h (Σ uint8 mod k·d) is in the d subsets (h + s_j) mod k·d,
so inserting or deleting it can change those d classifiers only. For the prediction c (ties
to the lowest class) and each other class c′, the vote gap is
g = n_c − n_c′ − 1[c′ < c], and one sample of hash h can close it by at most

    δ_h = Σ_j (1 + 1[pred_(h+s_j) = c] − 1[pred_(h+s_j) = c′])

(a classifier voting c that moves to c′ closes 2, one voting another class closes 1, one
voting c′ nothing). r samples reach at most r distinct hash values, and the sum of their δ
bounds what they close (classifiers shared by two hash values are counted twice: an upper
bound), so the prediction is safe against r samples if the r largest δ sum to at most g. ρ̄
is the smallest, over c′, of the largest such r (the greedy prefix of the δ sorted in
descending order). With d = 1 (shift 0) δ_h is 2 for a classifier voting c, 1 or 0 otherwise,
and ρ̄ equals DPA's ⌊g/2⌋ exactly. ρ̄ = −1 where the prediction is wrong.

The δ are integers in 0..2d, so the greedy prefix is computed from their histogram (no sort):
O(k·d·d) per point and class instead of O(k·d·log(k·d)).
"""

from __future__ import annotations

import numpy as np

import certsmooth.certificates.checks as checks
from certsmooth.certificates.dpa import NOT_CERTIFIED, top_two, vote_counts
from certsmooth.subsets.rows import fa_classifiers_of_hash


def greedy_prefix(hist: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """The largest r with (sum of the r largest values) ≤ gap, for values given as a
    histogram ``hist`` (B, V) of counts of the values 0..V−1; gap (B,) ≥ 0."""
    hist = np.asarray(hist)
    if hist.ndim != 2 or hist.dtype.kind not in "iu" or (hist < 0).any():
        raise checks.CertificateInputError("hist: need a (B, V) table of integer counts ≥ 0")
    gap = np.asarray(gap)
    if gap.shape != hist.shape[:1] or gap.dtype.kind not in "iu" or (gap < 0).any():
        raise checks.CertificateInputError(f"gap = {gap.tolist()!r:.60}: need one integer ≥ 0 per row of hist")
    remaining = np.asarray(gap, dtype=np.int64).copy()
    r = np.zeros(len(remaining), dtype=np.int64)
    open_ = np.ones(len(remaining), dtype=bool)  # the prefix has not stopped yet
    for v in range(hist.shape[1] - 1, 0, -1):
        fit = np.minimum(hist[:, v], remaining // v)
        take = np.where(open_, fit, 0)
        r += take
        remaining -= take * v
        open_ &= fit == hist[:, v]
    return r + np.where(open_, hist[:, 0], 0)  # δ = 0 adds nothing to the sum


def certify(preds: np.ndarray, num_classes: int, k: int, d: int, shifts: np.ndarray,
            labels: np.ndarray | None = None, chunk_elems: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(prediction, ρ̄) per test point from the predictions (N, k·d) of the k·d classifiers
    (column b = subset b); points are processed in chunks of about ``chunk_elems`` (point,
    hash, shift) entries (the result does not depend on it)."""
    k, d = checks.integer(k, "k", 1), checks.integer(d, "d", 1)
    num_classes = checks.integer(num_classes, "num_classes", 2)
    preds = checks.labels(preds, num_classes, "predictions")
    n = k * d
    if preds.ndim != 2 or preds.shape[1] != n:
        raise checks.CertificateInputError(f"predictions must be N×(k·d) = N×{n}, got {preds.shape}")
    shifts = np.asarray(shifts)
    if (shifts.shape != (d,) or shifts.dtype.kind not in "iu" or len(set(shifts.tolist())) != d
            or shifts.min() < 0 or shifts.max() >= n):  # fmt: skip
        raise checks.CertificateInputError(
            f"shifts = {shifts.tolist()!r:.60}: need d = {d} distinct integers in 0..k·d − 1 = 0..{n - 1}"
        )
    step = max(1, chunk_elems // (n * d))
    parts = [_certify(preds[i : i + step], num_classes, k, d, shifts) for i in range(0, len(preds), step)]
    c = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    rho = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    if labels is not None:
        rho = np.where(c == checks.labels(labels, num_classes, "labels"), rho, NOT_CERTIFIED)
    return c, rho


def _certify(preds: np.ndarray, num_classes: int, k: int, d: int, shifts: np.ndarray):
    n = k * d
    counts = vote_counts(preds, num_classes)
    c, _ = top_two(counts)
    hashes = fa_classifiers_of_hash(k, d, shifts)  # (n, d)
    rows = np.arange(len(c))
    rho = np.full(len(c), np.iinfo(np.int64).max, dtype=np.int64)
    voted_c = (preds == c[:, None])[:, hashes].sum(axis=2)  # (N, n): classifiers of hash h voting c
    for other in range(num_classes):
        mask = c != other
        if not mask.any():
            continue
        gap = counts[rows, c] - counts[rows, other] - (other < c)
        voted_o = (preds == other)[:, hashes].sum(axis=2)
        delta = d + voted_c - voted_o  # (N, n) in 0..2d
        hist = np.zeros((len(c), 2 * d + 1), dtype=np.int64)
        np.add.at(hist, (np.repeat(rows, n), delta.reshape(-1)), 1)
        r = greedy_prefix(hist[mask], gap[mask])
        rho[mask] = np.minimum(rho[mask], r)
    return c, rho
