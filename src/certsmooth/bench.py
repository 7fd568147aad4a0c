"""Benchmarks: interleaved repeats, medians and ratios.

Machines here have sporadic slowdowns of up to 25×, so variants are never timed in
blocks: every round runs each variant once, in turn, and the report gives the median
per variant and its ratio to the first one.

    python -m certsmooth.bench data        # data steps (CSV reader, triggers, poisoning)
    python -m certsmooth.bench train       # partition trainer vs one-model-at-a-time loops
    python -m certsmooth.bench profile     # one training step of a lane, phase by phase
    python -m certsmooth.bench count       # count certifiers' subset trainer vs one model at a time
    python -m certsmooth.bench certify     # ensemble certification: model evaluations per second
    python -m certsmooth.bench cohen       # Cohen et al.'s CERTIFY: noisy forward passes per second
    python -m certsmooth.bench sigma       # Cert-SSB σ ascent: vectorised vs per-model loop
    python -m certsmooth.bench bilevel     # Mehra et al.'s ApproxGrad: one epoch per victim method
    python -m certsmooth.bench checkpoint  # resumable training: a checkpoint every epoch vs none

(`certsmooth bench ...` is the same.) Every benchmark takes ``--device`` and ``--json
PATH`` (the figures as JSON, as ``bench/gpu.sh`` collects them). ``train`` runs every
(variant, repeat) in a fresh process so that each run's peak RSS is its own, or all in
one process with ``--in-process``; either way each variant is warmed up (lazy imports,
CUDA and cuDNN start-up) before its timer starts.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from certsmooth.heap import keep_freed_blocks


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


def bench_data(args) -> None:
    import numpy as np

    from certsmooth.attacks.poison import poison_training_set
    from certsmooth.attacks.store import build_record, write_poisoned
    from certsmooth.attacks.triggers import make_trigger
    from certsmooth.data.prepared import prepare, save_prepared

    parts = prepare("mnist5k", list(range(10)), {"test_fraction": 0.2, "seed": 0}, "unused")
    train, test = parts["train"], parts["test"]
    print(f"data: mnist5k, all 10 classes, {train.y.size} training / {test.y.size} test images")

    from certsmooth.data.sources import SOURCES

    src = SOURCES["mnist5k"]
    path = src.raw_files(Path("unused"))[0]
    print(report("read the embedded mnist5k CSV (ratio to pandas)", interleaved(
        {
            "pandas.read_csv (used)": lambda: src.read_table(path, "pandas"),
            "np.loadtxt": lambda: src.read_table(path, "numpy"),
            "prepare 0/1 end to end": lambda: prepare("mnist5k", [0, 1], {"test_fraction": 0.2, "seed": 0}, "unused"),
        },
        args.repeats,
    )))  # fmt: skip

    x = train.floats()
    triggers = {
        name: make_trigger(spec)
        for name, spec in {
            "onepixel": {"name": "onepixel", "delta": 1.0},
            "fourpixel": {"name": "fourpixel", "delta": 1.0},
            "blending": {"name": "blending", "delta": 1.0},
            "badnets": {"name": "badnets"},
            "blend": {"name": "blend"},
        }.items()
    }
    print(report(
        f"trigger.apply on {x.shape[0]} images (ratio to onepixel)",
        interleaved({k: (lambda t=t: t.apply(x)) for k, t in triggers.items()}, args.repeats),
    ))  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        trig = triggers["onepixel"]
        attack = {"kind": "backdoor", "trigger": {"name": "onepixel", "delta": 1.0}, "rate": 0.1, "target": 0}

        def poison_and_write():
            from certsmooth.attacks.poison import trigger_test_set

            p = poison_training_set(train, trig, 0.1, 0, 0)
            t = trigger_test_set(test, trig, 0)
            write_poisoned(
                Path(tmp) / "p", build_record("b/b", attack, 0, trig, train, test, p, t), trig, train, test, p, t
            )

        print(report("poison 10% + write the five files (ratio to save_prepared)", interleaved(
            {
                "save_prepared (uint8 train)": lambda: save_prepared(Path(tmp) / "t.npz", train),
                "poison + write_poisoned": poison_and_write,
                "np.savez float32 train (reference)": lambda: np.savez(Path(tmp) / "r.npz", x=x),
            },
            args.repeats,
        )))  # fmt: skip


def _demo_data():
    from certsmooth.data.prepared import prepare

    parts = prepare("mnist5k", [0, 1], {"test_fraction": 0.2, "seed": 0}, "unused")
    return parts["train"].floats(), parts["train"].y, parts["test"].floats(), parts["test"].y


ARCH_SHAPES = {"mnist_cnn": (1, 28, 28), "preact_resnet32": (3, 32, 32), "nin": (1, 28, 28), "resnet18": (3, 64, 64)}


def _train_data(arch: str, images: int):
    """Training images and labels for ``arch``: the embedded mnist5k 0-vs-1 task (800
    images) for the MNIST CNN; seeded uniform random images of the architecture's input
    shape and random binary labels otherwise (throughput does not depend on the values)."""
    import numpy as np

    if arch == "mnist_cnn":
        x, y, _, _ = _demo_data()
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


TRAIN_VARIANTS = {
    "partition": "partition trainer (wide lanes)",
    "reference": "reference loop (RAB-style)",
    "plain": "plain loop (data on device)",
}


@contextlib.contextmanager
def _memory_format(channels_last: str):
    """The wide networks' memory format for one run: ``auto`` (channels-last on the CPU
    only, the library's choice), ``on`` or ``off``."""
    from certsmooth.models.wide import WideEnsemble

    old = WideEnsemble.channels_last
    WideEnsemble.channels_last = {"auto": None, "on": True, "off": False}[channels_last]
    try:
        yield
    finally:
        WideEnsemble.channels_last = old


