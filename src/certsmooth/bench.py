"""Benchmarks: interleaved repeats, medians and ratios.

Machines here have sporadic slowdowns of up to 25×, so variants are never timed in
blocks: every round runs each variant once, in turn, and the report gives the median
per variant and its ratio to the first one.

    python -m certsmooth.bench data      # data steps (CSV reader, triggers, poisoning)
    python -m certsmooth.bench train     # partition trainer vs RAB-style reference loop
    python -m certsmooth.bench certify   # model evaluations per second
    python -m certsmooth.bench sigma     # Cert-SSB σ ascent: vectorised vs per-model loop
    python -m certsmooth.bench checkpoint  # resumable training: a checkpoint every epoch vs none

(`certsmooth bench ...` is the same.) `train` runs every (variant, repeat) in a fresh
subprocess so that each run's peak RSS is its own.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


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


def matmul_gflops(device, n: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP/s of an n×n float32 matmul: the machine's practical peak."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    ts = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(ts[1:]) / 1e9


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


def _train_one(variant: str, models: int, epochs: int, device: str, batch: int, lane_width: int) -> dict:
    """One timed training run (in its own process)."""
    import resource

    import numpy as np
    import torch
    import torch.nn.functional as F

    from certsmooth.models import build_model
    from certsmooth.smoothing.train import TrainConfig, lanes, model_seeds, resolve_device, train_partition

    x, y, _, _ = _demo_data()
    dev = resolve_device(device)
    cfg = TrainConfig("mnist_cnn", 1.0, epochs, batch, 1e-3, lane_width=lane_width)
    t0 = time.perf_counter()
    if variant == "partition":
        train_partition(x, y, lanes(models, lane_width), 0, cfg, 2, device)
    else:  # RAB's public code: one model after another, noisy copies in a Dataset, a DataLoader

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
            model = build_model("mnist_cnn", x.shape[1:], 2, seed=seeds["init"]).to(dev)
            opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
            loader = torch.utils.data.DataLoader(Smoothed(gen), batch_size=batch, shuffle=True, generator=gen)
            for _ in range(epochs):
                for xb, yb in loader:
                    xb, yb = xb.to(dev), yb.to(dev)
                    loss = F.binary_cross_entropy_with_logits(model(xb)[:, 0], yb.float())
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "sample_steps_per_s": models * epochs * len(y) / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else 0.0,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "n": int(np.asarray(y).size),
    }


def bench_train(args) -> None:
    import json
    import subprocess
    import sys

    import torch

    from certsmooth.smoothing.train import resolve_device

    dev = resolve_device(args.device)
    variants = {"partition trainer (wide lanes)": "partition", "reference loop (RAB-style)": "reference"}
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    for r in range(args.repeats):
        for name, v in variants.items():
            cmd = [sys.executable, "-m", "certsmooth.bench", "_train-one", v, str(args.models), str(args.epochs),
                   args.device, str(args.batch), str(args.lane_width)]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"  round {r + 1}/{args.repeats} {name}: {runs[name][-1]['wall_s']:.2f} s", flush=True)
    peak = matmul_gflops(dev)
    fps = flops_per_sample_step("mnist_cnn", (1, 28, 28), args.batch)
    n = runs[next(iter(runs))][0]["n"]
    print(
        f"train: {args.models} MNIST CNNs (RAB), {n} images, {args.epochs} epochs, batch {args.batch}, "
        f"lane width {args.lane_width}, device {dev}, {torch.get_num_threads()} threads; "
        f"{args.repeats} interleaved runs each"
    )
    print(f"  large-matmul peak: {peak:.1f} GFLOP/s; one sample-step (fwd+bwd) = {fps / 1e6:.2f} MFLOP")
    base = None
    print(f"  {'variant':<32} {'wall med':>9} {'ratio':>6} {'samples/s':>10} {'models/h':>9} "
          f"{'GFLOP/s':>8} {'% peak':>7} {'RSS MB':>7} {'GPU MB':>7}")  # fmt: skip
    for name, rs in runs.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        base = base or wall
        sps = statistics.median(r["sample_steps_per_s"] for r in rs)
        gflops = sps * fps / 1e9
        print(
            f"  {name:<32} {wall:>8.2f}s {base / wall:>6.2f} {sps:>10.0f} {3600 * args.models / wall:>9.0f} "
            f"{gflops:>8.1f} {100 * gflops / peak:>6.1f}% {max(r['peak_rss_mb'] for r in rs):>7.0f} "
            f"{max(r['peak_gpu_mb'] for r in rs):>7.0f}"
        )
    ref = statistics.median(r["wall_s"] for r in runs["reference loop (RAB-style)"])
    ours = statistics.median(r["wall_s"] for r in runs["partition trainer (wide lanes)"])
    print(f"  speed-up of the partition trainer over the reference loop: {ref / ours:.2f}x")


def bench_checkpoint(args) -> None:
    """Cost of resumable training: the partition trainer with a checkpoint after every
    epoch (``CERTSMOOTH_CHECKPOINT_EVERY_S=0``, the most frequent setting) vs none."""
    import os

    from certsmooth.smoothing.resume import ENV_EVERY
    from certsmooth.smoothing.train import TrainConfig, lanes, resolve_device, train_partition

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


def bench_certify(args) -> None:
    import torch

    from certsmooth.certify.ensemble import model_probabilities
    from certsmooth.models import build_model
    from certsmooth.smoothing.train import model_seeds, resolve_device

    dev = resolve_device(args.device)
    _, _, xt, _ = _demo_data()
    states = {i: build_model("mnist_cnn", (1, 28, 28), 2, seed=i).state_dict() for i in range(args.models)}
    keys = {i: model_seeds(0, i)["test_noise"] for i in range(args.models)}

    def reference():  # one model at a time, one noise draw per point, plain module
        for i in range(args.models):
            m = build_model("mnist_cnn", (1, 28, 28), 2).to(dev).eval()
            m.load_state_dict(states[i])
            g = torch.Generator().manual_seed(keys[i])
            with torch.no_grad():
                x = torch.from_numpy(xt)
                torch.sigmoid(m((x + torch.randn(x.shape, generator=g)).to(dev)))

    variants = {
        "certsmooth (wide lanes, joint)": lambda: model_probabilities(
            states, keys, "mnist_cnn", 2, xt, 1.0, "joint", args.lane_width, dev
        ),
        "reference (one model at a time)": reference,
    }
    times = interleaved(variants, args.repeats)
    evals = args.models * len(xt)
    print(f"certify: {args.models} models × {len(xt)} test points = {evals} model evaluations, device {dev}")
    print(report("  wall time (ratio to certsmooth)", times))
    for name, ts in times.items():
        print(f"  {name:<34} {evals / statistics.median(ts):>12.0f} model-evaluations/s")


def bench_sigma(args) -> None:
    """The σ ascent over ``points`` training images with ``models`` scoring models:
    certsmooth's (all points of a batch and all models of a lane in one call) against a
    loop over the models (each model scores the batch alone, gradients summed), and the
    released-code variant (one detached draw per step) for scale."""
    import numpy as np
    import torch

    from certsmooth.models import WideEnsemble, build_model
    from certsmooth.smoothing.sigma import MeanProbability, SigmaConfig, optimize_sigma_batched
    from certsmooth.smoothing.train import resolve_device

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
    common = dict(k=args.k, niter1=args.niter1, niter2=args.niter2, epochs=1, batch_clean=args.batch_clean,
                  batch_poison=args.batch_poison, batch_val=args.batch_val, save_final=True)  # fmt: skip
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="certsmooth bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("data", help="data steps")
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=bench_data)
    p = sub.add_parser("train", help="partition trainer vs RAB-style reference loop")
    p.add_argument("--models", type=int, default=10)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lane-width", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=bench_train)
    p = sub.add_parser("checkpoint", help="training with an epoch checkpoint after every epoch vs none")
    p.add_argument("--arch", default="mnist_cnn")
    p.add_argument("--models", type=int, default=10)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lane-width", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=bench_checkpoint)
    p = sub.add_parser("certify", help="model evaluations per second")
    p.add_argument("--models", type=int, default=50)
    p.add_argument("--lane-width", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=bench_certify)
    p = sub.add_parser("sigma", help="Cert-SSB σ ascent: vectorised vs one model at a time")
    p.add_argument("--points", type=int, default=256)
    p.add_argument("--models", type=int, default=5)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--mc", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=bench_sigma)
    p = sub.add_parser("bilevel", help="Mehra et al.'s ApproxGrad: one epoch per victim method")
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--niter1", type=int, default=5)
    p.add_argument("--niter2", type=int, default=5)
    p.add_argument("--batch-clean", type=int, default=300)
    p.add_argument("--batch-poison", type=int, default=100)
    p.add_argument("--batch-val", type=int, default=50)
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=bench_bilevel)
    p = sub.add_parser("_train-one")  # internal: one timed run, printed as JSON
    p.add_argument("variant")
    p.add_argument("models", type=int)
    p.add_argument("epochs", type=int)
    p.add_argument("device")
    p.add_argument("batch", type=int)
    p.add_argument("lane_width", type=int)
    p.set_defaults(func=None)
    args = parser.parse_args(argv)
    if args.what == "_train-one":
        import json

        print(json.dumps(_train_one(args.variant, args.models, args.epochs, args.device, args.batch, args.lane_width)))
        return 0
    args.func(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
