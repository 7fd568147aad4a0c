"""The summary contract (certsmooth.summary): every certifier's summary.json keeps it, the
tables and figures need nothing outside it, and a broken summary fails in one line."""

from __future__ import annotations

import json

import pytest

from certsmooth import summary as contract
from certsmooth.errors import CorruptFileError
from certsmooth.plots.curves import plot_suite


def test_every_certifier_of_the_built_project_keeps_the_contract(built_project):
    paths = sorted(set(built_project.glob("results/**/summary.json")))
    scopes = set()
    for p in paths:
        s = contract.read_summary(p)
        scopes.add((s["method"], s["scope"]))
    assert {("rab", "train"), ("rab", "joint"), ("certssb", "train"), ("cohen", "cohen")} <= scopes


def test_tables_and_figures_need_only_the_contract(built_project, tmp_path):
    """With every field outside the contract removed, the suite table and figure still build."""
    keep = set(contract.SCHEMA["properties"])
    runs = []
    for p in sorted(built_project.glob("results/demo/**/summary.json")):
        s = json.loads(p.read_text())
        p.write_text(json.dumps({k: v for k, v in s.items() if k in keep}))
        runs.append(str(p.parent))
    assert len(runs) >= 4
    out = {k: tmp_path / f"out.{k}" for k in ("png", "curves.csv")}
    plot_suite("demo", runs, out["png"], out["curves.csv"])
    assert out["png"].stat().st_size > 0 and "cohen" in out["curves.csv"].read_text()


def _valid(built_project) -> dict:
    return json.loads(next(built_project.glob("results/demo/**/summary.json")).read_text())


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s: s.pop("certified_accuracy_clean"), "'certified_accuracy_clean' is a required property"),
        (lambda s: s.update(radius_cmp="gte"), "radius_cmp: 'gte' is not one of"),
        (lambda s: s["deployed_attack"].pop("num_poisons"), "deployed_attack: 'num_poisons' is a required"),
        (lambda s: s.update(num_models=0), "num_models: 0 is less than the minimum of 1"),
        (lambda s: s["certified_accuracy_triggered"].update({"0": "high"}), "certified_accuracy_triggered.0"),
    ],
    ids=["missing field", "bad enum", "nested field", "range", "type"],
)
def test_a_broken_summary_fails_in_one_line(built_project, tmp_path, damage, message):
    s = _valid(built_project)
    assert contract.problem(s) is None
    damage(s)
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(s))
    with pytest.raises(CorruptFileError) as info:
        contract.read_summary(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: not a certsmooth summary") and message in msg
    out = tmp_path / "written.json"
    with pytest.raises(ValueError, match="breaks the summary contract"):
        contract.write_summary(out, s)
    assert not out.exists()
