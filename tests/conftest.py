from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from certsmooth.artifacts import tree_hashes  # noqa: F401 (tests import it from here)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Every certsmooth process the tests start records the library modules it loaded here
# (certsmooth.__main__); tests/test_provenance.py checks them against the rules' inputs.
IMPORT_TRACE = Path(tempfile.mkdtemp(prefix="certsmooth-import-trace-"))
os.environ["CERTSMOOTH_IMPORT_TRACE"] = str(IMPORT_TRACE)
atexit.register(shutil.rmtree, IMPORT_TRACE, ignore_errors=True)  # each pytest process removes its own

# Files a workflow run needs; copied into temporary project folders by the tests.
PROJECT_FILES = [
    "Snakefile",
    "params.yaml",
    "config",
    "dvc.yaml",
    ".dvcignore",
    ".dvc/config",
    ".dvc/.gitignore",
    ".gitignore",
    ".test",
    "workflow",
    "src/certsmooth",
    "envs",
]


def tool(name: str) -> str:
    """Path of a console script installed next to the running interpreter."""
    path = BIN / name
    return str(path) if path.exists() else name


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def copy_project(dest: Path, params: str | None = ".test/params.yaml") -> Path:
    """A fresh copy of the workflow in ``dest``; ``params`` replaces params.yaml."""
    for rel in PROJECT_FILES:
        src = REPO / rel
        if not src.exists():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, target)
    if params is not None:
        shutil.copy2(REPO / params, dest / "params.yaml")
    return dest


def snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([tool("snakemake"), *args], cwd=cwd, check=check)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test``: ``-n auto --dist loadgroup``) the tests that use the
    session's built project share one worker, so that it is built once and the kill tests
    that look for a job's command line (tests/test_recovery.py) never see another test's
    jobs; every other file stays on one worker, so that its module fixtures are built once."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = "built-project" if "_built" in item.fixturenames else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the workflow with the tiny test configuration as params.yaml."""
    return copy_project(tmp_path / "project")


BUILT_SUITES = ("demo", "bilevel")  # the suites the session's built project runs


@pytest.fixture(scope="session")
def _built(tmp_path_factory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("built") / "project")
    snakemake(root, "--cores", "2", *BUILT_SUITES)
    return root


@pytest.fixture
def built_project(_built: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny project after a complete run (outputs, logs and
    Snakemake metadata, modification times preserved)."""
    dest = tmp_path / "built"
    shutil.copytree(_built, dest, symlinks=True)
    return dest
