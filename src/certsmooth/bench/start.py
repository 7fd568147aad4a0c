"""``bench start``: a training job's start, torch.optim.Adam vs certsmooth's CPU Adam."""

from __future__ import annotations

import statistics

from certsmooth.bench.timing import interleaved, report

_START = (
    "import torch\n"
    "from certsmooth.models import build_model\n"
    "from certsmooth.smoothing.adam import adam\n"
    "m = build_model('mnist_cnn', (1, 28, 28), 2, seed=0)\n"
    "opt = {optimizer}(m.parameters(), lr=1e-3, fused=True)\n"
    "m(torch.rand(8, 1, 28, 28)).sum().backward()\n"
    "opt.step()\n"
)

HELP = "a training job's start: torch.optim.Adam vs certsmooth's CPU Adam"
DEVICE = False


def add_arguments(p) -> None:
    """Nothing beyond the common ``--repeats`` and ``--json``."""


def run(args) -> dict:
    """What a training job pays before its first step, in a fresh process each time: Python,
    torch and the library, a model, its optimiser and one step, with torch.optim.Adam (its
    first use imports torch._dynamo) and with certsmooth's CPU Adam (smoothing.adam)."""
    import subprocess
    import sys

    codes = {"torch.optim.Adam": "torch.optim.Adam", "certsmooth smoothing.adam": "adam"}
    codes = {name: _START.format(optimizer=opt) for name, opt in codes.items()}
    variants = {name: (lambda c=c: subprocess.run([sys.executable, "-c", c], check=True)) for name, c in codes.items()}
    times = interleaved(variants, args.repeats, warmup=1)
    print(report("start: a fresh process up to the first training step (ratio to torch.optim.Adam)", times))
    med = {k: statistics.median(v) for k, v in times.items()}
    saved = med["torch.optim.Adam"] - med["certsmooth smoothing.adam"]
    print(f"  saved per training job: {saved:.3f} s")
    return {"times_s": times, "saved_per_job_s": saved}
