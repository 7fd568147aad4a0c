"""Cert-SSB (Qiao et al.): the RAB ensemble with a per-sample σ fixed before training (a
pilot ensemble and gradient ascents), the anisotropic certificate and the storage update.
Rules: sigma.smk, train.smk, certify.smk; library: smoothing/certssb.py, certify/run.py."""

from __future__ import annotations

from certsmooth.certifiers.base import Certifier, Experiment, ensemble_runs, ensemble_targets


def _targets(exp: Experiment) -> list[str]:
    sd, td = exp.sigma_dir(), exp.test_sigma_dir()
    return [
        *ensemble_targets(exp),
        *(f"{sd}/{f}" for f in ("train_sigma.npz", "train_sigma.json", "pilot.safetensors", "pilot.json")),
        f"{td}/test_sigma.npz", f"{td}/test_sigma.json", f"{exp.results_dir()}/figures/sigma.png",
    ]  # fmt: skip


CERTIFIER = Certifier("certssb", "Cert-SSB", ("ensemble", "sigma_opt", "certify"), "l2", ensemble_runs, _targets)
