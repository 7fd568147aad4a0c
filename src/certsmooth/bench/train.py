"""``bench train``: the partition trainer against one-model-at-a-time loops, each (variant,
round) in a fresh process (the internal ``_train-one`` subcommand) or all in this one."""

from __future__ import annotations

import statistics
import time

from certsmooth.bench.timing import (
    flops_per_sample_step,
    matmul_tflops,
    memory_format,
    train_data,
    training_arguments,
)

ONE = "_train-one"  # the internal subcommand of one timed run in its own process (JSON spec in, JSON out)
TRAIN_VARIANTS = {
    "partition": "partition trainer (wide lanes)",
    "reference": "reference loop (RAB-style)",
    "plain": "plain loop (data on device)",
}

HELP = "partition trainer vs one-model-at-a-time loops"
DEVICE = True


def add_arguments(p) -> None:
    training_arguments(p, 10, "models of the partition trainer", epochs=10, batch=128, lane_width=5)
    p.add_argument("--variants", default="partition,reference", help=f"comma-separated: {', '.join(TRAIN_VARIANTS)}")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the partition trainer")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="memory format of the wide lanes (auto: channels-last on the CPU only)")  # fmt: skip
    p.add_argument("--in-process", action="store_true",
                   help="all runs in this process after one warm-up per variant (default: a process per run)")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="autotuned, non-deterministic cuDNN kernels (the library uses deterministic ones): "
                   "what determinism costs")  # fmt: skip


def run(args) -> dict:
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
    x, y = train_data(args.arch, args.images)
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
                cmd = [sys.executable, "-m", "certsmooth.bench", ONE, json.dumps(spec)]
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
        with memory_format(channels_last):
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


def train_one(spec: dict) -> dict:
    """One timed run in its own process (``bench train`` without ``--in-process``): warm-up,
    then the run; adds the process's peak RSS."""
    import resource

    import torch

    from certsmooth.device import resolve_device

    dev = resolve_device(spec["device"])
    if spec.get("cudnn_benchmark"):
        _cudnn_autotune()
    x, y = train_data(spec["arch"], spec["images"])
    v, k = spec["variant"], spec["models"]
    opts = dict(bf16=spec["bf16"], channels_last=spec["channels_last"])
    _train_warmup(v, x, y, dev, spec["batch"], spec["lane_width"], spec["arch"], **opts)
    out = _train_run(v, x, y, k, spec["epochs"], dev, spec["batch"], spec["lane_width"], spec["arch"], **opts)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = torch.get_num_threads()
    return out
