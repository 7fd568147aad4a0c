"""Architectures (RAB's, arXiv 2003.08904, and Cert-SSB's, arXiv 2504.21730), their
output conventions and the wide ensemble. Imported lazily, so that
:mod:`certsmooth.models.inputs` (which input sizes each architecture takes) is available
without torch."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy names below resolve to (also what certsmooth.provenance follows)
    from certsmooth.models.archs import ARCHS, build_model, num_outputs, predictions, probabilities
    from certsmooth.models.wide import WideEnsemble, lane_votes, wide_lane

_EXPORTS = {
    "ARCHS": "archs", "build_model": "archs", "predictions": "archs", "probabilities": "archs", "num_outputs": "archs",
    "WideEnsemble": "wide", "wide_lane": "wide", "lane_votes": "wide",
}  # fmt: skip
__all__ = ["ARCHS", "WideEnsemble", "build_model", "lane_votes", "num_outputs", "predictions", "probabilities",
           "wide_lane"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"certsmooth.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'certsmooth.models' has no attribute {name!r}")
