"""A user's own datasets, declared under ``datasets:`` in params.yaml.

* ``format: npz``: one ``.npz`` file with ``x_train`` (uint8, N×C×H×W; N×H×W is read as
  one channel) and ``y_train`` (integer labels 0..K−1); optionally ``x_test`` / ``y_test``
  (then the file has an official split) and ``class_names`` (K strings; default "0".."K−1").
* ``format: imagefolder``: a folder tree in torchvision's ImageFolder layout: one
  sub-folder per class (its name is the class name), or ``train/`` and ``test/`` each holding
  the same class folders (an official split). Images are read with Pillow, converted to
  ``channels`` (1: grayscale, 3: RGB) and resized to ``size`` [H, W] (bilinear) when given;
  without ``size`` every image must have the first image's size. Files are enumerated by
  torchvision's ``make_dataset`` (sorted by class, then path), so the order does not depend
  on the file system.

Both are checked when params.yaml is validated (the file or folder exists, shapes, label
range, class names), so a bad dataset fails in one line before any job runs. Their raw
checksum covers every file (with its path relative to the dataset root, so moving an image
to another class changes it); the download step of a built-in dataset is, for these, a
step that records the checksum, and a changed file reruns everything that read it.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certsmooth.artifacts import sha256_files
from certsmooth.data.base import RawDataset, RawSplit, Source
from certsmooth.errors import ConfigError, CorruptFileError, DatasetUnavailableError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _where(name: str, key: str) -> str:
    return f"datasets.{name}.{key}"


# ---------------------------------------------------------------------------- npz


def _npz_header(zf: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of array ``key`` of an open .npz, read from its .npy header only."""
    with zf.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    return tuple(shape), np.dtype(dtype)


