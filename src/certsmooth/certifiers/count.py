"""What the three count certifiers (DPA, Finite Aggregation, bagging) share: base models on
subsets of the poisoned training set (rules: count.smk; library: data/partition.py,
aggregation/, certify/dpa.py, certify/fa.py, certify/bagging.py), one certification run per
cell, a certificate that counts poisoned samples (figure axis ``poisons``)."""

from __future__ import annotations

from certsmooth.certifiers.base import Experiment


def runs(exp: Experiment) -> list[tuple[str, str]]:
    return [(exp.certifier_name, exp.count_certify_dir())]


def targets(exp: Experiment) -> list[str]:
    weights, manifests = exp.count_model_files()
    return weights + manifests
