"""What a certifier declares (torch-free: the workflow's parse reads it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Experiment(Protocol):
    """What a certifier reads of one cell (``certsmooth.config.Experiment``; a protocol, so
    that this package, which config imports, imports nothing of config)."""

    cfg: dict
    certifier_name: str

    def results_dir(self) -> str: ...
    def certify_dir(self, scope: str) -> str: ...
    def partition_files(self) -> tuple[list[str], list[str]]: ...
    def sigma_dir(self) -> str: ...
    def test_sigma_dir(self) -> str: ...
    def cohen_dir(self) -> str: ...
    def cohen_model_dir(self) -> str: ...
    def count_certify_dir(self) -> str: ...
    def count_model_files(self) -> tuple[list[str], list[str]]: ...


@dataclass(frozen=True)
class Certifier:
    kind: str  # the `kind` of a certifier entry in params.yaml
    label: str  # how tables and figures name it
    blocks: tuple[str, ...]  # its params.yaml blocks besides `sigma` (each a schema $def)
    axis: str  # what its radius counts: "l2" (a norm of the perturbation) or "poisons" (samples)
    runs: Callable[[Experiment], list[tuple[str, str]]]  # (column, certification folder) of one cell
    targets: Callable[[Experiment], list[str]]  # the cell's artifacts besides its runs' files


def ensemble_runs(exp: Experiment) -> list[tuple[str, str]]:
    """One run per scope of a smoothed ensemble: both scopes certify the same models."""
    return [(f"{exp.certifier_name} ({scope})", exp.certify_dir(scope)) for scope in exp.cfg["certify"]["scopes"]]


def ensemble_targets(exp: Experiment) -> list[str]:
    weights, manifests = exp.partition_files()
    return weights + manifests
