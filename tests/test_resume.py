"""Interrupting a workflow run mid-training and starting it again.

The ``tiny`` suite (one RAB experiment, two training jobs) runs with the local profile,
as users run it; its training is lengthened to a few seconds and checkpointed after
every epoch. The run is killed like ``kill -TERM -<pgid>`` (what a scheduler or a
terminal sends) as soon as a training checkpoint exists; the same command then
completes, the interrupted job resumes from its checkpoint, the checkpoints are removed,
and the models are bit for bit those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, copy_project, snakemake, tool

pytestmark = pytest.mark.workflow

EPOCHS = 12
COMMAND = ["--workflow-profile", "workflow/profiles/local", "--cores", "1"]


def _tiny_project(dest: Path) -> Path:
    root = copy_project(dest)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["suites"]["tiny"]["certifiers"]["rab"]["ensemble"]["epochs"] = EPOCHS
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def _models(root: Path) -> dict[str, Path]:
    (folder,) = (root / "results/tiny/onepixel/rab/models").iterdir()
    return {p.name: p for p in sorted(folder.iterdir())}


def _start(root: Path) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    log = open(root / "interrupted.out", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [tool("snakemake"), *COMMAND, "tiny"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a shell job
    )  # fmt: skip


def _wait_for_checkpoint(proc: subprocess.Popen, root: Path, timeout: float = 120) -> Path:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = sorted(root.glob("checkpoints/tiny/onepixel/rab/*/part*of2/*.json"))
        if found:
            return found[0].parent
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pytest.fail(f"no training checkpoint appeared:\n{(root / 'interrupted.out').read_text()[-3000:]}")


def test_killed_run_resumes_training_and_completes(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    monkeypatch.setenv("CERTSMOOTH_CHECKPOINT_EVERY_S", "0")
    # the reference: the same training, never interrupted
    ref = _tiny_project(tmp_path / "reference")
    snakemake(ref, *COMMAND, "tiny", "--until", "train_partition")
    assert not list(ref.glob("checkpoints/**/*.json"))

    root = _tiny_project(tmp_path / "project")
    proc = _start(root)
    ckdir = _wait_for_checkpoint(proc, root)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    part = ckdir.name  # e.g. part1of2: the job that was killed
    assert not (root / f"results/tiny/onepixel/rab/models/{ckdir.parent.name}/{part}.safetensors").exists()
    assert list(ckdir.glob("*.safetensors")), "the checkpoint survives the kill"
    assert not list((root / ".snakemake/locks").glob("*")), "SIGTERM releases Snakemake's lock"

    snakemake(root, *COMMAND, "tiny")  # the same command again, no cleanup
    log = (root / f"logs/train_partition/tiny/onepixel/rab/{ckdir.parent.name}/{part}.log").read_text()
    resumed = [line for line in log.splitlines() if "resuming lane" in line]
    assert resumed and f"of {EPOCHS} (checkpoint {ckdir.relative_to(root)}/" in resumed[0], log
    assert "from scratch" not in log
    assert not ckdir.exists() and not list(root.glob("checkpoints/**/*.json"))
    assert (root / "results/tiny/onepixel/rab/metrics.json").is_file()

    got, want = _models(root), _models(ref)
    assert sorted(got) == sorted(want) and len(got) == 4  # 2 jobs: weights + manifest
    for name, path in got.items():
        if name.endswith(".json"):
            assert json.loads(path.read_text()) == json.loads(want[name].read_text()), name
            continue
        a, b = load_file(path), load_file(want[name])
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs from the uninterrupted run"
