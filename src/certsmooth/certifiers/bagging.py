"""Bagging (Jia, Cao & Gong, AAAI 2021): N base models on subsamples of k training samples
drawn with replacement; certified poisoning size r* (modified, deleted or inserted samples)
at confidence 1 − α. Shared parts: :mod:`certsmooth.certifiers.count`."""

from certsmooth.certifiers.base import Certifier
from certsmooth.certifiers.count import runs, targets

CERTIFIER = Certifier("bagging", "Bagging", ("count",), "poisons", runs, targets)
