"""Content-based partitions of a training set for the count certificates (DPA,
arXiv 2006.14768; bagging, arXiv 2008.04495; Finite Aggregation, arXiv 2202.02628).

* **DPA** (Levine & Feizi): sample i goes to partition h_i = (Σ of its uint8 values) mod k.
  certsmooth hashes the training data **as stored after poisoning**: the poisoned
  ``train.npz`` holds float32 images in [0, 1] (triggers and bilevel poisons are not on the
  8-bit grid), quantised for the hash only to q = round(255·clip(x, 0, 1)) as uint8
  (:func:`quantise`; a clean image gives back its dataset's own 8-bit values exactly, so the
  hash is DPA's ``partition_data_norm_hash.py`` on clean data); the label does not enter the
  hash, as in DPA. A sample's partition depends on its content only, so inserting or deleting one sample
  changes exactly one partition, and a clean sample lands in the same partition in every
  attack row of a suite.
* **Finite Aggregation** (Wang, Levine & Feizi): k·d subsets; h_i = (Σ uint8) mod (k·d), and
  d distinct shifts s_1..s_d drawn once from range(k·d) with a seeded generator (recorded by
  the caller); sample i is in the d subsets (h_i + s_j) mod (k·d). d = 1 with shift 0 is DPA.
* **Bagging** (Jia, Cao & Gong): N subsamples of k indices drawn uniformly **with
  replacement**, seeded per model, independent of content.

Within a subset the members are ordered by content (a BLAKE2 digest of their bytes and
label), so the data a base model trains on does not depend on the order of the training set.
"""

from __future__ import annotations

import hashlib

import numpy as np

from certsmooth.errors import ConfigError
from certsmooth.seeding import numpy_rng


def quantise(x: np.ndarray) -> np.ndarray:
    """The 8-bit values the hash reads: uint8 images as they are, float images in [0, 1] as
    round(255·clip(x, 0, 1))."""
    if x.dtype == np.uint8:
        return x
    return np.rint(np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


def content_hash(x: np.ndarray) -> np.ndarray:
    """Σ of each sample's 8-bit values (int64): x (N, ...) uint8 or float in [0, 1] → (N,)."""
    return quantise(x).reshape(len(x), -1).sum(axis=1, dtype=np.int64)


def content_order(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``index`` sorted by the content of its samples (a digest of their bytes and label): a
    subset's order that does not depend on where its samples sit in the dataset."""
    index = np.asarray(index, dtype=np.int64)
    keys = [hashlib.blake2b(np.ascontiguousarray(x[i]).tobytes() + int(y[i]).to_bytes(8, "little", signed=True),
                            digest_size=16).digest() for i in index]  # fmt: skip
    return index[np.argsort(np.array(keys, dtype="S16"), kind="stable")] if len(index) else index


def num_models(kind: str, count: dict) -> int:
    """Base models of a count certifier: k (DPA), k·d (FA), N (bagging)."""
    if kind == "dpa":
        return count["k"]
    if kind == "fa":
        return count["k"] * count["d"]
    if kind == "bagging":
        return count["models"]
    raise ConfigError(f"certifier kind {kind!r} is not a count certifier; allowed: dpa, fa, bagging")


def _hash_classes(x: np.ndarray, n: int, hashes: np.ndarray | None = None) -> list[np.ndarray]:
    """Indices of the samples of each hash value 0..n−1 (ascending); ``hashes``: x's
    :func:`content_hash`, when the caller has it already (about 1 s for CIFAR-10's floats)."""
    h = (content_hash(x) if hashes is None else hashes) % n
    order = np.argsort(h, kind="stable")
    return np.split(order, np.cumsum(np.bincount(h, minlength=n))[:-1])


def subset_sizes(kind: str, x: np.ndarray, count: dict, seed: int, hashes: np.ndarray | None = None) -> np.ndarray:
    """The training-set size of every base model (what :func:`certsmooth.lanes.step_lanes`
    groups by), from the hash counts alone: DPA's partition sizes, FA's subset sizes (the sum
    over the shifts), bagging's k for every model."""
    if kind == "bagging":
        return np.full(count["models"], count["k"], dtype=np.int64)
    n = num_models(kind, count)
    per_hash = np.bincount((content_hash(x) if hashes is None else hashes) % n, minlength=n)
    if kind == "dpa":
        return per_hash
    shifts = fa_shifts(count["k"], count["d"], seed)
    return sum(per_hash[(np.arange(n) - s) % n] for s in shifts)


def dpa_partitions(x: np.ndarray, y: np.ndarray, k: int, models=None, hashes=None) -> list[np.ndarray]:
    """The k DPA partitions (indices into x, each in content order); with ``models`` only
    those partitions, in that order."""
    if k < 1:
        raise ConfigError(f"dpa.k = {k}: need at least one partition")
    if k > len(x):
        raise ConfigError(f"dpa.k = {k}: more partitions than the {len(x)} training samples; use k ≤ {len(x)}")
    classes = _hash_classes(x, k, hashes)
    return [content_order(x, y, classes[p]) for p in (range(k) if models is None else models)]


def fa_shifts(k: int, d: int, seed: int) -> np.ndarray:
    """d distinct shifts from range(k·d), drawn with the seeded generator of ``seed``."""
    if d < 1:
        raise ConfigError(f"fa.d = {d}: need d ≥ 1 (d = 1 is DPA)")
    if k < 1:
        raise ConfigError(f"fa.k = {k}: need k ≥ 1")
    return np.sort(numpy_rng(seed, "fa-shifts").choice(k * d, size=d, replace=False)).astype(np.int64)


def fa_subsets(x: np.ndarray, y: np.ndarray, k: int, d: int, shifts: np.ndarray, models=None,
               hashes=None) -> list[np.ndarray]:  # fmt: skip
    """The k·d Finite Aggregation subsets (indices, each in content order); every sample is
    in exactly d of them: subset b holds the samples of hash h with (h + s_j) mod k·d = b for
    some shift s_j. With ``models`` only those subsets, in that order."""
    n = k * d
    shifts = np.asarray(shifts, dtype=np.int64)
    if shifts.shape != (d,) or len(set(shifts.tolist())) != d or shifts.min() < 0 or shifts.max() >= n:
        raise ConfigError(f"fa shifts {shifts.tolist()}: need {d} distinct values in 0..{n - 1}")
    if n > len(x):
        raise ConfigError(f"fa.k·d = {n}: more subsets than the {len(x)} training samples; lower k or d")
    classes = _hash_classes(x, n, hashes)
    return [content_order(x, y, np.concatenate([classes[(b - s) % n] for s in shifts]))
            for b in (range(n) if models is None else models)]  # fmt: skip


def fa_classifiers_of_hash(k: int, d: int, shifts: np.ndarray) -> np.ndarray:
    """(k·d, d): the subsets a sample of hash value h (row h) lands in."""
    n = k * d
    return (np.arange(n)[:, None] + np.asarray(shifts, dtype=np.int64)[None, :]) % n


def bagging_subsets(num_train: int, num_models: int, k: int, seed: int, models=None) -> np.ndarray:
    """(N, k) indices: model m's k training samples, drawn uniformly with replacement with
    the generator of (seed, m), so model m's subsample does not depend on N; with ``models``
    (ids in 0..N−1) only those rows, in that order (a training job draws its own models')."""
    if k < 1 or num_models < 1:
        raise ConfigError(f"bagging: need k ≥ 1 and N ≥ 1 models, got k = {k}, N = {num_models}")
    ids = range(num_models) if models is None else models
    return np.stack([numpy_rng(seed, "bagging", m).integers(0, num_train, size=k) for m in ids])
