"""DVC wraps the Snakemake targets: one stage per suite; `dvc repro <stage>` builds it, then
`dvc status` is clean; push, a fresh clone, pull and `snakemake --touch` restore a build
that Snakemake considers up to date; `dvc exp run -S` runs and `dvc exp show` lists it."""

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_project, run, snakemake, tool, tree_hashes

pytestmark = pytest.mark.workflow

# What the `tiny` stage of `tiny_dvc_yaml` versions: its outs, then its metrics and plots.
TINY_OUTS = ("data/prepared/mnist5k", "data/poisoned/tiny", "results/tiny")
TINY_METRICS = ("metrics/tiny", "plots/tiny")
BASE_SIGMA, NEW_SIGMA = 0.25, 0.3


def git(project, *args):
    return run(["git", "-c", "user.name=certsmooth-test", "-c", "user.email=test@example.invalid", *args], cwd=project)


def git_identity(project):
    """`dvc exp run` commits experiments itself: give the repository an identity."""
    git(project, "config", "user.name", "certsmooth-test")
    git(project, "config", "user.email", "test@example.invalid")


def tiny_dvc_yaml(project: Path) -> None:
    """Replace dvc.yaml with a single stage `tiny`: the real `demo` stage for the suite
    `tiny` (the two cannot both be declared: both own data/prepared/mnist5k)."""
    real = yaml.safe_load((project / "dvc.yaml").read_text())
    stage = yaml.safe_load(re.sub(r"\bdemo\b", "tiny", yaml.safe_dump(real["stages"]["demo"])))
    (project / "dvc.yaml").write_text(yaml.safe_dump({"metrics": real["metrics"], "stages": {"tiny": stage}},
                                                     sort_keys=False))  # fmt: skip


def tiny_metrics(row: dict) -> dict:
    return row["data"]["metrics"]["metrics/tiny/onepixel/rab-train.json"]["data"]


def resolved_stages(dvc_yaml: Path) -> dict:
    """The stages of dvc.yaml as DVC names them: a `foreach` group `<name>` becomes one stage
    `<name>@<key>` per key, with ${key} and ${item} substituted."""
    out = {}
    for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        if "foreach" not in stage:
            out[name] = stage
            continue
        for key, item in stage["foreach"].items():
            text = yaml.safe_dump(stage["do"]).replace("${key}", key)
            fields = item if isinstance(item, dict) else {"": item}
            for field, value in fields.items():
                text = text.replace("${item" + (f".{field}" if field else "") + "}", str(value))
            out[f"{name}@{key}"] = yaml.safe_load(text)
    return out


def stage_of(suite: str, stages: dict) -> str:
    """The stage that builds ``suite``: its own name (demo) or `suite@<suite>`."""
    return suite if suite in stages else f"suite@{suite}"


def test_dvc_yaml_one_stage_per_suite_without_overlaps(tmp_path):
    """Every suite of params.yaml has a stage wrapping its Snakemake target; `dvc dag`
    (which, unlike `dvc stage list`, rejects overlapping outputs) accepts the file; each
    prepared dataset a suite reads is an output of exactly one stage and a dependency of
    the suite's stage where another stage owns it."""
    project = copy_project(tmp_path / "p", params="params.yaml")
    git(project, "init", "-q")
    dvc = tool("dvc")
    run([dvc, "dag"], cwd=project)
    listed = run([dvc, "stage", "list"], cwd=project).stdout
    stages = resolved_stages(project / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())

    def paths(entries):
        return {next(iter(e)) if isinstance(e, dict) else e for e in entries}

    owner = {}
    for name, stage in stages.items():
        assert re.search(rf"^{name}\s", listed, re.M), name
        for out in paths(stage.get("outs", [])):
            assert out not in owner, f"{out} is an output of {owner.get(out)} and {name}"
            owner[out] = name
    assert len((REPO / "dvc.yaml").read_text().splitlines()) <= 150  # one foreach, not a stage per suite by hand
    for suite, spec in params["suites"].items():
        stage = stages[stage_of(suite, stages)]
        assert stage["cmd"].split()[-1] == suite and "--workflow-profile" in stage["cmd"]
        tracked = [p for entry in stage["params"] for p in ([entry] if isinstance(entry, str) else
                   [f"{file}:{key}" for file, keys in entry.items() for key in keys])]  # fmt: skip
        assert f"suites.{suite}" in tracked or any(t.endswith(f".yaml:suites.{suite}") for t in tracked), tracked
        outs = paths(stage["outs"])
        assert {f"data/poisoned/{suite}", f"results/{suite}"} <= outs
        assert all(next(iter(o.values()))["persist"] for o in stage["outs"])
        assert f"metrics/{suite}" in outs and not next(o for o in stage["outs"] if f"metrics/{suite}" in o)[
            f"metrics/{suite}"]["cache"]  # fmt: skip
        assert paths(stage["plots"]) == {f"plots/{suite}/curves.csv"}
        for folder in [f"data/prepared/{spec['dataset']['name']}"]:
            assert folder in owner, f"{suite} reads {folder}, which no stage outputs"
            assert owner[folder] == stage_of(suite, stages) or folder in stage["deps"], f"{suite} misses {folder}"


