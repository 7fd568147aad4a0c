"""Counter-based Gaussian noise: a pure function of (key, row, feature).

Training-time smoothing (RAB) needs one noise draw per (model, training example) that
stays fixed over all epochs. Materialising it would take M×N×D floats; instead each
entry is recomputed when its example is in a batch, from a 32-bit integer hash (Chris
Wellons' ``lowbias32``) of the model's key, the example index and the feature index,
turned into a standard normal by the Box–Muller transform. The same (key, row) gives
the same vector on every call, on any device, in any batch; different keys give
independent streams. Peak memory is that of the batch being built.
"""

from __future__ import annotations

import math

import torch

_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int64 tensors holding unsigned 32-bit values (wrapping arithmetic)."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def _signed(v: int) -> int:
    """An unsigned 32-bit constant as the int32 value with the same bits."""
    return v - (1 << 32) if v >= 1 << 31 else v


_C1, _C2, _SALT = _signed(0x7FEB352D), _signed(0x846CA68B), _signed(0x5BD1E995)


def _mix32_i32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on int32 tensors: the same bits as :func:`_mix32` (int32 products wrap mod
    2³²; the masks make the right shifts logical), on half the memory traffic."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * _C1
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * _C2
    return x ^ ((x >> 16) & 0xFFFF)


def _as_i32(x: torch.Tensor) -> torch.Tensor:
    """int64 tensors holding unsigned 32-bit values → int32 with the same bits."""
    return (x - ((x >> 31) << 32)).to(torch.int32)


def key_words(key: int) -> tuple[int, int]:
    """Split a 63-bit key (e.g. from :func:`certsmooth.seeding.derive_seed`) in two words."""
    return key & _M32, (key >> 32) & _M32


def row_hashes(keys: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """One 32-bit hash per (key, row): keys (K,) int64, rows (B,) or (K, B) int64 → (K, B)."""
    k0, k1 = keys & _M32, (keys >> 32) & _M32
    h = _mix32(_mix32(k0 ^ 0x9E3779B9) ^ k1)  # (K,)
    rows = rows if rows.ndim == 2 else rows[None, :]
    return _mix32(h[:, None] ^ ((rows * 0x85EBCA6B + 0x27D4EB2F) & _M32))


def standard_normal(keys: torch.Tensor, rows: torch.Tensor, dim: int, dtype=torch.float32) -> torch.Tensor:
    """Standard-normal noise of shape (K, B, dim) for ``keys`` (K,) and ``rows`` (B,)
    (the same rows for every key) or (K, B) (rows per key; row indices < 2³²).

    Entry (k, b, d) depends only on (keys[k], row, d).
    """
    device = keys.device
    h = row_hashes(keys.to(torch.int64), rows.to(device=device, dtype=torch.int64))  # (K, B)
    half = (dim + 1) // 2
    cols = torch.arange(half, device=device, dtype=torch.int64)
    c1 = _as_i32(_mix32((cols * 2 + 0x165667B1) & _M32))  # (half,)
    c2 = _as_i32(_mix32((cols * 2 + 1 + 0x165667B1) & _M32))
    h32 = _as_i32(h)[..., None]
    u1 = _mix32_i32(h32 ^ c1)  # (K, B, half): the big tensors in int32
    u2 = _mix32_i32(h32 ^ c2 ^ _SALT)
    # float32 arithmetic (about 2× cheaper than float64 here); (u + 0.5)·2⁻³² ≥ 1.2e-10 is
    # never 0, so |z| ≤ 6.8. The unsigned value goes through int64 (exact) before float32.
    scale = 1.0 / 4294967296.0
    f1 = ((u1.to(torch.int64) & _M32).to(torch.float32) + 0.5) * scale
    f2 = (u2.to(torch.int64) & _M32).to(torch.float32) * scale
    r = torch.sqrt(-2.0 * torch.log(f1))
    theta = (2.0 * math.pi) * f2
    # pair j gives features 2j (cos) and 2j + 1 (sin): feature d does not depend on dim
    z = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1).reshape(*h.shape, 2 * half)[..., :dim]
    return z if z.dtype == dtype else z.to(dtype)