@dataclass(frozen=True)
class NpzSource(Source):
    path: Path = Path()

    @classmethod
    def from_spec(cls, name: str, spec: dict) -> NpzSource:
        path = Path(spec["path"])
        where = _where(name, "path")
        if not path.is_file():
            raise ConfigError(f"{where} = {str(path)!r}: file not found; give the path of your .npz file")
        try:
            with zipfile.ZipFile(path) as zf:
                keys = {Path(n).stem for n in zf.namelist()}
                for need in ("x_train", "y_train"):
                    if need not in keys:
                        raise ConfigError(
                            f"{where} = {str(path)!r}: no array {need!r} (found {sorted(keys)}); "
                            "save x_train (uint8 N×C×H×W) and y_train (labels 0..K-1)"
                        )
                official = "x_test" in keys
                if official != ("y_test" in keys):
                    raise ConfigError(f"{where} = {str(path)!r}: x_test and y_test go together; save both or neither")
                shapes, counts = {}, {}
                for part in ("train", "test") if official else ("train",):
                    shape, dtype = _npz_header(zf, f"x_{part}")
                    counts[part] = shape[0] if shape else 0
                    if dtype != np.uint8 or len(shape) not in (3, 4):
                        raise ConfigError(
                            f"{where} = {str(path)!r}: x_{part} is {dtype} {shape}; "
                            "save uint8 images N×C×H×W (or N×H×W)"
                        )
                    shapes[part] = (1, *shape[1:]) if len(shape) == 3 else tuple(shape[1:])
                if official and shapes["test"] != shapes["train"]:
                    raise ConfigError(
                        f"{where} = {str(path)!r}: test images are {shapes['test']}, training images "
                        f"{shapes['train']}; save both at one size"
                    )
        except zipfile.BadZipFile as exc:
            raise ConfigError(f"{where} = {str(path)!r}: not a .npz file ({exc}); save it with numpy.savez") from None
        with np.load(path, allow_pickle=False) as f:
            labels = {p: np.asarray(f[f"y_{p}"]) for p in counts}
            names = [str(n) for n in f["class_names"]] if "class_names" in keys else None
        ints = all(np.issubdtype(y.dtype, np.integer) and y.size for y in labels.values())
        k = len(names) if names is not None else (int(max(int(y.max()) for y in labels.values())) + 1 if ints else 0)
        for part, y in labels.items():
            bad = y.shape != (counts[part],) or y.size == 0 or not np.issubdtype(y.dtype, np.integer)
            if bad or y.min() < 0 or y.max() >= k:
                raise ConfigError(
                    f"{where} = {str(path)!r}: y_{part} must hold integers 0..{max(k - 1, 0)}, one per image "
                    f"({counts[part]}); found {y.dtype} {y.shape}" + (f" in [{y.min()}, {y.max()}]" if y.size else "")
                )
        if k < 2:
            raise ConfigError(
                f"{where} = {str(path)!r}: its labels hold {k} class; a classifier needs at least two, so save "
                "images of two or more classes (labels 0..K-1, K ≥ 2)"
            )
        if names is not None and len(set(names)) != len(names):
            raise ConfigError(f"{where} = {str(path)!r}: class_names {names} repeat a name; give each class one")
        return cls(name, tuple(names or (str(i) for i in range(k))), shapes["train"], official, False, path=path)

    def raw_files(self, raw_dir: Path) -> list[Path]:
        return [self.path]

    def fetch(self, raw_dir: Path, download: bool = True) -> list[Path]:
        if not self.path.is_file():
            raise DatasetUnavailableError(f"dataset {self.name!r}: {self.path} is missing; restore it")
        return [self.path]

    def load(self, raw_dir: Path) -> RawDataset:
        parts = {}
        try:
            with np.load(self.path, allow_pickle=False) as f:
                for part in ("train", "test") if self.has_official_split else ("train",):
                    x = np.asarray(f[f"x_{part}"])
                    x = x[:, None] if x.ndim == 3 else x
                    parts[part] = RawSplit(np.ascontiguousarray(x), np.asarray(f[f"y_{part}"], dtype=np.int64))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise CorruptFileError(f"{self.path}: unreadable ({exc}); restore the file or rewrite it") from None
        return RawDataset(
            name=self.name,
            train=parts["train"],
            test=parts.get("test"),
            class_names=list(self.class_names),
            origin=f"user .npz {self.path}",
            raw_sha256=sha256_files([self.path]),
            files=[str(self.path)],
        )


# ---------------------------------------------------------------------------- ImageFolder


def _class_dirs(root: Path) -> list[str]:
    return sorted(e.name for e in root.iterdir() if e.is_dir() and not e.name.startswith("."))


