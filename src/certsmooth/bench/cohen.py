"""``bench cohen``: Cohen et al.'s CERTIFY, noisy forward passes per second."""

from __future__ import annotations

import statistics

from certsmooth.bench.timing import _positive, demo_data, interleaved, report

HELP = "Cohen et al.'s CERTIFY: noisy forward passes per second"
DEVICE = True


def add_arguments(p) -> None:
    p.add_argument("--points", type=_positive, default=2)
    p.add_argument("--n0", type=_positive, default=100)
    p.add_argument("--n", type=_positive, default=10_000)
    p.add_argument("--batch", type=_positive, default=1000)


def run(args) -> dict:
    """Cohen et al.'s CERTIFY (n0 selection + n estimation samples per point): certsmooth's
    counter-based noise and vectorised counting against the algorithm as locuslab's
    ``Smooth.certify`` runs it (``torch.randn_like`` noise per batch, predictions counted in
    a Python loop) on the same weights as plain torch runs them (torch's own
    ``nn.MaxPool2d``, the whole batch in one call: ``models.archs.with_torch_pooling``); and
    certsmooth's CERTIFY on that plain model (what the channels-last CPU pooling and the
    row-sliced features of ``models.archs`` buy); noisy forward passes per second."""
    import numpy as np
    import torch

    from certsmooth.certificates.cohen import CohenConfig, certify_point
    from certsmooth.device import resolve_device
    from certsmooth.models import build_model, predictions
    from certsmooth.models.archs import with_torch_pooling

    dev = resolve_device(args.device)
    _, _, xt, _ = demo_data()
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
