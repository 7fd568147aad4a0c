"""Atomic, validated reading and writing of artifacts.

Writers go to a temporary file in the destination folder and ``os.replace`` it into
place, so an interrupted or failing job never leaves a half-written artifact. Readers
turn unreadable files into :class:`~certsmooth.errors.CorruptFileError` with the path
and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from certsmooth.errors import CorruptFileError

PathLike = str | os.PathLike

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def removed_on_failure(paths: Iterable[PathLike | None]) -> Iterator[None]:
    """Delete every path of a multi-file output if writing the rest fails."""
    try:
        yield
    except BaseException:
        for p in paths:
            if p is not None:
                Path(p).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the artifact, not the temporary file
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; use the usual mode
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:  # a failed write: name the file it was for
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: PathLike, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (a full or read-only disk raises OSError naming
    ``path``; no partial file is left)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                os.fsync(fh.fileno())


def save_npz(path: PathLike, **arrays: Any) -> None:
    """Write arrays to ``path`` as an uncompressed .npz, atomically and byte-reproducibly.

    ``np.savez`` stamps each member with the current time, so the same arrays would give
    different bytes (and DVC hashes) on every run; here every member carries a fixed
    timestamp. Object arrays are refused (they would need pickle to load).
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in arrays.items():
            arr = np.asanyarray(value)
            if arr.dtype.hasobject:
                raise TypeError(f"array {name!r} has dtype object; it would need pickle")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)


def load_npz(path: PathLike, required: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Read an .npz written by :func:`save_npz` (never unpickles) and check its keys."""
    path = Path(path)
    fix = f"delete {path} and rerun the workflow to regenerate it"
    if not path.is_file():
        raise CorruptFileError(f"{path}: file not found; rerun the workflow step that makes it")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CorruptFileError(f"{path}: unreadable .npz ({exc.__class__.__name__}: {exc}); {fix}") from exc
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CorruptFileError(f"{path}: missing arrays {missing}; {fix}")
    return arrays


def write_json(path: PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CorruptFileError(f"{path}: file not found; rerun the workflow step that makes it") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(
            f"{path}: invalid JSON ({exc}); delete it and rerun the workflow to regenerate it"
        ) from exc


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_files(paths: Iterable[PathLike], root: PathLike | None = None) -> str:
    """One checksum over several files (names and contents, in the given order); with
    ``root``, each file's name is its path relative to ``root``."""
    h = hashlib.sha256()
    for p in paths:
        name = Path(p).relative_to(root).as_posix() if root is not None else Path(p).name
        h.update(name.encode() + b"\0")
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def sha256_array(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def tree_hashes(root: PathLike, *dirs: str) -> dict[str, str]:
    """SHA-256 of every file under ``dirs`` (relative to ``root``), keyed by relative path."""
    root = Path(root)
    out = {}
    for d in dirs:
        for f in sorted((root / d).rglob("*")):
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def short_hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def load_sigma(path, key: str, size: int) -> np.ndarray:
    """The σ vector ``key`` of an ``optimize-sigma`` output, checked against its data."""
    sigma = load_npz(path, required=[key])[key]
    if sigma.shape != (size,) or not np.all(sigma > 0):
        raise CorruptFileError(
            f"{path}: {key!r} holds {sigma.shape[0] if sigma.ndim else 0} noise scales (all positive: "
            f"{bool(np.all(sigma > 0))}) but the data has {size} points; delete it and rerun the workflow"
        )
    return sigma
