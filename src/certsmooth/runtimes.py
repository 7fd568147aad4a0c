"""Where a workflow run's time went: every job's wall time from Snakemake's own records,
summed per rule.

Snakemake keeps one record per output file under ``.snakemake/metadata/`` with the rule,
a job hash, the job's start and end time; a job with three outputs has three records (same
hash and end). :func:`rule_times` folds them into one row per job, then one
row per rule: jobs, summed job seconds, the median job, the longest, and the rule's share
of all job seconds. ``span_s`` is the run's wall time from the first job's start to the
last job's end (of the records present: a rerun replaces the records of what it rebuilt).
No torch: this reads JSON only.

    certsmooth rule-times [--dir PROJECT] [--json PATH]
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from certsmooth.errors import ConfigError


@dataclass(frozen=True)
class RuleTime:
    rule: str
    jobs: int
    total_s: float
    median_s: float
    max_s: float
    share: float  # of all jobs' seconds


def job_records(project: str | Path) -> list[dict]:
    """One dict per job (rule, start, end) from ``.snakemake/metadata``."""
    meta = Path(project) / ".snakemake" / "metadata"
    if not meta.is_dir():
        raise ConfigError(f"{meta}: no Snakemake records here; run the workflow in {project} first")
    jobs: dict[tuple, dict] = {}
    for f in sorted(meta.iterdir()):
        try:
            rec = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # a record being written by a running job, or not a record
        start, end = rec.get("starttime"), rec.get("endtime")
        if rec.get("incomplete") or start is None or end is None or "rule" not in rec:
            continue
        # a job's outputs share its hash and end time; their start times differ by microseconds
        key = (rec["rule"], rec.get("job_hash"), end)
        old = jobs.get(key)
        jobs[key] = {"rule": rec["rule"], "start": min(float(start), old["start"] if old else float(start)),
                     "end": float(end)}  # fmt: skip
    return list(jobs.values())


def rule_times(project: str | Path) -> tuple[list[RuleTime], dict]:
    """Rules by summed job seconds (largest first) and the run's totals."""
    jobs = job_records(project)
    if not jobs:
        raise ConfigError(f"{project}: Snakemake has no finished job on record; run the workflow first")
    by_rule: dict[str, list[float]] = {}
    for j in jobs:
        by_rule.setdefault(j["rule"], []).append(j["end"] - j["start"])
    total = sum(sum(v) for v in by_rule.values())
    rows = [
        RuleTime(r, len(v), sum(v), statistics.median(v), max(v), sum(v) / total if total else 0.0)
        for r, v in by_rule.items()
    ]
    rows.sort(key=lambda r: (-r.total_s, r.rule))
    totals = {
        "jobs": len(jobs),
        "job_seconds": total,
        "span_s": max(j["end"] for j in jobs) - min(j["start"] for j in jobs),
    }
    return rows, totals


def format_table(rows: list[RuleTime], totals: dict) -> str:
    """A Markdown table of :func:`rule_times` with a totals line."""
    lines = [
        "| rule | jobs | job seconds | median job (s) | longest (s) | share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.rule} | {r.jobs} | {r.total_s:.0f} | {r.median_s:.1f} | {r.max_s:.1f} | {100 * r.share:.0f} % |"
        )
    lines.append(
        f"| **all** | {totals['jobs']} | {totals['job_seconds']:.0f} | | | wall {totals['span_s']:.0f} s "
        "(first start to last end) |"
    )
    return "\n".join(lines)


def write_rule_times(rows: list[RuleTime], totals: dict, json_path: str | None = None) -> None:
    """Print the table; with ``json_path`` also write it as JSON."""
    print(format_table(rows, totals))
    if json_path:
        from dataclasses import asdict

        from certsmooth.artifacts import write_json

        write_json(json_path, {"totals": totals, "rules": [asdict(r) for r in rows]})
