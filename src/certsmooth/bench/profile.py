"""``bench profile``: one training step of a lane, phase by phase."""

from __future__ import annotations

import contextlib
import statistics
import time

from certsmooth.bench.timing import ARCH_SHAPES, _positive, memory_format, train_data

HELP = "one training step of a lane, phase by phase"
DEVICE = True


def add_arguments(p) -> None:
    p.add_argument("--arch", default="mnist_cnn", choices=sorted(ARCH_SHAPES))
    p.add_argument("--images", type=_positive, default=2000)
    p.add_argument("--lane-width", type=_positive, default=5)
    p.add_argument("--batch", type=_positive, default=128)
    p.add_argument("--steps", type=_positive, default=20)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")


def run(args) -> dict:
    """Where a training step of one lane goes: noise and batch gather, forward, backward
    and the optimizer step, each timed with the device synchronised around it (median of
    ``--steps`` steps after warm-up). Also the counter-based noise's throughput."""
    import numpy as np
    import torch

    from certsmooth.device import resolve_device, synchronize
    from certsmooth.models import WideEnsemble, build_model
    from certsmooth.noise import standard_normal
    from certsmooth.smoothing.train import loss_per_model

    dev = resolve_device(args.device)
    x, y = train_data(args.arch, args.images)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
    k, b, dim = args.lane_width, args.batch, int(np.prod(x.shape[1:]))
    classes = int(y.max()) + 1
    with memory_format(args.channels_last):
        net = WideEnsemble([build_model(args.arch, x.shape[1:], classes, seed=i) for i in range(k)]).to(dev).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
        keys = torch.arange(1, k + 1, dtype=torch.int64, device=dev)
        g = torch.Generator().manual_seed(0)
        phases: dict[str, list[float]] = {"noise + gather": [], "forward + loss": [], "backward": [], "adam step": []}
        autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()

        def timed(name, fn, record):
            synchronize(dev)
            t0 = time.perf_counter()
            out = fn()
            synchronize(dev)
            if record:
                phases[name].append(time.perf_counter() - t0)
            return out

        for step in range(args.steps + 3):
            rec = step >= 3
            idx = torch.stack([torch.randperm(len(y), generator=g)[:b] for _ in range(k)]).to(dev)
            xb = timed("noise + gather", lambda: xt[idx] + standard_normal(keys, idx, dim).reshape(*idx.shape, *x.shape[1:]), rec)  # noqa: E501,B023
            with autocast:
                losses = timed("forward + loss", lambda: loss_per_model(net(xb).float(), yt[idx]), rec)  # noqa: B023
            opt.zero_grad(set_to_none=True)
            timed("backward", lambda: losses.sum().backward(), rec)  # noqa: B023
            timed("adam step", opt.step, rec)
    med = {p: statistics.median(ts) * 1e3 for p, ts in phases.items()}
    total = sum(med.values())
    n_noise = 20
    big = torch.arange(4096 if dev.type == "cuda" else 256, device=dev)
    times = []
    for i in range(n_noise + 2):
        synchronize(dev)
        t0 = time.perf_counter()
        standard_normal(keys, big[None].expand(k, -1), dim)
        synchronize(dev)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    noise_rate = k * len(big) * dim / statistics.median(times)
    print(f"profile: one training step of a lane of {k} {args.arch} models, batch {b}, device {dev}, bf16 {args.bf16}, "
          f"channels-last {args.channels_last}; median of {args.steps} steps (ms, synchronised per phase)")  # fmt: skip
    for p, v in med.items():
        print(f"  {p:<16} {v:>9.3f} ms  {100 * v / total:>5.1f}%")
    print(f"  {'step':<16} {total:>9.3f} ms  = {k * b / total * 1e3:.0f} sample-steps/s")
    print(f"  counter-based noise: {noise_rate / 1e9:.2f} G normals/s")
    return {"arch": args.arch, "lane_width": k, "batch": b, "device": str(dev), "bf16": args.bf16,
            "channels_last": args.channels_last, "phase_ms": med, "step_ms": total,
            "sample_steps_per_s": k * b / total * 1e3, "noise_normals_per_s": noise_rate}  # fmt: skip
