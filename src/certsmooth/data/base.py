"""What every dataset source is and returns: :class:`Source` (static facts, fetch, load) and
the raw arrays it loads (:class:`RawDataset`). The built-in sources are in
:mod:`certsmooth.data.sources`, a user's own in :mod:`certsmooth.data.user`; both build on
this module, which imports neither."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from certsmooth.artifacts import sha256_files


@dataclass
class RawSplit:
    x: np.ndarray  # uint8, N×C×H×W
    y: np.ndarray  # int64, N

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError(f"raw images must be uint8 N×C×H×W, got {self.x.dtype} {self.x.shape}")
        if self.y.shape != (self.x.shape[0],):
            raise ValueError(f"labels shape {self.y.shape} does not match {self.x.shape[0]} images")


@dataclass
class RawDataset:
    name: str
    train: RawSplit
    test: RawSplit | None  # None: the source has no official split
    class_names: list[str]
    origin: str
    raw_sha256: str
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Source(abc.ABC):
    """Static facts about a dataset source (usable without loading any data)."""

    name: str
    class_names: tuple[str, ...]
    shape: tuple[int, int, int]
    has_official_split: bool
    needs_download: bool

    @abc.abstractmethod
    def raw_files(self, raw_dir: Path) -> list[Path]:
        """The files this source reads (for checksums and error messages)."""

    @abc.abstractmethod
    def fetch(self, raw_dir: Path, download: bool = True) -> list[Path]:
        """Make the raw files available under ``raw_dir`` (download if allowed and needed)."""

    @abc.abstractmethod
    def load(self, raw_dir: Path) -> RawDataset:
        """Read the raw files (never downloads)."""

    def checksum(self, files: list[Path], raw_dir: Path) -> str:
        """The raw checksum of ``files`` (the download manifest's and :attr:`RawDataset.raw_sha256`)."""
        return sha256_files(files)
