"""What every certificate function refuses: input no sample, no model and no attack can
produce. A certificate computed from such input would be a number without a guarantee
(an infinite radius from a bound of exactly 1, a poisoning size from α = 1.5), so each
function checks its arguments first and raises :class:`CertificateInputError` (a
``ValueError``) with one line that names the argument, its value and what is allowed.

The checks are vectorised and cheap next to the certificates (one pass over the array).
"""

from __future__ import annotations

import numbers

import numpy as np


class CertificateInputError(ValueError):
    """An argument no valid certification run can produce."""


def _show(value) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    """The first offending entry, as `[i, j] = v`."""
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{list(where)} = {arr[where].item()!r}"


def alpha(value, name: str = "alpha") -> float:
    """A failure probability: a real number in (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:  # also NaN
        raise CertificateInputError(f"{name} = {_show(value)}: a failure probability must be in (0, 1)")
    return float(value)


def integer(value, name: str, minimum: int) -> int:
    """An integer (Python or NumPy, not bool) ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise CertificateInputError(f"{name} = {_show(value)}: must be an integer ≥ {minimum}")
    return int(value)


def _numbers(value, name: str, bad, requirement: str) -> np.ndarray:
    """``value`` as float64; entries where ``bad`` is true (or not finite) are refused."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.dtype == bool:
        raise CertificateInputError(f"{name} = {_show(value)}: must be numbers")
    arr = arr.astype(np.float64)
    refused = ~np.isfinite(arr) | bad(arr)
    if refused.any():
        at = _first_bad(arr, refused) if arr.ndim else f"= {float(arr)!r}"
        raise CertificateInputError(f"{name} {at}: {requirement}")
    return arr


def scale(value, name: str = "sigma") -> np.ndarray:
    """Noise scales: finite and > 0 (a scalar or an array)."""
    return _numbers(value, name, lambda a: a <= 0, "noise scales must be finite and > 0")


def nonnegative(value, name: str) -> np.ndarray:
    """Finite numbers ≥ 0 (norms, radii)."""
    return _numbers(value, name, lambda a: a < 0, "must be finite and ≥ 0")


def probabilities(value, name: str) -> np.ndarray:
    """Probabilities or confidence bounds: finite numbers in [0, 1]."""
    return _numbers(value, name, lambda a: (a < 0) | (a > 1), "a probability must be in [0, 1]")


def score_table(value, name: str = "scores", tolerance: float = 1e-4) -> np.ndarray:
    """(points, C ≥ 2) mean class probabilities: each in [0, 1], each row summing to 1
    (within ``tolerance``: float32 softmax outputs averaged)."""
    arr = probabilities(value, name)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise CertificateInputError(f"{name} has shape {arr.shape}: need points × classes with at least 2 classes")
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > tolerance
    if off.any():
        i = int(np.argmax(off))
        raise CertificateInputError(
            f"{name} row {i} sums to {float(sums[i])!r}: each row must be a probability vector "
            f"(sum 1 within {tolerance:g})"
        )
    return arr


def counts(value, name: str = "counts", equal_totals: bool = True) -> np.ndarray:
    """(points, C ≥ 2) vote counts: integers ≥ 0, each row with at least one vote and, with
    ``equal_totals``, every row with the same total (every point is voted on by the same
    models)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
            raise CertificateInputError(f"{name} {_first_bad(arr, bad)}: vote counts must be integers")
    elif arr.dtype.kind not in "iu" or arr.dtype == bool:
        raise CertificateInputError(f"{name} = {_show(value)}: vote counts must be integers")
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise CertificateInputError(f"{name} has shape {arr.shape}: need points × classes with at least 2 classes")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise CertificateInputError(f"{name} {_first_bad(arr, arr < 0)}: vote counts must be ≥ 0")
    totals = arr.sum(axis=1)
    if (totals == 0).any():
        i = int(np.argmax(totals == 0))
        raise CertificateInputError(f"{name} row {i} has no vote: every point needs at least one")
    if equal_totals and len(totals) and (totals != totals[0]).any():
        i = int(np.argmax(totals != totals[0]))
        raise CertificateInputError(
            f"{name}: row {i} has {totals[i]} votes but row 0 has {totals[0]}: every point is voted on by the "
            "same models, so every row must have the same total"
        )
    return arr


def labels(value, num_classes: int, name: str = "predictions") -> np.ndarray:
    """Class indices: integers in 0..num_classes − 1."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.dtype == bool:
        raise CertificateInputError(f"{name} = {_show(value)}: class indices must be integers")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        raise CertificateInputError(f"{name} {_first_bad(arr, bad)}: a class index must be in 0..{num_classes - 1}")
    return arr
