"""Counter-based training noise: a pure function of (key, row, feature), standard normal."""

import numpy as np
import pytest
import torch
from scipy import stats

from certsmooth.noise import standard_normal


def test_pure_function_of_key_row_feature():
    keys = torch.tensor([11, 2**62 + 5, 7])
    a = standard_normal(keys, torch.arange(10), 50)
    b = standard_normal(keys[[2, 0]], torch.tensor([[9, 3], [4, 0]]), 50)
    assert torch.equal(b[0, 0], a[2, 9]) and torch.equal(b[1, 1], a[0, 0]) and torch.equal(b[1, 0], a[0, 4])
    # the first d features do not depend on the requested length
    assert torch.equal(standard_normal(keys, torch.arange(3), 7), standard_normal(keys, torch.arange(3), 50)[..., :7])


def test_distribution_is_standard_normal():
    z = standard_normal(torch.arange(20), torch.arange(200), 101).numpy().ravel()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(stats.skew(z)) < 0.02 and abs(stats.kurtosis(z)) < 0.05


def test_streams_are_uncorrelated():
    z = standard_normal(torch.arange(6), torch.arange(400), 64).reshape(6, -1).numpy()
    corr = np.corrcoef(z)
    off = corr[~np.eye(6, dtype=bool)]
    assert np.abs(off).max() < 0.03  # 25,600 samples per stream: |ρ| ~ 0.006
    # neighbouring rows and features of one key are uncorrelated too
    rows = standard_normal(torch.tensor([3]), torch.arange(5000), 2)[0].numpy()
    assert abs(np.corrcoef(rows[:-1, 0], rows[1:, 0])[0, 1]) < 0.05
    assert abs(np.corrcoef(rows[:, 0], rows[:, 1])[0, 1]) < 0.05


def _reference(keys, rows, dim):
    """The int64 implementation the int32 hashing and the CPU chunks replaced: every step
    on the whole (K, B, dim/2) tensor."""
    import math

    from certsmooth.noise import _M32, _mix32, row_hashes

    h = row_hashes(keys, rows)
    half = (dim + 1) // 2
    cols = torch.arange(half, dtype=torch.int64)
    c1, c2 = _mix32((cols * 2 + 0x165667B1) & _M32), _mix32((cols * 2 + 1 + 0x165667B1) & _M32)
    u1, u2 = _mix32(h[..., None] ^ c1), _mix32(h[..., None] ^ c2 ^ 0x5BD1E995)
    f1 = (u1.to(torch.float32) + 0.5) / 4294967296.0
    f2 = u2.to(torch.float32) / 4294967296.0
    r, theta = torch.sqrt(-2.0 * torch.log(f1)), (2.0 * math.pi) * f2
    return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1).reshape(*h.shape, 2 * half)[..., :dim]


@pytest.mark.parametrize("chunk_bytes", [1, 3000, 256 * 1024, 2**40])
def test_cpu_chunks_give_the_whole_tensor_bits(monkeypatch, chunk_bytes):
    """On the CPU the noise is computed CPU_CHUNK_BYTES of output at a time (in place, in
    cache): every chunk size, one row per chunk up to all rows in one, gives the bits of the
    whole-tensor computation, for even and odd dim and rows shared or per key."""
    from certsmooth import noise

    monkeypatch.setattr(noise, "CPU_CHUNK_BYTES", chunk_bytes)
    g = torch.Generator().manual_seed(1)
    keys = torch.randint(0, 2**62, (4,), generator=g, dtype=torch.int64)
    for rows, dim in ((torch.arange(131), 784), (torch.randint(0, 2**31, (4, 29), generator=g), 3 * 32 * 32 + 1),
                      (torch.arange(5), 1)):  # fmt: skip
        z = standard_normal(keys, rows, dim)
        assert z.shape == (4, rows.shape[-1], dim) and z.dtype == torch.float32
        assert torch.equal(z, _reference(keys, rows, dim))


def test_int32_hashing_gives_the_int64_bits():
    """The noise hashes its big tensors in int32 (wrapping products, masked shifts): every
    value equals the int64 reference of the original implementation, bit for bit."""
    g = torch.Generator().manual_seed(0)
    keys = torch.randint(0, 2**62, (3,), generator=g, dtype=torch.int64)
    for rows, dim in ((torch.arange(257), 784), (torch.randint(0, 2**31, (3, 33), generator=g), 3 * 32 * 32 + 1)):
        assert torch.equal(standard_normal(keys, rows, dim), _reference(keys, rows, dim))
