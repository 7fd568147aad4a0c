"""Deep Partition Aggregation's certificate (Levine & Feizi, ICLR 2021, arXiv
2006.14768): deterministic, no sampling, no confidence level.

From the hard votes n of the k base models (one per content-hash partition,
:func:`certsmooth.subsets.rows.dpa_partitions`): the prediction c = argmax n (ties to the
lowest class), the runner-up c′ = argmax over the other classes (ties to the lowest), and

    ρ̄ = ⌊(n_c − n_c′ − 1[c′ < c]) / 2⌋,

the number of inserted or deleted training samples (the size of the symmetric difference)
that provably cannot change the prediction: one sample is in one partition, so it changes at
most one vote, which closes the gap by at most 2; the indicator accounts for the tie-break
that favours the lower index. ρ̄ = −1 where the prediction is wrong (not certified).
"""

from __future__ import annotations

import numpy as np

import certsmooth.certificates.checks as checks

NOT_CERTIFIED = -1


def top_two(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(c, c′) per row of vote counts (N, C): the prediction and the runner-up, each with
    ties broken towards the lowest class index."""
    counts = checks.counts(counts, "counts", equal_totals=False)
    c = np.argmax(counts, axis=1)  # first maximum: the lowest index
    others = counts.copy()
    others[np.arange(len(c)), c] = np.iinfo(np.int64).min
    return c, np.argmax(others, axis=1)


def vote_counts(preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, C) counts of the base models' hard predictions (N, models), each a class index
    in 0..C − 1."""
    num_classes = checks.integer(num_classes, "num_classes", 2)
    preds = checks.labels(preds, num_classes, "predictions")
    if preds.ndim != 2 or preds.shape[1] < 1:
        raise checks.CertificateInputError(f"predictions have shape {preds.shape}: need points × models (≥ 1 model)")
    rows = np.repeat(np.arange(preds.shape[0]), preds.shape[1])
    out = np.zeros((preds.shape[0], num_classes), dtype=np.int64)
    np.add.at(out, (rows, preds.reshape(-1)), 1)
    return out


def certify(counts: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, ρ̄) per test point from the vote counts (N, C); with ``labels``, ρ̄ = −1
    where the prediction is wrong. ``counts``: integer votes ≥ 0, every row with the same
    total (the k base models)."""
    counts = checks.counts(counts, "counts")
    c, c2 = top_two(counts)
    rows = np.arange(len(c))
    gap = counts[rows, c] - counts[rows, c2] - (c2 < c)
    rho = gap // 2  # gap ≥ 0: c is a maximum and wins its ties
    if labels is not None:
        rho = np.where(c == checks.labels(labels, counts.shape[1], "labels"), rho, NOT_CERTIFIED)
    return c, rho
