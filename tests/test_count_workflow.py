"""The count certifiers (DPA, FA, bagging) and the undefended control as columns of a suite's
matrix: the tiny `count` suite end to end, identical certificates for any number of training
jobs, and reruns that touch exactly the jobs a setting reaches."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml

from certsmooth import summary as contract
from conftest import copy_project, snakemake, tree_hashes

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def count_project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("count") / "p")
    snakemake(root, "--cores", "2", "count")
    return root


def _jobs(proc) -> dict[str, int]:
    """Snakemake's 'Job stats' table of a dry run."""
    table = proc.stdout.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def test_count_suite_fills_its_matrix(count_project):
    root = count_project
    runs = sorted(root.glob("results/count/*/*/count/*/certify*/summary.json"))
    assert len(runs) == 6
    for p in runs:
        s = contract.read_summary(p)
        assert s["method"] in ("dpa", "fa", "bagging") and s["radius_cmp"] == "ge"
        assert (
            s["deployed_attack"]["needed"]
            == (2 if s["method"] != "bagging" else 1) * s["deployed_attack"]["num_poisons"]
        )
        clean = pd.read_csv(p.parent / "clean.csv")
        assert (clean.loc[~clean["correct"], "radius"] == 0).all()
        assert clean["certificate"].min() >= -1
    board = pd.read_csv(root / "results/count/leaderboard.csv", dtype=str, keep_default_na=False)
    assert len(board) == 8 and set(board["certifier"]) == {"dpa", "fa", "bagging", "none"}
    assert (board["clean accuracy (%)"] != "—").all() and (board["robustness lost (%)"] != "—").all()
    assert (root / "results/count/figures/certified_accuracy.png").stat().st_size > 0
    cells = pd.read_csv(root / "results/count/cells.csv")
    acr = cells[cells["metric"] == "acr_clean"]
    assert set(acr["certifier"]) == {"dpa", "fa", "bagging"} and (acr["unit"] == "mean poisoned samples").all()


def test_undefended_column_fills_the_matrix(count_project):
    """One model per attack on the whole poisoned set: its accuracy and the attack's success on
    the same suite's poisoned sets, no certificate."""
    runs = sorted(count_project.glob("results/count/*/none/undefended/*/predict/summary.json"))
    assert len(runs) == 2  # control and patch
    for p in runs:
        s = contract.read_summary(p)
        assert s["method"] == s["scope"] == "undefended" and s["num_models"] == 1
        assert s["certified_accuracy_clean"] == {"0": s["clean_accuracy"]}  # radius 0: accuracy, nothing more
        clean = pd.read_csv(p.parent / "clean.csv")
        assert (clean["radius"] == 0).all() and not clean["abstain"].any()
        assert clean["correct"].mean() == pytest.approx(s["clean_accuracy"])
        poisons = s["deployed_attack"]["num_poisons"]
        assert (s["certified_vs_deployed_attack"] == 0) == (poisons > 0)  # no certificate against real poisons
        manifest = json.loads((p.parent.parent / "model.json").read_text())
        assert manifest["kind"] == "undefended" and manifest["models"] == [0]


def test_certificates_identical_for_any_number_of_jobs(count_project, tmp_path):
    import shutil

    other = tmp_path / "p"  # the poisoned sets are reused; every model retrains in one job per certifier
    shutil.copytree(count_project, other, symlinks=True)
    for d in other.glob("results/count/*/*/count"):
        shutil.rmtree(d)
    params = yaml.safe_load((other / "params.yaml").read_text())
    for cert in params["suites"]["count"]["certifiers"].values():
        if "count" in cert:
            cert["count"]["jobs"] = 1
    (other / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    snakemake(other, "--cores", "2", "count")
    a = {k: v for k, v in tree_hashes(count_project, "results/count").items() if "/certify" in k}
    b = {k: v for k, v in tree_hashes(other, "results/count").items() if "/certify" in k}
    assert len(a) == 18 and a == b


def test_a_count_setting_reruns_exactly_its_jobs(count_project, tmp_path):
    import shutil

    root = tmp_path / "p"
    shutil.copytree(count_project, root, symlinks=True)
    assert "Nothing to be done" in snakemake(root, "-n", "count").stdout
    text = (root / "params.yaml").read_text()
    old = "fa: {kind: fa, count: {<<: *tiny_count, k: 3, d: 2}}"
    assert old in text
    (root / "params.yaml").write_text(text.replace(old, old.replace("d: 2", "d: 3")))
    # FA's d: its models (2 rows × 2 jobs) and certificates, then metrics and figures; not DPA, not bagging
    assert _jobs(snakemake(root, "-n", "count")) == {
        "train_count": 4, "certify_count": 2, "metrics": 2, "plot_curves": 1, "plot_attacks": 1, "count": 1,
    }  # fmt: skip
    (root / "params.yaml").write_text(text.replace("k: 40, models: 8, alpha: 0.1", "k: 40, models: 8, alpha: 0.2"))
    # bagging's α: its certificates only, no training
    assert _jobs(snakemake(root, "-n", "count")) == {
        "certify_count": 2, "metrics": 2, "plot_curves": 1, "plot_attacks": 1, "count": 1,
    }  # fmt: skip
    (root / "params.yaml").write_text(text.replace("undefended: {epochs: 2,", "undefended: {epochs: 3,"))
    # the undefended model's epochs: its job only (and what reads its summary), not the poisoned sets
    assert _jobs(snakemake(root, "-n", "count")) == {
        "undefended": 2, "metrics": 2, "plot_curves": 1, "plot_attacks": 1, "count": 1,
    }  # fmt: skip
    record = json.loads(next(root.glob("results/count/patch/fa/count/*/part0of2.json")).read_text())
    assert record["subsets"]["d"] == 2 and len(record["subsets"]["shifts"]) == 2