@dataclass(frozen=True)
class ImageFolderSource(Source):
    path: Path = Path()
    size: tuple[int, int] | None = None  # (H, W)

    @classmethod
    def from_spec(cls, name: str, spec: dict) -> ImageFolderSource:
        root = Path(spec["path"])
        where = _where(name, "path")
        if not root.is_dir():
            raise ConfigError(f"{where} = {str(root)!r}: folder not found; give the root of your ImageFolder tree")
        top = _class_dirs(root)
        official = top == ["test", "train"]
        classes = _class_dirs(root / "train") if official else top
        if official and _class_dirs(root / "test") != classes:
            raise ConfigError(
                f"{where} = {str(root)!r}: train/ has classes {classes} but test/ has {_class_dirs(root / 'test')}; "
                "give both the same class folders"
            )
        if len(classes) < 2:
            raise ConfigError(
                f"{where} = {str(root)!r}: found {len(classes)} class folder(s) {classes}; put the images of each "
                "class in its own sub-folder (or under train/<class> and test/<class>)"
            )
        first = next(
            (p for c in classes for p in sorted((root / ("train" if official else "") / c).rglob("*"))
             if p.suffix.lower() in IMAGE_EXTENSIONS), None,
        )  # fmt: skip
        if first is None:
            raise ConfigError(f"{where} = {str(root)!r}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it")
        channels = int(spec["channels"])
        if spec.get("size") is not None:
            size = (int(spec["size"][0]), int(spec["size"][1]))
        else:
            from PIL import Image

            with Image.open(first) as im:
                size = (im.height, im.width)
        return cls(name, tuple(classes), (channels, *size), official, False, path=root,
                   size=tuple(spec["size"]) if spec.get("size") is not None else None)  # fmt: skip

    def _samples(self, part: str | None) -> list[tuple[str, int]]:
        from torchvision.datasets.folder import make_dataset

        root = self.path / part if part else self.path
        index = {c: i for i, c in enumerate(self.class_names)}
        try:
            return make_dataset(str(root), index, extensions=IMAGE_EXTENSIONS)
        except FileNotFoundError as exc:  # a class folder without images
            raise DatasetUnavailableError(f"dataset {self.name!r}: {exc}; put images in every class folder") from None

    def raw_files(self, raw_dir: Path) -> list[Path]:
        parts = ("train", "test") if self.has_official_split else (None,)
        return [Path(p) for part in parts for p, _ in self._samples(part)]

    def checksum(self, files: list[Path], raw_dir: Path) -> str:
        return sha256_files(files, root=self.path)  # class folders matter, not only file names

    def fetch(self, raw_dir: Path, download: bool = True) -> list[Path]:
        if not self.path.is_dir():
            raise DatasetUnavailableError(f"dataset {self.name!r}: {self.path} is missing; restore it")
        return self.raw_files(raw_dir)

    def _image(self, path: str) -> np.ndarray:
        """One image as the dataset stores it (H×W or H×W×3 uint8); a file that does not decode
        or has another size raises one line naming it."""
        from PIL import Image

        c, h, w = self.shape
        try:
            with Image.open(path) as im:
                im = im.convert("L" if c == 1 else "RGB")
                if self.size is not None and (im.height, im.width) != (h, w):
                    im = im.resize((w, h), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow: OSError, or ValueError/SyntaxError for bad headers
            raise CorruptFileError(f"{path}: not a readable image ({exc}); fix or remove it") from None
        if a.shape[:2] != (h, w):
            raise CorruptFileError(
                f"{path}: {a.shape[0]}×{a.shape[1]} pixels, the first image of dataset {self.name!r} has {h}×{w}; "
                f"set datasets.{self.name}.size: [{h}, {w}] to resize every image"
            )
        return a

    def _read(self, samples: list[tuple[str, int]]) -> RawSplit:
        c, h, w = self.shape
        x = np.empty((len(samples), c, h, w), dtype=np.uint8)
        for i, (p, _) in enumerate(samples):
            a = self._image(p)
            x[i] = a[None] if c == 1 else a.transpose(2, 0, 1)
        return RawSplit(x, np.array([t for _, t in samples], dtype=np.int64))

    def check_images(self) -> None:
        """Decode every image as :meth:`load` will (the workflow's check before any job)."""
        for part in ("train", "test") if self.has_official_split else (None,):
            for p, _ in self._samples(part):
                self._image(p)

    def load(self, raw_dir: Path) -> RawDataset:
        parts = ("train", "test") if self.has_official_split else (None,)
        samples = {part: self._samples(part) for part in parts}
        files = [Path(p) for part in parts for p, _ in samples[part]]
        splits = {part: self._read(s) for part, s in samples.items()}
        return RawDataset(
            name=self.name,
            train=splits["train" if self.has_official_split else None],
            test=splits.get("test"),
            class_names=list(self.class_names),
            origin=f"user ImageFolder {self.path} ({len(files)} images)",
            raw_sha256=self.checksum(files, raw_dir),
            files=[str(f) for f in files],
        )


FORMATS = {"npz": NpzSource, "imagefolder": ImageFolderSource}


def user_source(name: str, spec: dict) -> Source:
    """The source of the user dataset ``name`` declared as ``spec`` (a ``datasets:`` entry)."""
    return FORMATS[spec["format"]].from_spec(name, spec)
