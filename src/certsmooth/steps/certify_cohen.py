"""Step ``certify-cohen``: CERTIFY and PREDICT on one chunk of the clean and triggered
test points with Cohen et al.'s base classifier."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from certsmooth.artifacts import atomic_path
from certsmooth.attacks.store import load_triggered_test
from certsmooth.certificates.cohen import CohenConfig, certify_rows, chunk_rows
from certsmooth.data.prepared import load_prepared
from certsmooth.device import resolve_device
from certsmooth.logs import LOG
from certsmooth.models import build_model
from certsmooth.models.files import check_manifest, load_models
from certsmooth.seeding import derive_seed


def run(*, weights: str, manifest: str, clean_test: str, triggered_test: str, cohen: dict, sigma: float, seed: int,
        chunk: int, chunks: int, device: str, out: str) -> None:  # fmt: skip
    """``cohen``: the certifier's settings (arch, n0, n, alpha, batch, skip, classes)."""
    c = cohen
    cfg = CohenConfig(sigma=sigma, n0=c["n0"], n=c["n"], alpha=c["alpha"], batch=c["batch"])
    states, man = load_models(weights, manifest)
    check_manifest(man, weights, manifest, seed=seed)
    check_manifest(man["train"], weights, manifest, sigma=sigma, arch=c["arch"])
    clean, trig = load_prepared(clean_test), load_triggered_test(triggered_test)
    model = build_model(c["arch"], tuple(man["input_shape"]), man["num_classes"], check=False)
    model.load_state_dict(states[0])
    dev = resolve_device(device)
    rows = chunk_rows(clean.y.size, c["skip"], chunk, chunks, clean.y, c["classes"])
    t0 = time.perf_counter()
    frames = []
    cx = clean.floats()
    for name, x, y in (("clean", cx, clean.y), ("triggered", trig.x, trig.y)):
        if name == "triggered" and np.array_equal(x, cx):  # no test-time trigger: the same inputs
            f = frames[0].drop(columns="set")
            LOG.info("the triggered test set equals the clean one (no trigger): its certificates are the clean ones")
        else:
            f = certify_rows(model, x, y, rows, cfg, derive_seed(seed, "cohen-set", name), man["num_classes"], dev)
        f.insert(0, "set", name)
        frames.append(f)
    wall = time.perf_counter() - t0
    LOG.info("chunk %d/%d: %d points × 2 sets in %.1f s (%.2f s per point, n0 = %d, n = %d, device %s)", chunk,
             chunks, len(rows), wall, wall / max(1, 2 * len(rows)), cfg.n0, cfg.n, dev)  # fmt: skip
    with atomic_path(out) as tmp:
        pd.concat(frames, ignore_index=True).to_csv(tmp, index=False, float_format="%.10g")