def _train_run(variant: str, x, y, models: int, epochs: int, dev, batch: int, lane_width: int, arch: str,
               bf16: bool = False, channels_last: str = "auto") -> dict:  # fmt: skip
    """One timed training run of ``models`` models for ``epochs`` epochs on (x, y)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from certsmooth.device import synchronize
    from certsmooth.lanes import lanes
    from certsmooth.models import build_model
    from certsmooth.smoothing.train import TrainConfig, loss_per_model, model_seeds, train_partition

    cfg = TrainConfig(arch, 1.0, epochs, batch, 1e-3, lane_width=lane_width, bf16=bf16)
    classes = int(np.max(y)) + 1
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    synchronize(dev)
    t0 = time.perf_counter()
    if variant == "partition":
        with _memory_format(channels_last):
            train_partition(x, y, lanes(models, lane_width), 0, cfg, classes, str(dev))
    elif variant == "reference":  # RAB's public code: noisy copies in a Dataset, a DataLoader, per-batch copies

        class Smoothed(torch.utils.data.Dataset):
            def __init__(self, gen):
                self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
                self.noise = torch.randn(self.x.shape, generator=gen) * cfg.sigma

            def __len__(self):
                return len(self.x)

            def __getitem__(self, i):
                return self.x[i] + self.noise[i], self.y[i]

        for i in range(models):
            seeds = model_seeds(0, i)
            gen = torch.Generator().manual_seed(seeds["train_noise"])
            model = build_model(arch, x.shape[1:], classes, seed=seeds["init"]).to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            loader = torch.utils.data.DataLoader(Smoothed(gen), batch_size=batch, shuffle=True, generator=gen)
            for _ in range(epochs):
                for xb, yb in loader:
                    xb, yb = xb.to(dev), yb.to(dev)
                    loss = F.binary_cross_entropy_with_logits(model(xb)[:, 0], yb.float())
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
    elif variant == "plain":  # one model after another, data and fixed noise on the device, fused Adam
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
        for i in range(models):
            seeds = model_seeds(0, i)
            gen = torch.Generator().manual_seed(seeds["train_noise"])
            noise = (torch.randn(xt.shape, generator=gen) * cfg.sigma).to(dev)
            model = build_model(arch, x.shape[1:], classes, seed=seeds["init"]).to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
            for _ in range(epochs):
                perm = torch.randperm(len(y), generator=gen).to(dev)
                for s in range(0, len(y), batch):
                    idx = perm[s : s + batch]
                    loss = loss_per_model(model(xt[idx] + noise[idx])[None], yt[idx][None])[0]
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
    else:
        raise ValueError(f"unknown training variant {variant!r}")
    synchronize(dev)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "sample_steps_per_s": models * epochs * len(y) / wall,
        "models_per_hour": 3600 * models / wall,
        "peak_gpu_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else 0.0,
    }


def _train_warmup(variant: str, x, y, dev, batch: int, lane_width: int, arch: str, bf16: bool, channels_last: str):
    """One small run of the variant (one lane, one epoch on one batch) before any timer:
    pays lazy imports (the first Adam imports torch._dynamo), CUDA and cuDNN start-up."""
    k = lane_width if variant == "partition" else 1
    _train_run(variant, x[:batch], y[:batch], k, 1, dev, batch, lane_width, arch, bf16, channels_last)


def _cudnn_autotune() -> None:
    """cuDNN's autotuned, possibly non-deterministic kernels instead of the deterministic ones
    the library uses (``certsmooth.device``): what determinism costs, for the benchmark only."""
    import torch

    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True
    torch.use_deterministic_algorithms(False)


def _train_one(spec: dict) -> dict:
    """One timed run in its own process (``bench train`` without ``--in-process``): warm-up,
    then the run; adds the process's peak RSS."""
    import resource

    import torch

    from certsmooth.device import resolve_device

    dev = resolve_device(spec["device"])
    if spec.get("cudnn_benchmark"):
        _cudnn_autotune()
    x, y = _train_data(spec["arch"], spec["images"])
    v, k = spec["variant"], spec["models"]
    opts = dict(bf16=spec["bf16"], channels_last=spec["channels_last"])
    _train_warmup(v, x, y, dev, spec["batch"], spec["lane_width"], spec["arch"], **opts)
    out = _train_run(v, x, y, k, spec["epochs"], dev, spec["batch"], spec["lane_width"], spec["arch"], **opts)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = torch.get_num_threads()
    return out


