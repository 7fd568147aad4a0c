"""``bench bilevel``: Mehra et al.'s ApproxGrad, one epoch per victim method."""

from __future__ import annotations

import statistics

from certsmooth.bench.timing import _positive, interleaved, report

HELP = "Mehra et al.'s ApproxGrad: one epoch per victim method"
DEVICE = True


def add_arguments(p) -> None:
    p.add_argument("--points", type=_positive, default=1000)
    p.add_argument("--k", type=_positive, default=4)
    p.add_argument("--niter1", type=_positive, default=5)
    p.add_argument("--niter2", type=_positive, default=5)
    p.add_argument("--batch-clean", type=_positive, default=300)
    p.add_argument("--batch-poison", type=_positive, default=100)
    p.add_argument("--batch-val", type=_positive, default=50)


def run(args) -> None:
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
