"""RAB (Weber et al.) and Wang et al.: a smoothed ensemble trained per partition with one
Gaussian draw per (model, example); scope ``train`` is RAB's certificate, ``joint`` Wang
et al.'s (the test trigger included). Rules: train.smk, certify.smk; library:
smoothing/train.py, certify/ensemble.py, certify/run.py."""

from certsmooth.certifiers.base import Certifier, ensemble_runs, ensemble_targets

CERTIFIER = Certifier("rab", "RAB", ("ensemble", "certify"), "l2", ensemble_runs, ensemble_targets)
