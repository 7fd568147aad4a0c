"""Architectures (spec ``rab_wang.md`` §2.4, ``certssb.md`` §3) and the wide ensemble."""

from certsmooth.models.archs import ARCHS, build_model
from certsmooth.models.wide import WideEnsemble

__all__ = ["ARCHS", "WideEnsemble", "build_model"]
