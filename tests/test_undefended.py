"""The control column: one undefended model per attack, its accuracy and the attack's success
on the same suite's poisoned sets, no certificate; and the record's place in the house."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from certsmooth import summary as contract
from conftest import copy_project, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def undefended_project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("undefended") / "p")
    params = yaml.safe_load((root / "params.yaml").read_text())
    suite = params["suites"]["count"]
    suite["certifiers"] = {"none": {"kind": "undefended", "undefended": {"epochs": 2, "batch_size": 32,
                                                                        "device": "cpu"}}}  # fmt: skip
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    snakemake(root, "--cores", "2", "count")
    return root


def test_undefended_column_fills_the_matrix(undefended_project):
    root = undefended_project
    runs = sorted(root.glob("results/count/*/none/undefended/*/predict/summary.json"))
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
    effects = pd.read_csv(root / "results/count/attack_effects.csv")
    assert set(effects["certifier"]) == {"none"} and len(effects) == 2
    assert "## Undefended" in (root / "results/count/summary.md").read_text()


def test_its_settings_rerun_only_it(undefended_project):
    """Its epochs reach its own job (and what reads its summary), not the poisoned sets."""
    root = undefended_project
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["suites"]["count"]["certifiers"]["none"]["undefended"]["epochs"] = 3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = snakemake(root, "-n", "--cores", "2", "count").stdout
    assert "rule undefended:" in out and "rule poison:" not in out and "rule prepare_dataset:" not in out
