"""``bench noise``: the counter-based noise in cache-sized chunks vs the whole tensor."""

from __future__ import annotations

import statistics

from certsmooth.bench.timing import interleaved, report

NOISE_SHAPES = {  # (keys, rows) of the library's calls on 28×28 images
    "training batch (lane of 5 × 128)": (5, 128),
    "Cohen CERTIFY batch (1 × 1000)": (1, 1000),
    "ensemble certification (lane of 10 × 212)": (10, 212),
}

HELP = "counter-based noise: cache-sized chunks vs the whole tensor"
DEVICE = True


def add_arguments(p) -> None:
    """Nothing beyond the common ``--repeats``, ``--json`` and ``--device``."""


def run(args) -> dict:
    """The counter-based noise (:func:`certsmooth.noise.standard_normal`) computed in cache
    -sized chunks (the library's CPU path) against the whole tensor at once (one chunk, as
    before the chunks; the same bits), for the shapes training, CERTIFY and certification
    ask for."""
    import torch

    from certsmooth import noise
    from certsmooth.device import resolve_device, synchronize

    dev = resolve_device(args.device)
    chunked = noise.CPU_CHUNK_BYTES

    def variant(keys, rows, chunk_bytes):
        def fn():
            noise.CPU_CHUNK_BYTES = chunk_bytes
            try:
                noise.standard_normal(keys, rows, 784)
                synchronize(dev)
            finally:
                noise.CPU_CHUNK_BYTES = chunked

        return fn

    times, sizes = {}, {}
    for what, (k, b) in NOISE_SHAPES.items():  # each shape's two variants interleaved on their own
        keys = torch.arange(1, k + 1, dtype=torch.int64, device=dev)
        rows = torch.arange(b, dtype=torch.int64, device=dev)
        times.update(interleaved({f"chunks, {what}": variant(keys, rows, chunked),
                                  f"whole tensor, {what}": variant(keys, rows, 2**62)}, args.repeats))  # fmt: skip
        sizes[what] = k * b * 784
    print(f"noise: standard_normal on {dev}, {torch.get_num_threads()} threads, chunks of {chunked} bytes per thread")
    print(report("  wall time", times))
    rates, speedup = {}, {}
    for what, n in sizes.items():
        for v in ("chunks", "whole tensor"):
            rates[f"{v}, {what}"] = n / statistics.median(times[f"{v}, {what}"])
        speedup[what] = rates[f"chunks, {what}"] / rates[f"whole tensor, {what}"]
        print(f"  {what:<44} {rates[f'chunks, {what}'] / 1e9:.3f} vs {rates[f'whole tensor, {what}'] / 1e9:.3f} "
              f"G normals/s: {speedup[what]:.2f}x")  # fmt: skip
    return {"device": str(dev), "chunk_bytes": chunked, "normals_per_s": rates, "speedup": speedup, "times_s": times}
