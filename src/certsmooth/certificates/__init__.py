"""The certificates' mathematics, pure functions without I/O: confidence bounds and radii of the
smoothed ensembles (RAB, Wang et al., Cert-SSB's anisotropic radius and storage update), Cohen
et al.'s CERTIFY/PREDICT, the count certificates (DPA, Finite Aggregation, bagging) and the
checks that refuse impossible input. The steps that read and write files are in
:mod:`certsmooth.steps`; the records that place each certifier in the workflow in
:mod:`certsmooth.certifiers`."""

from certsmooth.certificates.bounds import (
    certify_from_scores,
    certify_from_votes,
    clopper_pearson,
    hoeffding_halfwidth,
    radius,
)

__all__ = ["certify_from_scores", "certify_from_votes", "clopper_pearson", "hoeffding_halfwidth", "radius"]
