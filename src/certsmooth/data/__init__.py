"""Datasets: raw sources (embedded or torchvision) and the prepared ``.npz`` format."""

from certsmooth.data.prepared import PreparedSplit, load_prepared, prepare, save_prepared
from certsmooth.data.sources import SOURCES, fetch, load_raw

__all__ = ["SOURCES", "PreparedSplit", "fetch", "load_prepared", "load_raw", "prepare", "save_prepared"]
