"""Step ``metrics``: a cell's certification summaries (one per scope) merged into its
metrics.json."""

from __future__ import annotations

from certsmooth.artifacts import write_json
from certsmooth.summary import read_summary


def run(*, experiment: str, summaries: list[str], out: str) -> None:
    merged = {"experiment": experiment}
    for path in summaries:
        s = read_summary(path)
        merged[s["scope"]] = s
    write_json(out, merged)
