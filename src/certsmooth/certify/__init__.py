"""Certification of smoothed ensembles: confidence bounds, radii, per-point results."""

from certsmooth.certify.bounds import (
    certify_from_scores,
    certify_from_votes,
    clopper_pearson,
    hoeffding_halfwidth,
    radius,
)

__all__ = ["certify_from_scores", "certify_from_votes", "clopper_pearson", "hoeffding_halfwidth", "radius"]