def test_dvc_push_clone_pull_touch_then_experiment(tmp_path):
    dvc = tool("dvc")
    project = copy_project(tmp_path / "p")
    tiny_dvc_yaml(project)
    git(project, "init", "-q")
    git_identity(project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "tiny project")
    # Always name the stage: a bare `dvc repro` would also run every other stage.
    assert "Running stage 'tiny'" in run([dvc, "repro", "tiny"], cwd=project).stdout
    lock = (project / "dvc.lock").read_text()
    assert "data/poisoned/tiny" in lock and "suites.tiny" in lock
    assert "Data and pipelines are up to date" in run([dvc, "status", "tiny"], cwd=project).stdout
    shown = run([dvc, "metrics", "show", "--json"], cwd=project).stdout
    assert "onepixel/rab-train.json" in shown and "clean_accuracy" in shown and "lost" in shown
    first = tree_hashes(project, *TINY_OUTS)
    assert "didn't change, skipping" in run([dvc, "repro", "tiny"], cwd=project).stdout  # a no-op
    assert tree_hashes(project, *TINY_OUTS) == first
    # dvc.lock and the metrics/plots files (cache: false) go to git, the outs to the remote
    run([dvc, "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "tiny built")
    assert git(project, "status", "--porcelain").stdout == ""
    run([dvc, "push"], cwd=project)
    built = tree_hashes(project, *TINY_OUTS, *TINY_METRICS)
    models = [p for p in built if p.endswith(".safetensors")]
    assert len(models) == 2 and "metrics/tiny/onepixel/rab-train.json" in built

    # Editing a tracked param makes the stage stale (here, in the pushed project only).
    params = project / "params.yaml"
    params.write_text(params.read_text().replace(f"sigma: {BASE_SIGMA}", f"sigma: {NEW_SIGMA}"))
    stale = run([dvc, "status", "tiny"], cwd=project).stdout
    assert "modified:" in stale and "suites.tiny" in stale

    # A fresh clone: git-tracked files only (metrics included); no outs, no DVC cache,
    # no .snakemake metadata, no logs.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    git_identity(clone)
    assert not any((clone / d).exists() for d in ("data", "results", ".snakemake", "logs", ".dvc/cache"))
    run([dvc, "pull"], cwd=clone)
    assert tree_hashes(clone, *TINY_OUTS, *TINY_METRICS) == built
    assert "Data and pipelines are up to date" in run([dvc, "status"], cwd=clone).stdout

    # Without the touch, pulled files carry download-order mtimes: Snakemake may rerun
    # jobs, but only for mtimes (never for a missing output; nothing was left out).
    untouched = snakemake(clone, "-n", "--cores", "1", "tiny")
    if "Nothing to be done" not in untouched.stdout:
        reasons = re.findall(r"^\s+reason: ([^:]+):", untouched.stdout, re.M)
        assert reasons and set(reasons) <= {"Updated input files", "Input files updated by another job"}, reasons
    # With it, nothing is to be done, and the files are untouched apart from their mtimes.
    snakemake(clone, "--touch", "--cores", "1", "tiny")
    assert "Nothing to be done" in snakemake(clone, "-n", "--cores", "1", "tiny").stdout
    assert tree_hashes(clone, *TINY_OUTS, *TINY_METRICS) == built

    # An experiment with a changed sigma: new models next to the old ones (persist: true).
    exp = run([dvc, "exp", "run", "tiny", "-S", f"suites.tiny.certifiers.rab.sigma={NEW_SIGMA}"], cwd=clone)
    assert "Ran experiment(s)" in exp.stdout
    after = tree_hashes(clone, *TINY_OUTS)
    assert all(after[m] == built[m] for m in models)
    assert len([p for p in after if p.endswith(".safetensors") and f"sigma{NEW_SIGMA}-" in p]) == 2
    rows = json.loads(run([dvc, "exp", "show", "--json"], cwd=clone).stdout)
    (baseline,) = [r for r in rows if r["rev"] != "workspace"]
    assert 0.5 < tiny_metrics(baseline)["clean_accuracy"] <= 1 and "lost" in tiny_metrics(baseline)
    ((experiment,),) = [e["revs"] for e in baseline["experiments"]]
    assert 0.5 < tiny_metrics(experiment)["clean_accuracy"] <= 1 and "lost" in tiny_metrics(experiment)
    params = experiment["data"]["params"]["params.yaml"]["data"]
    assert params["suites"]["tiny"]["certifiers"]["rab"]["sigma"] == NEW_SIGMA

    # The cache (hard-linked into the workspace by `dvc pull`) survived the Snakemake runs.
    for f in (clone / ".dvc/cache/files/md5").rglob("*"):
        if f.is_file() and not f.name.endswith(".dir"):
            assert hashlib.md5(f.read_bytes()).hexdigest() == f.parent.name + f.name, f
