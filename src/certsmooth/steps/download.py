"""Step ``download``: a dataset's raw files and their manifest (run where there is network)."""

from __future__ import annotations

from certsmooth.artifacts import write_json
from certsmooth.data.sources import fetch, register_from_flags
from certsmooth.logs import LOG


def run(dataset: str, *, raw_dir: str = "data/raw", manifest: str | None = None, offline: bool = False,
        format: str | None = None, path: str | None = None, channels: int = 3,
        size: tuple[int, int] | None = None) -> None:  # fmt: skip
    """``manifest``: where to write the raw files' SHA-256; ``offline``: never download, only
    check the files; ``format``, ``path``, ``channels``, ``size``: a dataset of your own."""
    register_from_flags(dataset, format, path, channels, size)
    record = fetch(dataset, raw_dir, download=not offline)
    LOG.info("%s: %d raw files, sha256 %s", dataset, len(record["files"]), record["sha256"])
    if manifest:
        write_json(manifest, record)
    print(f"{dataset}: raw files ready under {raw_dir} (sha256 {record['sha256'][:12]}...)")
