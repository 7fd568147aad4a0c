"""certsmooth.runtimes: job seconds per rule from Snakemake's metadata records."""

from __future__ import annotations

import base64
import json

import pytest

from certsmooth.cli import main
from certsmooth.errors import ConfigError
from certsmooth.runtimes import format_table, rule_times


def _record(meta, output: str, rule: str, job_hash: int, start: float, end: float, **extra) -> None:
    name = base64.b64encode(output.encode()).decode()
    rec = {"rule": rule, "job_hash": job_hash, "starttime": start, "endtime": end, "incomplete": False, **extra}
    (meta / name).write_text(json.dumps(rec))


@pytest.fixture
def project(tmp_path):
    meta = tmp_path / ".snakemake" / "metadata"
    meta.mkdir(parents=True)
    # one job with three outputs (same hash and end; starts microseconds apart)
    for i, f in enumerate(("a.csv", "b.csv", "c.json")):
        _record(meta, f, "certify", 7, 100.0 + i * 1e-6, 110.0)
    _record(meta, "d.csv", "certify", 8, 105.0, 125.0)  # a second certify job: 20 s
    _record(meta, "e.json", "metrics", 9, 125.0, 126.0)
    _record(meta, "f.json", "metrics", 10, 130.0, 131.0, incomplete=True)  # interrupted: not a finished job
    (meta / "garbage").write_text("{not json")
    return tmp_path


def test_jobs_are_folded_from_their_output_records(project):
    rows, totals = rule_times(project)
    by = {r.rule: r for r in rows}
    assert [r.rule for r in rows] == ["certify", "metrics"]  # largest first
    assert by["certify"].jobs == 2 and by["certify"].total_s == pytest.approx(30.0)
    assert by["certify"].median_s == pytest.approx(15.0) and by["certify"].max_s == pytest.approx(20.0)
    assert by["metrics"].jobs == 1 and by["metrics"].total_s == pytest.approx(1.0)
    assert totals == {"jobs": 3, "job_seconds": pytest.approx(31.0), "span_s": pytest.approx(26.0)}
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    table = format_table(rows, totals)
    assert "| certify | 2 | 30 |" in table and "wall 26 s" in table


def test_cli_writes_json_and_refuses_a_folder_without_records(project, tmp_path, capsys):
    out = tmp_path / "times.json"
    assert main(["rule-times", "--dir", str(project), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["totals"]["jobs"] == 3
    assert "| metrics | 1 |" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no Snakemake records"):
        rule_times(empty)
    assert main(["rule-times", "--dir", str(empty)]) == 2
    assert "run the workflow" in capsys.readouterr().err
