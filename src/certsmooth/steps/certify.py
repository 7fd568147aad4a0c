"""Step ``certify``: the clean and triggered test points of one scope, certified by a trained
smoothed ensemble (RAB / Wang et al., Cert-SSB)."""

from __future__ import annotations

from typing import Literal

from certsmooth.certify.run import certify_experiment
from certsmooth.logs import LOG


def run(*, weights: list[str], manifests: list[str], train: str, record: str, clean_test: str, triggered_test: str,
        ensemble: dict, certify: dict, scope: Literal["train", "joint"], sigma: float, seed: int, experiment: str,
        device: str, out_clean: str, out_triggered: str, out_summary: str, train_sigma: str | None = None,
        test_sigma: str | None = None) -> None:  # fmt: skip
    """``train``: the poisoned training set (its checksum is checked, the poisons' norms
    read); ``train_sigma`` / ``test_sigma``: Cert-SSB's noise scales."""
    summary = certify_experiment(
        weights=weights, manifests=manifests, train_path=train, record_path=record, clean_test_path=clean_test,
        triggered_test_path=triggered_test, ensemble=ensemble, certify=certify, scope=scope, sigma=sigma, seed=seed,
        experiment=experiment, device=device, train_sigma_path=train_sigma, test_sigma_path=test_sigma,
        out_clean=out_clean, out_triggered=out_triggered, out_summary=out_summary,
    )  # fmt: skip
    LOG.info(
        "%s scope %s: clean acc %.3f, cert acc@0 %.3f, ASR %.3f, certified vs attack %.3f",
        experiment, scope, summary["clean_accuracy"], summary["certified_accuracy_clean"]["0"],
        summary["attack_success_rate"], summary["certified_vs_deployed_attack"],
    )  # fmt: skip
