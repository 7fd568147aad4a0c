"""``bench data``: the data steps (CSV reader, triggers, poisoning), interleaved."""

from __future__ import annotations

import tempfile
from pathlib import Path

from certsmooth.bench.timing import interleaved, report

HELP = "data steps (CSV reader, triggers, poisoning)"
DEVICE = False


def add_arguments(p) -> None:
    """Nothing beyond the common ``--repeats`` and ``--json``."""


def run(args) -> None:
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
