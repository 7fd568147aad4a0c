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


#: the CPU computes the noise in chunks of this many bytes of float32 output per intra-op
#: thread: the steps of the pipeline (hashes, uniforms, Box–Muller) work in place on a
#: chunk that stays in the cache instead of streaming ~20 full-size temporaries through
#: memory, and a chunk is large enough that the per-operation overhead does not dominate
#: (512 KiB is the fastest size at one thread on the Intel development machine; see
#: docs/benchmarks.md). The steps are elementwise, so every chunking gives the same bits.
CPU_CHUNK_BYTES = 512 * 1024


def _mix32_i32_(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 in place on int32 tensors: the same bits as :func:`_mix32` (int32 products
    wrap mod 2³²; the masks make the right shifts logical), on half the memory traffic."""
    x ^= (x >> 16) & 0xFFFF
    x *= _C1
    x ^= (x >> 15) & 0x1FFFF
    x *= _C2
    x ^= (x >> 16) & 0xFFFF
    return x


def _unit(u: torch.Tensor, offset: bool) -> torch.Tensor:
    """int32 words holding unsigned values → float32 (u [+ 0.5])·2⁻³²; the unsigned value
    goes through int64 (exact) before float32."""
    f = (u.to(torch.int64) & _M32).to(torch.float32)
    if offset:
        f += 0.5
    f *= 1.0 / 4294967296.0
    return f


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
    c2 = _as_i32(_mix32((cols * 2 + 1 + 0x165667B1) & _M32)) ^ _SALT
    h32 = _as_i32(h).reshape(-1, 1)
    n = h32.shape[0]
    out = torch.empty(n, half, 2, dtype=torch.float32, device=device)
    if device.type == "cpu":
        step = max(1, CPU_CHUNK_BYTES * torch.get_num_threads() // (8 * half))
    else:  # one chunk: a GPU kernel per step over the whole tensor
        step = max(n, 1)
    for s in range(0, n, step):
        hs = h32[s : s + step]
        # float32 arithmetic (about 2× cheaper than float64 here); (u + 0.5)·2⁻³² ≥ 1.2e-10
        # is never 0, so |z| ≤ 6.8
        r = _unit(_mix32_i32_(hs ^ c1), True).log_().mul_(-2.0).sqrt_()
        theta = _unit(_mix32_i32_(hs ^ c2), False).mul_(2.0 * math.pi)
        # pair j gives features 2j (cos) and 2j + 1 (sin): feature d does not depend on dim
        o = out[s : s + step]
        torch.mul(r, torch.cos(theta), out=o[..., 0])
        torch.mul(r, theta.sin_(), out=o[..., 1])
    z = out.reshape(*h.shape, 2 * half)[..., :dim]
    return z if z.dtype == dtype else z.to(dtype)
