"""``bench checkpoint``: resumable training, a checkpoint after every epoch vs none."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from certsmooth.bench.timing import _positive, demo_data, interleaved, report

HELP = "training with an epoch checkpoint after every epoch vs none"
DEVICE = True


def add_arguments(p) -> None:
    p.add_argument("--arch", default="mnist_cnn")
    p.add_argument("--models", type=_positive, default=10)
    p.add_argument("--epochs", type=_positive, default=4)
    p.add_argument("--batch", type=_positive, default=128)
    p.add_argument("--lane-width", type=_positive, default=5)


def run(args) -> dict:
    """Cost of resumable training: the partition trainer with a checkpoint after every
    epoch (``CERTSMOOTH_CHECKPOINT_EVERY_S=0``, the most frequent setting) vs none."""
    import os

    from certsmooth.device import resolve_device
    from certsmooth.lanes import lanes
    from certsmooth.smoothing.resume import ENV_EVERY
    from certsmooth.smoothing.train import TrainConfig, train_partition

    x, y, _, _ = demo_data()
    cfg = TrainConfig(args.arch, 1.0, args.epochs, args.batch, 1e-3, lane_width=args.lane_width)
    part = lanes(args.models, args.lane_width)
    sizes: list[int] = []

    def job(with_checkpoints: bool):
        def fn():
            if not with_checkpoints:
                return train_partition(x, y, part, 0, cfg, 2, args.device)
            with tempfile.TemporaryDirectory() as d:
                out = train_partition(x, y, part, 0, cfg, 2, args.device, checkpoint_dir=d)
                sizes.append(sum(p.stat().st_size for p in Path(d).iterdir()))
                return out

        return fn

    old = os.environ.get(ENV_EVERY)
    os.environ[ENV_EVERY] = "0"
    try:
        times = interleaved({"no checkpoints": job(False), "checkpoint after every epoch": job(True)}, args.repeats)
    finally:
        if old is None:
            os.environ.pop(ENV_EVERY)
        else:
            os.environ[ENV_EVERY] = old
    saves = args.epochs * len(part)
    print(report(
        f"checkpoint: {args.models} {args.arch} models in lanes of {args.lane_width}, {len(y)} images, "
        f"{args.epochs} epochs, device {resolve_device(args.device)}; {args.repeats} interleaved runs each",
        times,
    ))  # fmt: skip
    extra = statistics.median(times["checkpoint after every epoch"]) - statistics.median(times["no checkpoints"])
    print(f"  {saves} checkpoints per run ({len(part)} lanes x {args.epochs} epochs), "
          f"{statistics.median(sizes) / len(part) / 2**20:.2f} MiB per lane checkpoint; "
          f"median extra time per checkpoint: {1e3 * extra / saves:.1f} ms")  # fmt: skip
    return {"times_s": times, "checkpoints_per_run": saves, "extra_ms_per_checkpoint": 1e3 * extra / saves}
