"""Benchmark harness: interleaved repeats, medians and ratios.

Machines here have sporadic slowdowns of up to 25×, so variants are never timed in
blocks: every round runs each variant once, in turn, and the report gives the median
per variant and its ratio to the first one.

    python -m certsmooth.bench [--repeats 5]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
