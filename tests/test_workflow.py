"""The Snakemake workflow: dry runs, lint, a tiny end-to-end run, determinism, failures."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from conftest import REPO, copy_project, run, snakemake, tool

pytestmark = pytest.mark.workflow


def job_counts(stdout: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table."""
    table = stdout.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def tree_hashes(root: Path, *dirs: str) -> dict[str, str]:
    out = {}
    for d in dirs:
        for f in sorted((root / d).rglob("*")):
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def test_dry_run_default_params(tmp_path):
    project = copy_project(tmp_path / "p", params="params.yaml")
    proc = snakemake(project, "-n", "--cores", "1", "--forceall")
    assert job_counts(proc.stdout) == {"prepare_dataset": 1, "poison": 5, "plot_samples": 5, "all": 1}


def test_dry_run_tiny_params_and_suite_target(project):
    proc = snakemake(project, "-n", "--cores", "1", "demo")
    assert job_counts(proc.stdout) == {"prepare_dataset": 1, "poison": 3, "plot_samples": 3, "demo": 1}


def test_dry_run_torchvision_dataset_plans_download(project):
    params = (project / "params.yaml").read_text()
    params = params.replace(
        "{name: mnist5k, classes: [1, 0], split: {test_fraction: 0.5, seed: 3}}",
        "{name: cifar10, classes: [bird, airplane]}",
    )
    (project / "params.yaml").write_text(params)
    proc = snakemake(project, "-n", "--cores", "1")
    assert job_counts(proc.stdout) == {
        "fetch_dataset": 1,
        "prepare_dataset": 1,
        "poison": 3,
        "plot_samples": 3,
        "all": 1,
    }
    assert "data/prepared/cifar10/2-0/official/train.npz" in proc.stdout


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_tiny_end_to_end(project):
    snakemake(project, "--cores", "2")
    for exp in ("onepixel", "blending", "badnets"):
        png = project / f"results/demo/{exp}/figures/samples.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (project / f"logs/plot_samples/demo/{exp}.log").exists()
    records = sorted((project / "data/poisoned/demo").rglob("record.json"))
    assert len(records) == 3
    rec = json.loads((project / "data/poisoned/demo/onepixel/onepixel-d0.5-r0.01-t0-s1/record.json").read_text())
    # .test: 1000 mnist5k images of digits 1 and 0, half for training -> 500; 1% -> 5 poisons
    assert rec["train"]["num_examples"] == 500 and rec["train"]["num_poisons"] == 5
    assert rec["train"]["stacked_norm"] <= 0.5 * 5**0.5 + 1e-6
    again = snakemake(project, "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_same_outputs_whatever_the_number_of_cores(tmp_path):
    a = copy_project(tmp_path / "a")
    b = copy_project(tmp_path / "b")
    snakemake(a, "--cores", "1")
    snakemake(b, "--cores", "2")
    ha, hb = tree_hashes(a, "data", "results"), tree_hashes(b, "data", "results")
    assert ha == hb and len(ha) == 2 + 3 * 5 + 3


def test_figure_param_change_reruns_only_figures(project):
    snakemake(project, "--cores", "2")
    text = (project / "params.yaml").read_text().replace("dpi: 60", "dpi: 70")
    (project / "params.yaml").write_text(text)
    proc = snakemake(project, "-n", "--cores", "1")
    assert job_counts(proc.stdout) == {"plot_samples": 3, "all": 1}


def test_failing_job_leaves_no_output(project):
    # 90% of the training set cannot be drawn from the non-target half: the poison job fails
    text = (project / "params.yaml").read_text().replace("rate: 0.01", "rate: 0.9")
    (project / "params.yaml").write_text(text)
    proc = snakemake(project, "--cores", "1", "--keep-going", check=False)
    assert proc.returncode != 0
    log = (project / "logs/poison/demo/onepixel/onepixel-d0.5-r0.9-t0-s1.log").read_text()
    assert "attack.rate = 0.9 asks for 450 poisons but only 250 training points" in log
    assert not (project / "data/poisoned/demo/onepixel").exists() or not any(
        (project / "data/poisoned/demo/onepixel").rglob("*.*")
    )
    assert (project / "results/demo/blending/figures/samples.png").exists()  # other jobs went on


def test_cli_poison_with_corrupt_input_writes_nothing(tmp_path):
    bad = tmp_path / "train.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "out"
    proc = run(
        [tool("python"), "-m", "certsmooth", "poison", "--train", str(bad), "--test", str(bad),
         "--attack", '{"kind": "backdoor", "trigger": {"name": "onepixel"}, "rate": 0.1, "target": 0}',
         "--seed", "0", "--experiment", "x/y", "--out-dir", str(out)],
        cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith(f"certsmooth: error: {bad}: unreadable .npz")
    assert not out.exists()
