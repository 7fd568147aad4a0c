"""The certifiers of the attack × certifier matrix: one record per kind
(:class:`~certsmooth.certifiers.base.Certifier`), torch-free (the workflow's parse reads them).

Every module of this package but ``base`` declares ``CERTIFIERS``, the records of one family;
the registry holds them all, in the order of their ``rank`` (tables and columns follow it).
``config`` expands a suite's attacks × certifiers into cells through :data:`CERTIFIERS`, the
schema's ``kind`` choices and blocks come from it, and the workflow's targets, the tables and
the figures iterate over it. docs/certifiers.md ("Adding a certifier") walks through a new one.
"""

from __future__ import annotations

import importlib
import pkgutil

from certsmooth.certifiers.base import Certifier


def _discover() -> dict[str, Certifier]:
    records = [
        record
        for info in pkgutil.iter_modules(__path__)
        if info.name != "base"
        for record in importlib.import_module(f"{__name__}.{info.name}").CERTIFIERS
    ]
    return {r.kind: r for r in sorted(records, key=lambda r: r.rank)}


CERTIFIERS: dict[str, Certifier] = _discover()


def get(kind: str) -> Certifier:
    return CERTIFIERS[kind]
