"""DVC wraps the Snakemake target: `dvc repro` builds it, then `dvc status` is clean."""

import hashlib

import pytest

from conftest import copy_project, run, tool

pytestmark = pytest.mark.workflow


def git(project, *args):
    return run(["git", "-c", "user.name=certsmooth-test", "-c", "user.email=test@example.invalid", *args], cwd=project)


def test_dvc_repro_then_status_clean(tmp_path):
    project = copy_project(tmp_path / "p")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "tiny project")
    dvc = tool("dvc")
    run([dvc, "repro"], cwd=project)
    figure = project / "results/demo/badnets/figures/samples.png"
    digest = hashlib.sha256(figure.read_bytes()).hexdigest()
    lock = (project / "dvc.lock").read_text()
    assert "data/poisoned/demo" in lock and "suites.demo" in lock
    status = run([dvc, "status"], cwd=project)
    assert "Data and pipelines are up to date" in status.stdout
    shown = run([dvc, "metrics", "show", "--json"], cwd=project).stdout
    assert "onepixel" in shown and "clean_acc" in shown and "CA_clean@0" in shown
    # a second repro is a no-op and the artifacts are unchanged
    again = run([dvc, "repro"], cwd=project)
    assert "didn't change, skipping" in again.stdout
    assert hashlib.sha256(figure.read_bytes()).hexdigest() == digest
    # editing a tracked param makes the stage stale
    params = (project / "params.yaml").read_text().replace("sigma: 0.25", "sigma: 0.3")
    (project / "params.yaml").write_text(params)
    stale = run([dvc, "status"], cwd=project)
    assert "modified:" in stale.stdout and "suites.demo" in stale.stdout
