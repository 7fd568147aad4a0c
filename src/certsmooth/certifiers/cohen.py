"""Cohen et al.: test-time smoothing of one base classifier trained on the (poisoned) set
by Gaussian augmentation, MACER or SmoothAdv; CERTIFY and PREDICT in chunks of test
points. Rules: cohen.smk; library: smoothing/ga.py, certify/cohen.py (sampling),
certify/cohen_merge.py (the merged table)."""

from __future__ import annotations

from certsmooth.certifiers.base import Certifier, Experiment


def _runs(exp: Experiment) -> list[tuple[str, str]]:
    return [(exp.certifier_name, exp.cohen_dir())]


def _targets(exp: Experiment) -> list[str]:
    return [f"{exp.cohen_model_dir()}/model.safetensors", f"{exp.cohen_model_dir()}/model.json"]


CERTIFIER = Certifier("cohen", "Cohen", ("cohen",), "l2", _runs, _targets)
