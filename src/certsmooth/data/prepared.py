"""The prepared dataset format and its construction.

One ``.npz`` per (dataset, class subset, split) holds

* ``x``: uint8 images N×C×H×W (pixel values 0–255; models see ``x / 255``),
* ``y``: int64 labels after relabelling (label ``i`` is the ``i``-th listed class),
* ``source_index``: int64 row of each image in the raw split it came from,
* ``class_names``: unicode array, the name of each new label,
* ``provenance``: a JSON string: source, origin, SHA-256 of the raw input, class map,
  split rule and its seed, the content checksum of ``x`` and ``y``.

Paths encode the settings (``data/prepared/<dataset>/<classes>/<split>/<part>.npz``)
so a fresh clone after ``dvc pull`` finds them without Snakemake metadata:
``<classes>`` is ``all`` or the class indices joined by ``-`` (``1-0``: label 0 is the
original class 1); ``<split>`` is ``official`` or ``test<fraction>-seed<seed>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certsmooth.artifacts import load_npz, save_npz, sha256_array
from certsmooth.data.sources import RawDataset, get_source, load_raw
from certsmooth.errors import ConfigError, CorruptFileError
from certsmooth.seeding import numpy_rng

FORMAT_VERSION = 1


@dataclass
class PreparedSplit:
    x: np.ndarray
    y: np.ndarray
    source_index: np.ndarray
    class_names: list[str]
    provenance: dict

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def floats(self) -> np.ndarray:
        """Images as float32 in [0, 1] (the scale every trigger and σ refers to)."""
        return self.x.astype(np.float32) / np.float32(255.0)


# ---------------------------------------------------------------- class subsets


def resolve_classes(dataset: str, classes: list | None) -> list[int]:
    """Class indices of the listed classes (ints or names); ``None`` means all classes."""
    names = get_source(dataset).class_names
    if classes is None:
        if len(names) < 2:
            raise ConfigError(
                f"dataset.classes: {dataset} has {len(names)} class ({', '.join(names)}); a classifier needs at least "
                "two: give a dataset with two or more classes"
            )
        return list(range(len(names)))
    lower = {n.lower(): i for i, n in enumerate(names)}
    out: list[int] = []
    for c in classes:
        if isinstance(c, bool):
            idx = None
        elif isinstance(c, int):
            idx = c if 0 <= c < len(names) else None
        else:
            idx = lower.get(str(c).lower())
        if idx is None:
            raise ConfigError(
                f"dataset.classes: {c!r} is not a class of {dataset}; allowed: indices "
                f"0..{len(names) - 1} or names {list(names)}"
            )
        out.append(idx)
    if len(set(out)) != len(out):
        raise ConfigError(f"dataset.classes: {classes!r} lists a class twice; list each class once")
    if len(out) < 2:
        raise ConfigError(f"dataset.classes: {classes!r} has fewer than two classes; list at least two")
    return out


def classes_token(indices: list[int], num_classes: int) -> str:
    if indices == list(range(num_classes)):
        return "all"
    return "-".join(str(i) for i in indices)


def parse_classes_token(token: str, num_classes: int) -> list[int]:
    if token == "all":
        return list(range(num_classes))
    if not re.fullmatch(r"\d+(-\d+)+", token):
        raise ConfigError(f"class subset token {token!r}: expected 'all' or indices like '1-0'")
    return [int(t) for t in token.split("-")]


# ---------------------------------------------------------------- splits


def split_token(split: str | dict) -> str:
    if split == "official":
        return "official"
    return f"test{float(split['test_fraction']):g}-seed{int(split['seed'])}"


def parse_split_token(token: str) -> str | dict:
    if token == "official":
        return "official"
    m = re.fullmatch(r"test([0-9.eE+-]+)-seed(\d+)", token)
    if not m:
        raise ConfigError(f"split token {token!r}: expected 'official' or 'test<fraction>-seed<seed>'")
    return {"test_fraction": float(m.group(1)), "seed": int(m.group(2))}


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping class proportions: per class, round(n_c·fraction) test points."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"split.test_fraction = {test_fraction}: must be in (0, 1)")
    rng = numpy_rng(seed, "split")
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(idx.size)]
        k = int(round(idx.size * test_fraction))
        if k == 0 or k == idx.size:
            raise ConfigError(
                f"split.test_fraction = {test_fraction} leaves class {c} ({idx.size} images) "
                "with an empty train or test part; choose a fraction closer to 0.5"
            )
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


# ---------------------------------------------------------------- construction


def prepare(
    dataset: str, classes: list, split: str | dict, raw_dir: str | Path, manifest: str | Path | None = None
) -> dict[str, PreparedSplit]:
    """Build the train and test splits of ``dataset`` restricted to ``classes`` (indices
    or names; label ``i`` is the ``i``-th listed class). ``manifest``: the download
    manifest (``certsmooth download --manifest``) whose SHA-256 the raw files must match."""
    source = get_source(dataset)
    classes = resolve_classes(dataset, classes)
    if split == "official" and not source.has_official_split:
        raise ConfigError(
            f"dataset.split = 'official': {dataset} has no official train/test split; "
            "use split: {test_fraction: 0.2, seed: 0}"
        )
    if split != "official" and source.has_official_split:
        raise ConfigError(f"dataset.split = {split!r}: {dataset} has an official train/test split; use split: official")
    raw: RawDataset = load_raw(dataset, raw_dir)
    if manifest is not None:
        from certsmooth.artifacts import read_json

        want = read_json(manifest).get("sha256")
        if want != raw.raw_sha256:
            raise CorruptFileError(
                f"{raw_dir}: the raw files of {dataset} differ from those recorded in {manifest} (SHA-256 "
                f"{raw.raw_sha256[:12]}... vs {str(want)[:12]}...); restore them with `certsmooth download {dataset} "
                f"--raw-dir {raw_dir}`, or, if the change is intended, delete {manifest} and rerun the workflow"
            )
    if split == "official":
        assert raw.test is not None
        parts = {"train": (raw.train, None), "test": (raw.test, None)}
    else:
        tr, te = stratified_split(raw.train.y, split["test_fraction"], split["seed"])
        parts = {"train": (raw.train, tr), "test": (raw.train, te)}

    out = {}
    for part, (rs, rows) in parts.items():
        rows = np.arange(rs.y.size) if rows is None else rows
        keep = np.isin(rs.y[rows], classes)
        rows = rows[keep]
        relabel = np.full(len(raw.class_names), -1, dtype=np.int64)
        relabel[classes] = np.arange(len(classes))
        x = np.ascontiguousarray(rs.x[rows])
        y = relabel[rs.y[rows]]
        provenance = {
            "format_version": FORMAT_VERSION,
            "dataset": dataset,
            "origin": raw.origin,
            "raw_sha256": raw.raw_sha256,
            "part": part,
            "classes": classes,
            "class_names": [raw.class_names[c] for c in classes],
            "split": split,
            "split_seed": None if split == "official" else int(split["seed"]),
            "num_examples": int(y.size),
            "content_sha256": sha256_array(x, y),
        }
        out[part] = PreparedSplit(x, y, rows.astype(np.int64), provenance["class_names"], provenance)
    return out


# ---------------------------------------------------------------- file format


def save_prepared(path: str | Path, split: PreparedSplit) -> None:
    save_npz(
        path,
        x=split.x,
        y=split.y,
        source_index=split.source_index,
        class_names=np.array(split.class_names, dtype=str),
        provenance=np.array(json.dumps(split.provenance)),
    )


def load_prepared(path: str | Path) -> PreparedSplit:
    arrays = load_npz(path, required=("x", "y", "source_index", "class_names", "provenance"))
    fix = f"delete {path} and rerun the workflow to regenerate it"
    x, y = arrays["x"], arrays["y"]
    if x.dtype != np.uint8 or x.ndim != 4:
        raise CorruptFileError(f"{path}: x must be uint8 N×C×H×W, found {x.dtype} {x.shape}; {fix}")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise CorruptFileError(f"{path}: y must be {x.shape[0]} integer labels, found {y.dtype} {y.shape}; {fix}")
    try:
        provenance = json.loads(str(arrays["provenance"]))
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path}: provenance is not valid JSON; {fix}") from exc
    names = [str(n) for n in arrays["class_names"]]
    if y.size and (y.min() < 0 or y.max() >= len(names)):
        raise CorruptFileError(f"{path}: labels outside 0..{len(names) - 1}; {fix}")
    if provenance.get("content_sha256") != sha256_array(x, y):
        raise CorruptFileError(f"{path}: content checksum mismatch (file modified or damaged); {fix}")
    return PreparedSplit(x, y.astype(np.int64), arrays["source_index"], names, provenance)
