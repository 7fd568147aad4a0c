"""The conda environment lists the same packages as pyproject.toml, and the README's two
commands are what CI runs."""

import re

import tomllib
import yaml

from conftest import REPO

# conda-forge names of PyPI packages whose names differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "snakemake-minimal": "snakemake"}


def name(req: str) -> str:
    return re.split(r"[<>=!~ ;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_conda_env_matches_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs/certsmooth.yaml").read_text())
    conda = {CONDA_TO_PYPI.get(name(d), name(d)) for d in env["dependencies"] if isinstance(d, str)}
    conda -= {"python", "pip"}
    assert conda == {name(d) for d in deps}


def test_conda_env_lower_bounds_match_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "envs/certsmooth.yaml").read_text())
    bounds = {
        CONDA_TO_PYPI.get(name(d), name(d)): d.partition(">=")[2] for d in env["dependencies"] if isinstance(d, str)
    }
    for d in deps:
        assert bounds[name(d)] == d.partition(">=")[2], d


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci/run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert re.search(r"^make test$", ci, re.M)
