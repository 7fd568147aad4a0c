"""``bench certify``: ensemble certification, model evaluations per second."""

from __future__ import annotations

import statistics

from certsmooth.bench.timing import _positive, demo_data, interleaved, report

HELP = "ensemble certification: model evaluations per second"
DEVICE = True


def add_arguments(p) -> None:
    p.add_argument("--models", type=_positive, default=50)
    p.add_argument("--lane-width", type=_positive, default=10)


def run(args) -> dict:
    """Model evaluations per second of the ensemble certifier (wide lanes, one call per
    lane and batch) against a plain loop (one model at a time, a plain torch module: torch's
    own pooling, the whole batch in one call), in both scopes and with Cert-SSB's per-point
    σ_x."""
    import numpy as np
    import torch

    from certsmooth.certificates.ensemble import model_probabilities
    from certsmooth.device import resolve_device
    from certsmooth.models import build_model
    from certsmooth.models.archs import with_torch_pooling
    from certsmooth.noise import standard_normal
    from certsmooth.smoothing.train import model_seeds

    dev = resolve_device(args.device)
    _, _, xt, _ = demo_data()
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
