"""What the benchmarks share: interleaved rounds and their report, the device's dense
matmul rate and a model's FLOPs per sample, the data they train and certify on, the wide
networks' memory format, and the argument types and training arguments of their command
lines. No torch at import: each helper imports what it needs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable


def interleaved(variants: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times (s) of each variant over ``repeats`` interleaved rounds."""
    if repeats < 5:
        raise ValueError("repeats must be at least 5")
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def report(title: str, times: dict[str, list[float]]) -> str:
    base = statistics.median(next(iter(times.values())))
    lines = [title, f"  {'variant':<34} {'median':>10} {'min':>10} {'max':>10} {'ratio':>7}"]
    for name, ts in times.items():
        med = statistics.median(ts)
        lines.append(
            f"  {name:<34} {med * 1e3:>8.2f}ms {min(ts) * 1e3:>8.2f}ms {max(ts) * 1e3:>8.2f}ms {med / base:>7.2f}"
        )
    return "\n".join(lines)


def demo_data():
    """The embedded mnist5k 0-vs-1 task: training images, labels, test images, labels."""
    from certsmooth.data.prepared import prepare

    parts = prepare("mnist5k", [0, 1], {"test_fraction": 0.2, "seed": 0}, "unused")
    return parts["train"].floats(), parts["train"].y, parts["test"].floats(), parts["test"].y


ARCH_SHAPES = {"mnist_cnn": (1, 28, 28), "preact_resnet32": (3, 32, 32), "nin": (1, 28, 28), "resnet18": (3, 64, 64)}


def train_data(arch: str, images: int):
    """Training images and labels for ``arch``: the embedded mnist5k 0-vs-1 task (800
    images) for the MNIST CNN; seeded uniform random images of the architecture's input
    shape and random binary labels otherwise (throughput does not depend on the values)."""
    import numpy as np

    if arch == "mnist_cnn":
        x, y, _, _ = demo_data()
        return x, y
    rng = np.random.default_rng(0)
    return rng.random((images, *ARCH_SHAPES[arch]), dtype=np.float32), rng.integers(0, 2, images)


def matmul_tflops(device, dtype: str = "fp32", n: int | None = None, repeats: int = 7) -> float:
    """Median TFLOP/s of an n×n matrix product (fp32 without TF32, or bf16), timed one
    product at a time after warm-up: the device's practical dense-matmul rate in this run.
    n defaults to 8192 on CUDA and 2048 on the CPU."""
    import torch

    from certsmooth.device import synchronize

    n = n or (8192 if device.type == "cuda" else 2048)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=g).to(dt)
    b = torch.randn(n, n, device=device, generator=g).to(dt)
    ts = []
    for i in range(repeats + 2):
        synchronize(device)
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        if i >= 2:
            ts.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(ts) / 1e12


def flops_per_sample_step(arch: str, shape, batch: int) -> float:
    """FLOPs of one forward + backward of one base model, per training sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from certsmooth.models import build_model

    model = build_model(arch, shape, 2)
    x = torch.rand(batch, *shape)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops() / batch


@contextlib.contextmanager
def memory_format(channels_last: str):
    """The wide networks' memory format for one run: ``auto`` (channels-last on the CPU
    only, the library's choice), ``on`` or ``off``."""
    from certsmooth.models.wide import WideEnsemble

    old = WideEnsemble.channels_last
    WideEnsemble.channels_last = {"auto": None, "on": True, "off": False}[channels_last]
    try:
        yield
    finally:
        WideEnsemble.channels_last = old


# argument types: argparse names the function in its message on a bad value (``invalid _positive value``)
def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1")
    return n


def _repeats(value: str) -> int:
    n = int(value)
    if n < 5:
        raise argparse.ArgumentTypeError(f"{value}: benchmarks repeat every variant at least 5 times")
    return n


def training_arguments(p, models: int, what: str, epochs: int, batch: int, lane_width: int) -> None:
    """The data and sizes a training benchmark takes (``train``, ``count``)."""
    p.add_argument("--arch", default="mnist_cnn", choices=sorted(ARCH_SHAPES))
    p.add_argument("--images", type=_positive, default=2000, help="random training images for archs other "
                   "than mnist_cnn (which uses the 800 mnist5k 0-vs-1 images)")  # fmt: skip
    p.add_argument("--models", type=_positive, default=models, help=what)
    p.add_argument("--reference-models", type=int, default=0, help="models of the one-at-a-time variants "
                   "(default: --models); rates are per model")  # fmt: skip
    p.add_argument("--epochs", type=_positive, default=epochs)
    p.add_argument("--batch", type=_positive, default=batch)
    p.add_argument("--lane-width", type=_positive, default=lane_width)
