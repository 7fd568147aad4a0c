"""The SLURM profile on a real SLURM cluster: the tiny suite runs through the
snakemake-executor-plugin-slurm (every non-local rule really goes through `sbatch`,
training jobs packed into one group job that asks for one GPU), and its outputs
equal a local run's byte for byte.

Needs a reachable cluster (`sinfo` answers and a node is up), e.g. the single-node one of
`tests/slurm/cluster.sh start` (root, Debian; `.ci/run` starts it before the tests and
stops it afterwards). Skipped with the reason otherwise."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO, copy_project, run, snakemake, tool, tree_hashes

pytestmark = pytest.mark.workflow

SUITE = "tiny"
GPU_RULES = ("train_partition", "certify")


def _cluster() -> dict:
    """The first up node's CPUs, memory and GPU type, or skip with the reason."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        pytest.skip("no SLURM client (sbatch, sinfo) on PATH; start a test cluster with `tests/slurm/cluster.sh start`")
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T|%c|%m|%G"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"no SLURM cluster reachable (sinfo: {exc}); start one with `tests/slurm/cluster.sh start`")
    for line in out.splitlines():
        state, cpus, mem, gres = line.strip().split("|")
        if state.rstrip("*") in ("idle", "mixed", "allocated", "completing"):
            gpu = re.search(r"gpu:([A-Za-z0-9_.]+):\d+", gres)
            return {"cpus": int(cpus), "mem_mb": int(mem), "gpu_model": gpu.group(1) if gpu else None}
    pytest.skip(f"SLURM answers but no node is up (sinfo: {out.strip()!r})")


def _test_profile(project, cluster: dict) -> str:
    """The repository's SLURM profile, fitted to the test cluster: its GPU type for
    `gpu_model`, at most its CPUs and a share of its memory per job, `squeue` for job
    states (no accounting database), short waits. Everything else (executor, retries,
    groups, resource scopes, the rules that ask for GPUs) is the shipped profile."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    mem = max(500, cluster["mem_mb"] // 8)
    for res in [profile["default-resources"], *profile["set-resources"].values()]:
        res["mem_mb"] = min(int(res.get("mem_mb", mem)), mem)
        for key in ("cpus_per_gpu", "cpus_per_task"):
            if key in res:
                res[key] = min(int(res[key]), cluster["cpus"])
        if "gpu_model" in res:
            if cluster["gpu_model"]:
                res["gpu_model"] = cluster["gpu_model"]
            else:  # a cluster without GPUs: the same jobs, no GPU request
                del res["gpu_model"]
                res["gpu"] = 0
    profile.update({
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 5,
        "latency-wait": 5,
    })  # fmt: skip
    folder = project / "test-slurm-profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return str(folder)


def test_tiny_suite_through_slurm_equals_local_run(tmp_path, capsys):
    cluster = _cluster()
    slurm_project = copy_project(tmp_path / "slurm")
    profile = _test_profile(slurm_project, cluster)
    proc = run([tool("snakemake"), "--workflow-profile", profile, "--verbose", SUITE], cwd=slurm_project, timeout=900)
    log = proc.stdout + proc.stderr
    submitted = re.findall(r"^(Job \S+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.)$", log, re.M)
    sbatch = re.findall(r"^sbatch call: (sbatch .*?) --wrap=", log, re.M)
    with capsys.disabled():
        print(f"\n[SLURM test] {len(submitted)} sbatch submissions on {cluster}:")
        for line, *_ in submitted:
            print(f"[SLURM test] {line}")

    # prepare_dataset, poison, one packed group of both training jobs, certify;
    # metrics and figures are localrules
    assert len(submitted) == 4, log[-6000:]
    logs = {rule: [m for m in submitted if f"/{rule}" in m[2]] for rule in ("group_trainpack", "rule_certify")}
    assert len(logs["group_trainpack"]) == 1 and len(logs["rule_certify"]) == 1
    packed = next(s for s in sbatch if "group_trainpack" in s)
    want_gpu = f"--gpus={cluster['gpu_model']}:1" if cluster["gpu_model"] else None
    if want_gpu:  # both training jobs share one GPU; runtime is summed over them (2 x 240 min)
        assert want_gpu in packed and "-t 480" in packed, packed
        assert want_gpu in next(s for s in sbatch if "rule_certify" in s)
    for rule in ("prepare_dataset", "poison"):
        assert "--gpus" not in next(s for s in sbatch if f"rule_{rule}" in s)
    assert not any(f"rule_{r}" in s for s in sbatch for r in ("metrics", "plot_curves", "plot_samples"))
    # SLURM itself ran them: the controller lists each job as completed (MinJobAge keeps them)
    for _, jobid, _ in submitted:
        state = subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True).stdout
        assert "JobState=COMPLETED" in state, state
    assert "Nothing to be done" in snakemake(slurm_project, "-n", "--cores", "1", SUITE).stdout

    local_project = copy_project(tmp_path / "local")
    snakemake(local_project, "--cores", "2", SUITE)
    dirs = (f"results/{SUITE}", f"data/poisoned/{SUITE}", "data/prepared")
    local, remote = tree_hashes(local_project, *dirs), tree_hashes(slurm_project, *dirs)
    assert any(k.endswith(".safetensors") for k in local) and any(k.endswith("metrics.json") for k in local)
    assert remote == local
