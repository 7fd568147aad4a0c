"""Partition checkpoints: one safetensors file (per-model state dicts, keys
``m<id>.<tensor>``) plus a JSON manifest (seeds, σ, training settings, data checksum,
versions, timing). Weights are never unpickled."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from certsmooth import __version__
from certsmooth.artifacts import read_json, sha256_file, write_bytes, write_json
from certsmooth.errors import CorruptFileError


def _key(model_id: int, name: str) -> str:
    return f"m{model_id:05d}.{name}"


def save_models(
    path: str | Path, manifest_path: str | Path, states: dict[int, dict[str, torch.Tensor]], manifest: dict
) -> None:
    tensors = {_key(i, k): t.contiguous() for i, state in states.items() for k, t in state.items()}
    manifest = {
        **manifest,
        "models": sorted(states),
        "certsmooth_version": __version__,
        "torch_version": torch.__version__,
    }
    # serialised in memory and written by Python, so that a full or read-only disk is an
    # OSError naming the file (one line from the CLI), not a SafetensorError from Rust
    data = save(tensors, metadata={"format": "certsmooth-partition-v1"})
    manifest["weights_sha256"] = hashlib.sha256(data).hexdigest()
    write_bytes(path, data)
    try:
        write_json(manifest_path, manifest)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def load_models(path: str | Path, manifest_path: str | Path) -> tuple[dict[int, dict[str, torch.Tensor]], dict]:
    """Per-model state dicts and the manifest; a truncated, foreign or mismatched file
    raises :class:`CorruptFileError` naming it."""
    fix = f"delete {path} and {manifest_path} and rerun the workflow to retrain this partition"
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict):
        raise CorruptFileError(f"{manifest_path}: not a partition manifest (a JSON object); {fix}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptFileError(f"{path}: not a readable safetensors file ({exc}); {fix}") from exc
    if "weights_sha256" in manifest and sha256_file(path) != manifest["weights_sha256"]:
        raise CorruptFileError(
            f"{path} does not match its manifest {manifest_path} (the weights' SHA-256 differs: one of them was "
            f"changed or damaged); {fix}"
        )
    states: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        head, _, name = key.partition(".")
        if not (head.startswith("m") and head[1:].isdigit() and name):
            raise CorruptFileError(f"{path}: unexpected tensor {key!r}; {fix}")
        states.setdefault(int(head[1:]), {})[name] = t
    if sorted(states) != manifest.get("models"):
        raise CorruptFileError(
            f"{path}: holds models {sorted(states)[:5]}... but its manifest {manifest_path} lists "
            f"{manifest.get('models', [])[:5]}...; {fix}"
        )
    return states, manifest


def check_manifest(manifest: dict, path: str | Path, manifest_path: str | Path | None = None, **expected) -> None:
    """Fail if the manifest (of the weights ``path``) disagrees with the settings the caller
    expects; the message names the manifest, where the value is, and both files to delete."""
    where = f"{manifest_path} (manifest of {path})" if manifest_path else str(path)
    both = f"{path} and {manifest_path}" if manifest_path else str(path)
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise CorruptFileError(
                f"{where}: trained with {key} = {manifest.get(key)!r}, but this run expects {value!r}; "
                f"delete {both} and rerun the workflow to retrain"
            )
