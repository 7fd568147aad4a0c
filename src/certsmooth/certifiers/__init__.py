"""The certifiers of the attack × certifier matrix: a registry (torch-free: the workflow's
parse reads it).

Each module declares one certifier kind (:class:`~certsmooth.certifiers.base.Certifier`):
the ``params.yaml`` blocks it reads, its certification runs (the ensembles certify in two
scopes from one training), the matrix columns those runs fill, the artifacts of one cell
and the figure axis of its certificate. ``config`` expands a suite's attacks × certifiers
into cells through :data:`CERTIFIERS`; the workflow's targets, the tables and the figures
iterate over it. docs/certifiers.md ("Adding a certifier") lists what a new one touches.
"""

from __future__ import annotations

from certsmooth.certifiers import bagging, certssb, cohen, dpa, fa, rab
from certsmooth.certifiers.base import Certifier

CERTIFIERS: dict[str, Certifier] = {m.CERTIFIER.kind: m.CERTIFIER for m in (rab, certssb, cohen, dpa, fa, bagging)}


def get(kind: str) -> Certifier:
    return CERTIFIERS[kind]
