"""Seed derivation.

Every random stream of an experiment derives from one root seed and a tuple of keys
(e.g. ``("poison",)`` or ``("model", 17)``) through SHA-256, so a stream never depends
on which job, partition or process draws it, nor on the order of draws elsewhere.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

_MASK63 = (1 << 63) - 1


def derive_seed(root: int, *keys: str | int) -> int:
    """A 63-bit seed that is a pure function of ``root`` and ``keys``.

    >>> derive_seed(0, "poison") == derive_seed(0, "poison")
    True
    """
    if isinstance(root, bool) or not isinstance(root, int):
        raise TypeError(f"root seed must be an int, got {root!r}")
    for k in keys:
        if isinstance(k, bool) or not isinstance(k, (int, str)):
            raise TypeError(f"seed keys must be int or str, got {k!r}")
    payload = json.dumps([root, *keys], separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little") & _MASK63


def numpy_rng(root: int, *keys: str | int) -> np.random.Generator:
    """A NumPy generator (PCG64) seeded by :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(root, *keys))
