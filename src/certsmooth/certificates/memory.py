"""Storage-update (memory-based) certification (DDRS, Alfarra et al., arXiv 2012.04351; as
Cert-SSB uses it).

With an input-dependent smoothing σ the certified regions of different test points can
contradict each other (Súkeník et al., arXiv 2110.05365). The storage update keeps a
memory of certified regions (x_j, ŷ_j, R_j) and processes test points in a fixed,
recorded order. For a new point x with prediction ŷ and radius R:

1. conflicts = stored j with ŷ_j ≠ ŷ and ‖x − x_j‖ < R_j + R; none: keep (ŷ, R);
2. otherwise trim: R ← min over conflicts of (d_j − R_j);
3. if that minimum is negative, x lies inside the conflicting region j* (the argmin):
   align the label, ŷ ← ŷ_{j*}, with radius min(R, R_{j*} − d_{j*}) (the ball around x
   then lies inside region j*; certsmooth also never lets a radius grow);
4. store (x, ŷ, R) when R > 0.

Abstained points (label −1 or R ≤ 0) pass through unchanged and are not stored.
Invariant (property-tested): stored regions with different labels never overlap. The
function is pure and deterministic; the processing order is part of the result
(``order_sha256``), so runs in different orders are reported as different runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

import certsmooth.certificates.checks as checks

KEPT, TRIMMED, ALIGNED, PASSED = "kept", "trimmed", "aligned", "abstained"


@dataclass
class MemoryResult:
    label: np.ndarray  # post-update label per point (input order)
    radius: np.ndarray  # post-update radius per point (input order)
    action: np.ndarray  # KEPT | TRIMMED | ALIGNED | PASSED
    stored: np.ndarray  # bool: the point's region entered the memory
    position: np.ndarray  # the point's position in the processing order
    order_sha256: str


def order_digest(order: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(order, dtype=np.int64).tobytes()).hexdigest()


def storage_update(
    x: np.ndarray, labels: np.ndarray, radii: np.ndarray, order: np.ndarray | None = None
) -> MemoryResult:
    """Run the storage update over points ``x`` (T, ...) with pre-update ``labels`` and
    ``radii``, in ``order`` (default: dataset order)."""
    t = len(labels)
    flat = np.asarray(x, dtype=np.float64).reshape(t, -1)
    if not np.all(np.isfinite(flat)):
        raise checks.CertificateInputError("x: the points must be finite")
    labels = np.asarray(labels)
    if labels.shape != (t,) or labels.dtype.kind not in "iu" or (labels < -1).any():
        raise checks.CertificateInputError("labels: need one integer per point, a class index or −1 (abstain)")
    labels = labels.astype(np.int64)
    radii = np.asarray(radii, dtype=np.float64)
    if radii.shape != (t,) or np.isnan(radii).any() or np.isinf(radii).any():
        bad = radii[~np.isfinite(radii)][:1].tolist() if radii.shape == (t,) else radii.shape
        raise checks.CertificateInputError(f"radii: need one finite radius per point, got {bad}")
    order = np.arange(t) if order is None else np.asarray(order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(t)):
        raise ValueError("order must be a permutation of the point indices")
    out_label, out_radius = labels.copy(), radii.copy()
    action = np.full(t, PASSED, dtype=object)
    stored = np.zeros(t, dtype=bool)
    position = np.empty(t, dtype=np.int64)
    mem_x = np.empty((0, flat.shape[1]))
    mem_label = np.empty(0, dtype=np.int64)
    mem_radius = np.empty(0)
    for pos, i in enumerate(order):
        position[i] = pos
        y, r = labels[i], radii[i]
        if y < 0 or r <= 0:
            continue
        d = np.sqrt(((mem_x - flat[i]) ** 2).sum(1))
        conflict = (mem_label != y) & (d < mem_radius + r)
        if conflict.any():
            gaps = np.where(conflict, d - mem_radius, np.inf)
            j = int(np.argmin(gaps))
            if gaps[j] < 0:
                y, r, action[i] = mem_label[j], min(r, mem_radius[j] - d[j]), ALIGNED
            else:
                r, action[i] = gaps[j], TRIMMED
        else:
            action[i] = KEPT
        out_label[i], out_radius[i] = y, r
        if r > 0:
            mem_x = np.vstack([mem_x, flat[i]])
            mem_label = np.append(mem_label, y)
            mem_radius = np.append(mem_radius, r)
            stored[i] = True
    return MemoryResult(out_label, out_radius, action.astype(str), stored, position, order_digest(order))