def bench_train(args) -> dict:
    """The partition trainer against one-model-at-a-time loops at equal work per model.
    Interleaved rounds; each (variant, round) in a fresh process (own peak RSS) or, with
    ``--in-process``, all in this one after one warm-up run per variant. The loops may train
    fewer models (``--reference-models``): their rate per model does not depend on M."""
    import json
    import subprocess
    import sys

    import torch

    from certsmooth.device import resolve_device

    dev = resolve_device(args.device)
    if args.cudnn_benchmark:
        _cudnn_autotune()
    x, y = _train_data(args.arch, args.images)
    chosen = [v.strip() for v in args.variants.split(",")]
    unknown = sorted(set(chosen) - set(TRAIN_VARIANTS))
    if unknown:
        raise SystemExit(f"bench train: unknown variants {unknown}; choose from {', '.join(TRAIN_VARIANTS)}")
    models = {v: args.models if v == "partition" else (args.reference_models or args.models) for v in chosen}
    opts = dict(bf16=args.bf16, channels_last=args.channels_last)
    if args.in_process:
        for v in chosen:
            _train_warmup(v, x, y, dev, args.batch, args.lane_width, args.arch, **opts)
    runs: dict[str, list[dict]] = {v: [] for v in chosen}
    for r in range(args.repeats):
        for v in chosen:
            if args.in_process:
                res = _train_run(v, x, y, models[v], args.epochs, dev, args.batch, args.lane_width, args.arch, **opts)
            else:
                spec = dict(variant=v, models=models[v], epochs=args.epochs, device=args.device, batch=args.batch,
                            lane_width=args.lane_width, arch=args.arch, images=args.images,
                            cudnn_benchmark=args.cudnn_benchmark, **opts)  # fmt: skip
                cmd = [sys.executable, "-m", "certsmooth.bench", "_train-one", json.dumps(spec)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                res = json.loads(out.strip().splitlines()[-1])
            runs[v].append(res)
            print(f"  round {r + 1}/{args.repeats} {TRAIN_VARIANTS[v]}: {res['wall_s']:.2f} s", flush=True)
    peaks = {"fp32": matmul_tflops(dev, "fp32")}
    if dev.type == "cuda" or args.bf16:
        peaks["bf16"] = matmul_tflops(dev, "bf16")
    shape = tuple(x.shape[1:])
    fps = flops_per_sample_step(args.arch, shape, args.batch)
    result = {
        "arch": args.arch, "images": int(len(y)), "input_shape": list(shape), "epochs": args.epochs,
        "batch": args.batch, "lane_width": args.lane_width, "models": models, "device": str(dev),
        "bf16": args.bf16, "channels_last": args.channels_last, "cudnn_benchmark": args.cudnn_benchmark,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats, "in_process": args.in_process, "flops_per_sample_step": fps,
        "matmul_tflops": peaks, "variants": {},
    }  # fmt: skip
    print(
        f"train: {args.arch}, {len(y)} images, {args.epochs} epochs, batch {args.batch}, lane width "
        f"{args.lane_width}, device {dev}, bf16 {args.bf16}, channels-last {args.channels_last}, "
        f"{torch.get_num_threads()} threads; models {models}; {args.repeats} interleaved runs each"
        f"{' in one process' if args.in_process else ', each in its own process'}"
    )
    print("  dense matmul (median of 7): " + ", ".join(f"{k} {v:.2f} TFLOP/s" for k, v in peaks.items())
          + f"; one sample-step (fwd+bwd) = {fps / 1e6:.2f} MFLOP")  # fmt: skip
    print(f"  {'variant':<32} {'wall med':>9} {'samples/s':>11} {'models/h':>10} {'TFLOP/s':>8} "
          + " ".join(f"{'% ' + k:>7}" for k in peaks) + f" {'RSS MiB':>8} {'GPU MiB':>8}")  # fmt: skip
    for v, rs in runs.items():
        sps = statistics.median(r["sample_steps_per_s"] for r in rs)
        tflops = sps * fps / 1e12
        fig = {
            "wall_s_median": statistics.median(r["wall_s"] for r in rs),
            "wall_s": [r["wall_s"] for r in rs],
            "sample_steps_per_s": sps,
            "models_per_hour": statistics.median(r["models_per_hour"] for r in rs),
            "tflops": tflops,
            "fraction_of_matmul": {k: tflops / p for k, p in peaks.items()},
            "peak_gpu_mib": max(r["peak_gpu_mib"] for r in rs),
            "peak_rss_mib": max((r.get("peak_rss_mib", 0.0) for r in rs), default=0.0),
        }
        result["variants"][v] = fig
        print(f"  {TRAIN_VARIANTS[v]:<32} {fig['wall_s_median']:>8.2f}s {sps:>11.0f} {fig['models_per_hour']:>10.0f} "
              f"{tflops:>8.3f} " + " ".join(f"{100 * f:>6.1f}%" for f in fig["fraction_of_matmul"].values())
              + f" {fig['peak_rss_mib']:>8.0f} {fig['peak_gpu_mib']:>8.0f}")  # fmt: skip
    if "partition" in runs:
        mph = result["variants"]["partition"]["models_per_hour"]
        result["speedup_models_per_hour"] = {v: mph / f["models_per_hour"] for v, f in result["variants"].items()
                                             if v != "partition"}  # fmt: skip
        for v, s in result["speedup_models_per_hour"].items():
            print(f"  partition trainer vs {TRAIN_VARIANTS[v]}: {s:.2f}x models/hour")
    return result


def bench_profile(args) -> dict:
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
    x, y = _train_data(args.arch, args.images)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
    k, b, dim = args.lane_width, args.batch, int(np.prod(x.shape[1:]))
    classes = int(y.max()) + 1
    with _memory_format(args.channels_last):
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


def bench_checkpoint(args) -> dict:
    """Cost of resumable training: the partition trainer with a checkpoint after every
    epoch (``CERTSMOOTH_CHECKPOINT_EVERY_S=0``, the most frequent setting) vs none."""
    import os

    from certsmooth.device import resolve_device
    from certsmooth.lanes import lanes
    from certsmooth.smoothing.resume import ENV_EVERY
    from certsmooth.smoothing.train import TrainConfig, train_partition

    x, y, _, _ = _demo_data()
    cfg = TrainConfig(args.arch, 1.0, args.epochs, args.batch, 1e-3, lane_width=args.lane_width)
    part = lanes(args.models, args.lane_width)
    sizes: list[int] = []

    def run(with_checkpoints: bool):
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
        times = interleaved({"no checkpoints": run(False), "checkpoint after every epoch": run(True)}, args.repeats)
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


def bench_count(args) -> dict:
    """The count certifiers' subset trainer (the models of a lane train together, each on
    its own DPA partition) against one model at a time: the same trainer with lanes of one,
    and a plain loop (torch.optim.Adam, one model after another, as the reference test of
    ``tests/test_aggregation.py``). Models per hour at equal work."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from certsmooth.aggregation.train import SubsetTrainConfig, model_seeds, train_subsets
    from certsmooth.data.partition import dpa_partitions
    from certsmooth.device import resolve_device
    from certsmooth.models import build_model

    dev = resolve_device(args.device)
    x, y = _train_data(args.arch, args.images)
    parts = dpa_partitions(x, y, args.models)
    subsets = dict(enumerate(parts))
    cfg = SubsetTrainConfig(args.arch, args.epochs, args.batch, 1e-3, args.lane_width)
    one = SubsetTrainConfig(args.arch, args.epochs, args.batch, 1e-3, 1)
    n_ref = args.reference_models or args.models
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(dev)
    classes = int(y.max()) + 1

    def plain():
        for m in range(n_ref):
            s = model_seeds(0, m)
            model = build_model(args.arch, x.shape[1:], classes, seed=s["init"], check=False).to(dev).train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(s["shuffle"])
            rows = torch.as_tensor(subsets[m])
            for _ in range(args.epochs):
                order = rows[torch.randperm(len(rows), generator=gen)].to(dev)
                for start in range(0, len(order), args.batch):
                    b = order[start : start + args.batch]
                    out = model(xt[b])
                    loss = (F.binary_cross_entropy_with_logits(out[:, 0], yt[b].float()) if classes == 2
                            else F.cross_entropy(out, yt[b]))  # fmt: skip
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    ref_subsets = {m: subsets[m] for m in range(n_ref)}
    variants = {
        f"subset trainer (lanes of {args.lane_width})": lambda: train_subsets(x, y, subsets, 0, cfg, classes, str(dev)),
        "one model at a time (lanes of 1)": lambda: train_subsets(x, y, ref_subsets, 0, one, classes, str(dev)),
        "plain loop (torch.optim.Adam)": plain,
    }
    times = interleaved(variants, args.repeats)
    sizes = [len(p) for p in parts]
    print(f"count: {args.models} DPA partitions of {len(x)} {args.arch} images ({min(sizes)}-{max(sizes)} each), "
          f"{args.epochs} epochs, batch {args.batch}; one-at-a-time variants train {n_ref} of them; "
          f"device {dev}")  # fmt: skip
    print(report("  wall time (ratio to the subset trainer)", times))
    per_hour = {}
    for name, ts in times.items():
        models = args.models if name.startswith("subset") else n_ref
        per_hour[name] = models * 3600 / statistics.median(ts)
    base = next(iter(per_hour.values()))
    for name, rate in per_hour.items():
        print(f"  {name:<34} {rate:>12.0f} models/hour  (subset trainer: {base / rate:.2f}×)")
    rows = args.epochs * sum(-(-n // args.batch) * args.batch for n in sizes)
    lane_rows_per_s = rows / statistics.median(next(iter(times.values())))
    print(f"  subset trainer: {lane_rows_per_s:.0f} batch rows/s ({args.epochs * sum(sizes)} sample-steps, "
          f"{rows} rows with padding)")  # fmt: skip
    return {"arch": args.arch, "models": args.models, "reference_models": n_ref, "epochs": args.epochs,
            "batch": args.batch, "lane_width": args.lane_width, "device": str(dev), "models_per_hour": per_hour,
            "speedup_vs_one_at_a_time": base / per_hour["one model at a time (lanes of 1)"],
            "speedup_vs_plain_loop": base / per_hour["plain loop (torch.optim.Adam)"],
            "batch_rows_per_s": lane_rows_per_s, "times_s": times}  # fmt: skip


def bench_certify(args) -> dict:
    """Model evaluations per second of the ensemble certifier (wide lanes, one call per
    lane and batch) against a plain loop (one model at a time, a plain torch module: torch's
    own pooling, the whole batch in one call), in both scopes and with Cert-SSB's per-point
    σ_x."""
    import numpy as np
    import torch

    from certsmooth.certify.ensemble import model_probabilities
    from certsmooth.device import resolve_device
    from certsmooth.models import build_model
    from certsmooth.models.archs import with_torch_pooling
    from certsmooth.noise import standard_normal
    from certsmooth.smoothing.train import model_seeds

    dev = resolve_device(args.device)
    _, _, xt, _ = _demo_data()
    states = {i: build_model("mnist_cnn", (1, 28, 28), 2, seed=i).state_dict() for i in range(args.models)}
    keys = {i: model_seeds(0, i)["test_noise"] for i in range(args.models)}
    x = torch.from_numpy(np.ascontiguousarray(xt)).to(dev)
    per_point = np.random.default_rng(0).uniform(0.9, 1.7, len(xt)).astype(np.float32)  # σ_x as the demo's

    m = with_torch_pooling(build_model("mnist_cnn", (1, 28, 28), 2)).to(dev).eval()  # the plain module, once

    def plain(scope, sigma):
        @torch.no_grad()
        def run():  # one model at a time (its weights loaded into the plain module), its own noise; results to host
            scale = torch.as_tensor(np.broadcast_to(np.float32(sigma), (len(xt),)).copy(), device=dev)
            scale = scale.reshape(-1, 1, 1, 1)
            for i in range(args.models):
                m.load_state_dict(states[i])
                rows = torch.arange(1 if scope == "train" else len(xt), device=dev)
                noise = standard_normal(torch.tensor([keys[i]], device=dev), rows, x[0].numel())[0]
                torch.sigmoid(m(x + scale * noise.reshape(len(rows), *x.shape[1:]))).cpu()

        return run

    def ours(scope, sigma):
        return lambda: model_probabilities(states, keys, "mnist_cnn", 2, xt, sigma, scope, args.lane_width, dev)

    variants = {}
    for scope, sigma, what in (("joint", 1.0, "joint"), ("train", 1.0, "train"), ("joint", per_point, "Cert-SSB σ_x")):
        variants[f"certsmooth, {what}"] = ours(scope, sigma)
        variants[f"plain loop, {what}"] = plain(scope, sigma)
    times = interleaved(variants, args.repeats)
    evals = args.models * len(xt)
    print(f"certify: {args.models} models × {len(xt)} test points = {evals} model evaluations, lane width "
          f"{args.lane_width}, device {dev}")  # fmt: skip
    print(report("  wall time (ratio to certsmooth, joint)", times))
    rates = {name: evals / statistics.median(ts) for name, ts in times.items()}
    for name, rate in rates.items():
        print(f"  {name:<34} {rate:>12.0f} model-evaluations/s")
    speedup = {}
    for what in ("joint", "train", "Cert-SSB σ_x"):
        speedup[what] = rates[f"certsmooth, {what}"] / rates[f"plain loop, {what}"]
        print(f"  certsmooth vs plain loop, {what}: {speedup[what]:.2f}x")
    return {"models": args.models, "points": len(xt), "lane_width": args.lane_width, "device": str(dev),
            "model_evaluations_per_s": rates, "speedup_vs_plain_loop": speedup, "times_s": times}  # fmt: skip


def bench_cohen(args) -> dict:
    """Cohen et al.'s CERTIFY (n0 selection + n estimation samples per point): certsmooth's
    counter-based noise and vectorised counting against the algorithm as locuslab's
    ``Smooth.certify`` runs it (``torch.randn_like`` noise per batch, predictions counted in
    a Python loop) on the same weights as plain torch runs them (torch's own
    ``nn.MaxPool2d``, the whole batch in one call: ``models.archs.with_torch_pooling``); and
    certsmooth's CERTIFY on that plain model (what the channels-last CPU pooling and the
    row-sliced features of ``models.archs`` buy); noisy forward passes per second."""
    import numpy as np
    import torch

    from certsmooth.certify.cohen import CohenConfig, certify_point
    from certsmooth.device import resolve_device
    from certsmooth.models import build_model, predictions
    from certsmooth.models.archs import with_torch_pooling

    dev = resolve_device(args.device)
    _, _, xt, _ = _demo_data()
    model = build_model("mnist_cnn", (1, 28, 28), 2, seed=0).to(dev).eval()
    plain_model = with_torch_pooling(model)  # same weights and bits as plain torch runs them: what the public code runs
    pts = [torch.from_numpy(np.ascontiguousarray(xt[i])).to(dev) for i in range(args.points)]
    cfg = CohenConfig(sigma=0.5, n0=args.n0, n=args.n, alpha=0.001, batch=args.batch)

    def ours():
        for i, xi in enumerate(pts):
            certify_point(model, xi, i, cfg, 0, 2)

    @torch.no_grad()
    def reference():  # locuslab's algorithm: _sample_noise with randn_like and _count_arr
        def sample(xi, num):
            counts = np.zeros(2, dtype=int)
            remaining = num
            while remaining > 0:
                size = min(args.batch, remaining)
                remaining -= size
                batch = xi.repeat((size, 1, 1, 1))
                noise = torch.randn_like(batch) * cfg.sigma
                for p in predictions(plain_model(batch + noise)).cpu().numpy():
                    counts[p] += 1
            return counts

        for xi in pts:
            c_a = sample(xi, cfg.n0).argmax()
            _ = sample(xi, cfg.n)[c_a]

    def ours_plain_model():
        for i, xi in enumerate(pts):
            certify_point(plain_model, xi, i, cfg, 0, 2)

    variants = {"certsmooth certify_point": ours, "same, on the plain torch model": ours_plain_model,
                "locuslab-style Smooth.certify": reference}  # fmt: skip
    times = interleaved(variants, args.repeats)
    passes = args.points * (args.n0 + args.n)
    print(f"cohen: CERTIFY of {args.points} points, n0 = {args.n0}, n = {args.n}, batch {args.batch}, MNIST CNN, "
          f"device {dev}: {passes} noisy forward passes per run")  # fmt: skip
    print(report("  wall time (ratio to certsmooth)", times))
    rates = {}
    for name, ts in times.items():
        rates[name] = passes / statistics.median(ts)
        print(f"  {name:<34} {rates[name]:>12.0f} noisy passes/s")
    return {"points": args.points, "n0": args.n0, "n": args.n, "batch": args.batch, "device": str(dev),
            "noisy_passes_per_s": rates, "times_s": times}  # fmt: skip


def bench_sigma(args) -> dict:
    """The σ ascent over ``points`` training images with ``models`` scoring models:
    certsmooth's (all points of a batch and all models of a lane in one call) against a
    loop over the models (each model scores the batch alone, gradients summed), and the
    released-code variant (one detached draw per step) for scale."""
    import numpy as np
    import torch

    from certsmooth.device import resolve_device
    from certsmooth.models import WideEnsemble, build_model
    from certsmooth.smoothing.sigma import MeanProbability, SigmaConfig, optimize_sigma_batched

    dev = resolve_device(args.device)
    x, _, _, _ = _demo_data()
    x = np.ascontiguousarray(x[: args.points])
    models = [build_model("mnist_cnn", (1, 28, 28), 2, seed=i) for i in range(args.models)]
    wide = MeanProbability([WideEnsemble(models).to(dev).eval()])
    singles = [MeanProbability([WideEnsemble([m]).to(dev).eval()]) for m in models]

    class PerModel(torch.nn.Module):  # same function, one model at a time
        def forward(self, xb):
            p = sum(torch.softmax(s(xb), -1) for s in singles) / len(singles)
            return torch.log(p.clamp_min(1e-30))

    loop = PerModel()
    paper = SigmaConfig(variant="paper", steps=args.steps, lr=0.01, mc_samples=args.mc)
    released = SigmaConfig(variant="released-code", steps=args.steps, lr=1e-4)
    variants = {
        "vectorised (wide lane, paper)": lambda: optimize_sigma_batched(wide, x, 1.0, paper, 0, dev, args.batch),
        "per-model loop (paper)": lambda: optimize_sigma_batched(loop, x, 1.0, paper, 0, dev, args.batch),
        "vectorised (released-code)": lambda: optimize_sigma_batched(wide, x, 1.0, released, 0, dev, args.batch),
    }
    a = variants["vectorised (wide lane, paper)"]()
    b = variants["per-model loop (paper)"]()
    times = interleaved(variants, args.repeats, warmup=0)
    evals = args.points * args.steps * args.mc * args.models
    print(
        f"sigma: {args.points} MNIST images, {args.models} scoring models, {args.steps} steps × {args.mc} draws "
        f"(paper) = {evals} model evaluations with gradient, batch {args.batch}, device {dev}, "
        f"{torch.get_num_threads()} threads; max |σ_vectorised − σ_loop| = {np.abs(a - b).max():.2e}"
    )
    print(report("  wall time (ratio to the vectorised paper ascent)", times))
    med = statistics.median(times["vectorised (wide lane, paper)"])
    print(f"  vectorised paper ascent: {evals / med:.0f} model evaluations/s (forward + input gradient)")
    return {"points": args.points, "models": args.models, "device": str(dev), "times_s": times,
            "model_evaluations_per_s": evals / med, "max_sigma_difference": float(np.abs(a - b).max())}  # fmt: skip


def bench_bilevel(args) -> None:
    """One ApproxGrad epoch of Mehra et al.'s attack per lower level (GA, MACER, SmoothAdv)
    on the embedded digits (all ten classes, target 8), interleaved: the cost of each victim
    method's lower level, relative to GA."""
    import torch

    from certsmooth.attacks.bilevel import BilevelConfig, bilevel_poison, expected_steps
    from certsmooth.data.prepared import prepare

    parts = prepare("mnist5k", list(range(10)), {"test_fraction": 0.2, "seed": 0}, "data/raw")
    train = parts["train"]
    import numpy as np

    rows = np.sort(np.random.default_rng(0).permutation(train.y.size)[: args.points])  # a class-balanced sample
    x, y = train.floats()[rows], train.y[rows]
    common = dict(sigma=0.5, epsilon=0.1, k=args.k, niter1=args.niter1, niter2=args.niter2, epochs=1,
                  batch_clean=args.batch_clean, batch_poison=args.batch_poison, batch_val=args.batch_val,
                  save_final=True)  # fmt: skip
    cfgs = {v: BilevelConfig(victim=v, **common) for v in ("ga", "macer", "smoothadv")}
    variants = {
        f"one epoch vs {v}": (lambda c=c: bilevel_poison(x, y, 8, c, 0, 10, args.device)) for v, c in cfgs.items()
    }
    times = interleaved(variants, args.repeats, warmup=0)
    steps = expected_steps(int((y != 8).sum()), cfgs["ga"])
    print(
        f"bilevel: {len(y)} images ({int((y == 8).sum())} poisons), {steps} ApproxGrad steps per epoch "
        f"({args.batch_clean} clean + {args.batch_poison} poisons + {args.batch_val} validation, "
        f"niter1 {args.niter1}, niter2 {args.niter2}, k {args.k}), device {args.device}, "
        f"{torch.get_num_threads()} threads"
    )
    print(report("  wall time per epoch (ratio to GA)", times))
    med = statistics.median(times["one epoch vs ga"])
    print(f"  GA: {med / steps:.2f} s per ApproxGrad step")


