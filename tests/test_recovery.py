"""Never stale: an interrupted in-place rerun, and a corrupt model deleted as its error
says, are rebuilt by the next plain run, with outputs byte-identical to an uninterrupted
run (the suite targets request every artifact a user reads)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, copy_project, snakemake, tool, tree_hashes

pytestmark = pytest.mark.workflow

COMMAND = ["--workflow-profile", "workflow/profiles/local", "--cores", "1", "demo"]  # the README's command
CERTIFY = "certify: {scopes: [train, joint], aggregation: votes, alpha: 0.1, radii: [0, 0.1, 0.2, 0.3]}"  # Cert-SSB


def _copy(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest, symlinks=True)
    return dest


def _running(pattern: str) -> bool:
    """Is a process whose command line contains ``pattern`` running?"""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if pattern in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return True
            except OSError:
                continue
    return False


def _interruptible() -> None:
    """The child's Ctrl-C as in a terminal: a test run launched in the background by a
    non-interactive shell (``make test &``) inherits SIGINT ignored, and Snakemake then never
    sees the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


DIRS = ("results/demo", "data/poisoned/demo", "metrics/demo")


def _more_radii(root: Path) -> None:
    p = root / "params.yaml"
    assert p.read_text().count(CERTIFY) == 1
    p.write_text(p.read_text().replace(CERTIFY, CERTIFY.replace("[0, 0.1,", "[0, 0.05, 0.1,")))


@pytest.fixture(scope="module")
def uninterrupted(_built, tmp_path_factory) -> dict[str, str]:
    """The hashes of an uninterrupted rerun after the radii change (one for both signals)."""
    ref = _copy(_built, tmp_path_factory.mktemp("uninterrupted") / "reference")
    _more_radii(ref)
    snakemake(ref, *COMMAND)
    return tree_hashes(ref, *DIRS)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_in_place_rerun_is_finished_by_the_same_command(built_project, uninterrupted, sig):
    """A setting that is in no output path (certify.radii) changes; the rerun is killed
    while `certsmooth certify` runs; the same command then redoes what was lost."""
    _more_radii(built_project)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    for _ in range(3):  # a certify job lasts about a second: it may finish before the signal lands
        with open(built_project / "interrupted.out", "w") as log:
            proc = subprocess.Popen([tool("snakemake"), *COMMAND], cwd=built_project, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_interruptible)  # fmt: skip
            marker = "certsmooth certify --weights results/demo/onepixel/ssb/"
            t0 = time.monotonic()
            while not _running(marker) and proc.poll() is None and time.monotonic() - t0 < 120:
                time.sleep(0.02)
            assert proc.poll() is None, "the run ended before certification started"
            os.killpg(proc.pid, sig)
            assert proc.wait(timeout=60) != 0
        summaries = list((built_project / "results/demo/onepixel/ssb/certify").rglob("summary.json"))
        if len(summaries) < 2:  # the killed job's outputs are removed (the other scope's may not have started)
            break
        for summary in summaries:  # both jobs beat the signal: undo them and interrupt again
            shutil.rmtree(summary.parent)
    else:
        raise AssertionError("no interrupted certify job in 3 tries: its outputs were kept")

    snakemake(built_project, *COMMAND)  # the same command, no cleanup
    metrics = json.loads((built_project / "results/demo/onepixel/ssb/metrics.json").read_text())
    assert set(metrics["train"]["certified_accuracy_clean"]) == {"0", "0.05", "0.1", "0.2", "0.3"}
    assert tree_hashes(built_project, *DIRS) == uninterrupted
    assert "Nothing to be done" in snakemake(built_project, "-n", *COMMAND[2:]).stdout


@pytest.mark.parametrize("damage", ["random bytes", "edited manifest"])
def test_corrupt_model_recovers_by_deleting_what_the_error_names(built_project, damage):
    project = built_project
    before = tree_hashes(project, "results/demo/onepixel/rab", "metrics/demo")
    weights = sorted((project / "results/demo/onepixel/rab/models").rglob("part0of2.safetensors"))[0]
    manifest = weights.with_suffix(".json")
    if damage == "random bytes":
        weights.write_bytes(os.urandom(weights.stat().st_size))
    else:
        m = json.loads(manifest.read_text())
        m["seed"] += 1
        manifest.write_text(json.dumps(m))
    proc = snakemake(project, *COMMAND, check=False)  # the damaged file is newer: certification reruns, fails
    assert proc.returncode != 0
    (line,) = {x for x in proc.stderr.splitlines() if x.startswith("certsmooth: error:")}  # both scopes: one line
    rel_w, rel_m = weights.relative_to(project), manifest.relative_to(project)
    assert f"delete {rel_w} and {rel_m} and rerun the workflow" in line
    named_first = line.removeprefix("certsmooth: error: ")
    assert named_first.startswith(str(rel_m if damage == "edited manifest" else rel_w)), line
    for f in (weights, manifest):  # the fix the line gives
        f.unlink()
    snakemake(project, *COMMAND)
    assert tree_hashes(project, "results/demo/onepixel/rab", "metrics/demo") == before


TINY = ["--cores", "2", "tiny"]  # the plain command: no profile (so no --rerun-incomplete)


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory) -> dict[str, str]:
    ref = copy_project(tmp_path_factory.mktemp("tiny") / "reference")
    snakemake(ref, *TINY)
    return tree_hashes(ref, "results/tiny", "data/poisoned/tiny", "metrics/tiny")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_right_after_a_job_wrote_its_outputs(tmp_path, tiny_reference, sig):
    """Ctrl-C (SIGINT to the process group) the moment a training job's outputs appear,
    before Snakemake has recorded the job: the same plain command finishes the run, byte for
    byte (it used to refuse with IncompleteFilesException after SIGINT). The run says once
    what happens and, at its end, that it was stopped, not failed; the fork server's socket
    folder does not outlive it."""
    project = copy_project(tmp_path / "p")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", TMPDIR=str(tmp))
    env.pop("PYTHONPATH", None)
    with open(project / "interrupted.out", "w") as log:
        proc = subprocess.Popen([tool("snakemake"), *TINY], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_interruptible)  # fmt: skip
        t0 = time.monotonic()
        while not list((project / "results/tiny").rglob("part0of2.json")) and time.monotonic() - t0 < 120:
            assert proc.poll() is None, "the run ended before the training job wrote its outputs"
            time.sleep(0.002)
        os.killpg(proc.pid, sig)
        assert proc.wait(timeout=120) != 0
    out = (project / "interrupted.out").read_text()
    assert out.count("Will exit after finishing currently running jobs") <= 1, out[-3000:]
    assert f"certsmooth: the run was stopped by {signal.Signals(sig).name}, not by a failing job" in out, out[-3000:]
    t0 = time.monotonic()
    while list(tmp.iterdir()) and time.monotonic() - t0 < 10:  # the server leaves within a second
        time.sleep(0.1)
    assert not list(tmp.iterdir()), "the fork server's folder outlived the run"
    rerun = snakemake(project, *TINY)  # the same command, no cleanup, no --rerun-incomplete
    assert "IncompleteFilesException" not in rerun.stderr
    assert tree_hashes(project, "results/tiny", "data/poisoned/tiny", "metrics/tiny") == tiny_reference
