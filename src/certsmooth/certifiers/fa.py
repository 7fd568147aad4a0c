"""Finite Aggregation (Wang, Levine & Feizi, ICML 2022): k·d base models, each training
sample in d of their subsets; certificate ρ̄ (inserted or deleted samples; d = 1 is DPA).
Shared parts: :mod:`certsmooth.certifiers.count`."""

from certsmooth.certifiers.base import Certifier
from certsmooth.certifiers.count import runs, targets

CERTIFIER = Certifier("fa", "FA", ("count",), "poisons", runs, targets)
