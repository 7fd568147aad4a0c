"""``bench count``: the count certifiers' subset trainer vs one model at a time."""

from __future__ import annotations

import statistics

from certsmooth.bench.timing import interleaved, report, train_data, training_arguments

HELP = "count certifiers' subset trainer vs one model at a time"
DEVICE = True


def add_arguments(p) -> None:
    training_arguments(p, 40, "DPA partitions (models) of the subset trainer", epochs=5, batch=32, lane_width=20)


def run(args) -> dict:
    """The count certifiers' subset trainer (the models of a lane train together, each on
    its own DPA partition) against one model at a time: the same trainer with lanes of one,
    and a plain loop (torch.optim.Adam, one model after another, as the reference test of
    ``tests/test_subsets.py``). Models per hour at equal work."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from certsmooth.device import resolve_device
    from certsmooth.models import build_model
    from certsmooth.subsets.rows import dpa_partitions
    from certsmooth.subsets.train import SubsetTrainConfig, model_seeds, train_subsets

    dev = resolve_device(args.device)
    x, y = train_data(args.arch, args.images)
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