_START = (
    "import torch\n"
    "from certsmooth.models import build_model\n"
    "from certsmooth.smoothing.adam import adam\n"
    "m = build_model('mnist_cnn', (1, 28, 28), 2, seed=0)\n"
    "opt = {optimizer}(m.parameters(), lr=1e-3, fused=True)\n"
    "m(torch.rand(8, 1, 28, 28)).sum().backward()\n"
    "opt.step()\n"
)


def bench_start(args) -> dict:
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


NOISE_SHAPES = {  # (keys, rows) of the library's calls on 28×28 images
    "training batch (lane of 5 × 128)": (5, 128),
    "Cohen CERTIFY batch (1 × 1000)": (1, 1000),
    "ensemble certification (lane of 10 × 212)": (10, 212),
}


def bench_noise(args) -> dict:
    """The counter-based noise (:func:`certsmooth.noise.standard_normal`) computed in cache
    -sized chunks (the library's CPU path) against the whole tensor at once (one chunk, as
    before the chunks; the same bits), for the shapes training, CERTIFY and certification
    ask for."""
    import torch

    from certsmooth import noise
    from certsmooth.device import resolve_device, synchronize

    dev = resolve_device(args.device)
    chunked = noise.CPU_CHUNK_BYTES

    def run(keys, rows, chunk_bytes):
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
        times.update(interleaved({f"chunks, {what}": run(keys, rows, chunked),
                                  f"whole tensor, {what}": run(keys, rows, 2**62)}, args.repeats))  # fmt: skip
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certsmooth bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)

    def add(name, func, help_, device=True):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        p.add_argument("--repeats", type=_repeats, default=5, help="interleaved rounds (at least 5)")
        p.add_argument("--json", metavar="PATH", help="also write the measured figures to this JSON file")
        if device:
            p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
        return p

    add("data", bench_data, "data steps (CSV reader, triggers, poisoning)", device=False)
    def training(p, models: int, what: str, epochs: int, batch: int, lane_width: int) -> None:
        """The data and sizes a training benchmark takes."""
        p.add_argument("--arch", default="mnist_cnn", choices=sorted(ARCH_SHAPES))
        p.add_argument("--images", type=_positive, default=2000, help="random training images for archs other "
                       "than mnist_cnn (which uses the 800 mnist5k 0-vs-1 images)")  # fmt: skip
        p.add_argument("--models", type=_positive, default=models, help=what)
        p.add_argument("--reference-models", type=int, default=0, help="models of the one-at-a-time variants "
                       "(default: --models); rates are per model")  # fmt: skip
        p.add_argument("--epochs", type=_positive, default=epochs)
        p.add_argument("--batch", type=_positive, default=batch)
        p.add_argument("--lane-width", type=_positive, default=lane_width)

    p = add("train", bench_train, "partition trainer vs one-model-at-a-time loops")
    training(p, 10, "models of the partition trainer", epochs=10, batch=128, lane_width=5)
    p.add_argument("--variants", default="partition,reference", help=f"comma-separated: {', '.join(TRAIN_VARIANTS)}")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the partition trainer")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="memory format of the wide lanes (auto: channels-last on the CPU only)")  # fmt: skip
    p.add_argument("--in-process", action="store_true",
                   help="all runs in this process after one warm-up per variant (default: a process per run)")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="autotuned, non-deterministic cuDNN kernels (the library uses deterministic ones): "
                   "what determinism costs")  # fmt: skip
    p = add("profile", bench_profile, "one training step of a lane, phase by phase")
    p.add_argument("--arch", default="mnist_cnn", choices=sorted(ARCH_SHAPES))
    p.add_argument("--images", type=_positive, default=2000)
    p.add_argument("--lane-width", type=_positive, default=5)
    p.add_argument("--batch", type=_positive, default=128)
    p.add_argument("--steps", type=_positive, default=20)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")
    p = add("checkpoint", bench_checkpoint, "training with an epoch checkpoint after every epoch vs none")
    p.add_argument("--arch", default="mnist_cnn")
    p.add_argument("--models", type=_positive, default=10)
    p.add_argument("--epochs", type=_positive, default=4)
    p.add_argument("--batch", type=_positive, default=128)
    p.add_argument("--lane-width", type=_positive, default=5)
    p = add("count", bench_count, "count certifiers' subset trainer vs one model at a time")
    training(p, 40, "DPA partitions (models) of the subset trainer", epochs=5, batch=32, lane_width=20)
    p = add("certify", bench_certify, "ensemble certification: model evaluations per second")
    p.add_argument("--models", type=_positive, default=50)
    p.add_argument("--lane-width", type=_positive, default=10)
    p = add("cohen", bench_cohen, "Cohen et al.'s CERTIFY: noisy forward passes per second")
    p.add_argument("--points", type=_positive, default=2)
    p.add_argument("--n0", type=_positive, default=100)
    p.add_argument("--n", type=_positive, default=10_000)
    p.add_argument("--batch", type=_positive, default=1000)
    p = add("sigma", bench_sigma, "Cert-SSB σ ascent: vectorised vs one model at a time")
    p.add_argument("--points", type=_positive, default=256)
    p.add_argument("--models", type=_positive, default=5)
    p.add_argument("--steps", type=_positive, default=5)
    p.add_argument("--mc", type=_positive, default=4)
    p.add_argument("--batch", type=_positive, default=256)
    p = add("bilevel", bench_bilevel, "Mehra et al.'s ApproxGrad: one epoch per victim method")
    p.add_argument("--points", type=_positive, default=1000)
    p.add_argument("--k", type=_positive, default=4)
    p.add_argument("--niter1", type=_positive, default=5)
    p.add_argument("--niter2", type=_positive, default=5)
    p.add_argument("--batch-clean", type=_positive, default=300)
    p.add_argument("--batch-poison", type=_positive, default=100)
    p.add_argument("--batch-val", type=_positive, default=50)
    add("noise", bench_noise, "counter-based noise: cache-sized chunks vs the whole tensor")
    add("start", bench_start, "a training job's start: torch.optim.Adam vs certsmooth's CPU Adam", device=False)
    p = sub.add_parser("_train-one")  # internal: one timed run (JSON spec), printed as JSON
    p.add_argument("spec")
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    import json

    keep_freed_blocks()  # as every certsmooth command (certsmooth.heap)
    args = build_parser().parse_args(argv)
    if args.what == "_train-one":
        print(json.dumps(_train_one(json.loads(args.spec))))
        return 0
    result = args.func(args)
    if args.json:
        from certsmooth.artifacts import write_json

        write_json(args.json, {"bench": args.what, **(result or {})})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
