"""Step ``prepare``: the prepared train/test .npz of a dataset and class subset."""

from __future__ import annotations

import time
from pathlib import Path

from certsmooth.data.prepared import parse_classes_token, parse_split_token, prepare, save_prepared
from certsmooth.data.sources import get_source, register_from_flags
from certsmooth.logs import LOG


def run(*, dataset: str, classes: str, split: str, out_dir: str, raw_dir: str = "data/raw",
        manifest: str | None = None, format: str | None = None, path: str | None = None, channels: int = 3,
        size: tuple[int, int] | None = None) -> None:  # fmt: skip
    """``classes`` / ``split``: the folder tokens (``all`` or ``1-0``; ``official`` or
    ``test0.2-seed0``); ``manifest``: the download manifest the raw files must match;
    ``format``, ``path``, ``channels``, ``size``: a dataset of your own. Writes ``train.npz``
    and ``test.npz``; none on failure."""
    register_from_flags(dataset, format, path, channels, size)
    source = get_source(dataset)
    class_list = parse_classes_token(classes, len(source.class_names))
    t0 = time.perf_counter()
    parts = prepare(dataset, class_list, parse_split_token(split), raw_dir, manifest)
    out = Path(out_dir)
    written = []
    try:
        for part, data in parts.items():
            save_prepared(out / f"{part}.npz", data)
            written.append(out / f"{part}.npz")
            counts = {data.class_names[c]: int((data.y == c).sum()) for c in range(data.num_classes)}
            LOG.info("%s %s: %d images %s, per class %s", dataset, part, data.y.size, data.x.shape[1:], counts)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    LOG.info("prepared in %.2f s", time.perf_counter() - t0)
