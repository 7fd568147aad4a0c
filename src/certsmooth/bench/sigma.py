"""``bench sigma``: Cert-SSB's σ ascent, vectorised vs one model at a time."""

from __future__ import annotations

import statistics

from certsmooth.bench.timing import _positive, demo_data, interleaved, report

HELP = "Cert-SSB σ ascent: vectorised vs one model at a time"
DEVICE = True


def add_arguments(p) -> None:
    p.add_argument("--points", type=_positive, default=256)
    p.add_argument("--models", type=_positive, default=5)
    p.add_argument("--steps", type=_positive, default=5)
    p.add_argument("--mc", type=_positive, default=4)
    p.add_argument("--batch", type=_positive, default=256)


def run(args) -> dict:
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
    x, _, _, _ = demo_data()
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
