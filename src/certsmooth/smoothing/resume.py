"""Resumable training: epoch checkpoints of a model, its Adam state and its shuffling
generators, so that a preempted or killed training job continues where it stopped.

A checkpoint is a folder outside the job's declared outputs (Snakemake deletes those
before a job runs), e.g. ``checkpoints/<suite>/<exp>/<ttag>/part0of2/``, holding per
unit of training (a lane of the ensemble, or Cohen's single model) two files:

* ``<name>.<token>.safetensors``: the tensors (``model.*`` weights and buffers,
  ``opt.<param index>.<key>`` Adam state, ``gen.<i>`` generator states, ``extra.*``
  running statistics); the token is also in its metadata;
* ``<name>.json``: the commit record: fingerprint, epochs done, the tensor file's name
  and token.

Both are written atomically (temporary file, ``os.replace``) and the record last, so a
kill at any moment leaves either the previous checkpoint or the new one, never a mix;
an older tensor file is removed only after the record names the new one. A record whose
fingerprint (settings, seeds, data checksum, code, library versions) differs from the
running job's, or that cannot be read, is logged and ignored: training starts afresh.

Resuming restores every bit of state a training epoch reads, so a resumed run gives
the same weights as an uninterrupted one (bitwise on the CPU). How often checkpoints are
written therefore cannot change results: at most every ``CERTSMOOTH_CHECKPOINT_EVERY_S``
seconds (default 300; 0 = after every epoch), and always after the last epoch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from certsmooth import __version__
from certsmooth.artifacts import read_json, write_bytes, write_json
from certsmooth.errors import ConfigError, CorruptFileError
from certsmooth.logs import LOG

FORMAT = "certsmooth-train-checkpoint-v1"
ENV_EVERY = "CERTSMOOTH_CHECKPOINT_EVERY_S"
DEFAULT_EVERY_S = 300.0


def checkpoint_interval() -> float:
    """Seconds between two checkpoints of a training unit, from ``CERTSMOOTH_CHECKPOINT_EVERY_S``."""
    raw = os.environ.get(ENV_EVERY, "").strip()
    if not raw:
        return DEFAULT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ConfigError(f"{ENV_EVERY} = {raw!r}: must be a number of seconds >= 0 (0 = after every epoch)")
    return value


@functools.cache  # one read of the library per process, not one per lane
def code_sha256() -> str:
    """Checksum of the library code that training runs (smoothing, models, seeding): a
    checkpoint from other code is not resumed."""
    root = Path(__file__).resolve().parents[1]
    files = sorted([*root.joinpath("smoothing").glob("*.py"), *root.joinpath("models").glob("*.py")])
    h = hashlib.sha256()
    for p in [*files, root / "seeding.py"]:
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def fingerprint(**items) -> dict:
    """JSON-normalised description of a training run; adds the code checksum and versions."""
    fp = {**items, "code_sha256": code_sha256(), "certsmooth_version": __version__, "torch_version": torch.__version__}
    return json.loads(json.dumps(fp, sort_keys=True))


_OWN_FILE = re.compile(r"\.?[\w-]+\.(json|[0-9a-f]{16}\.safetensors)(\..+\.tmp)?")


def remove_checkpoints(directory: str | Path | None) -> None:
    """Delete a job's checkpoints and then its folder, if that is empty (once the outputs
    are saved). Only files this module writes are touched, and a failure is only logged:
    the job's outputs are good either way."""
    if directory is None or not Path(directory).is_dir():
        return
    directory = Path(directory)
    try:
        for p in directory.iterdir():
            if p.is_file() and _OWN_FILE.fullmatch(p.name) and (p.name.endswith("tmp") or _ours(p)):
                p.unlink()
        directory.rmdir()
    except OSError as exc:
        LOG.warning("could not remove the training checkpoints in %s (%s); delete it by hand", directory, exc)
        return
    LOG.info("removed the training checkpoints in %s (outputs saved)", directory)


def _ours(path: Path) -> bool:
    """Whether ``path`` is a checkpoint record or tensor file (format tag inside)."""
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                return (f.metadata() or {}).get("format") == FORMAT
        return json.loads(path.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError, SafetensorError):
        return False


def _dense_like(ref: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` on ``ref``'s device with its dtype and memory layout."""
    if value.shape == ref.shape and value.dtype == ref.dtype:
        return torch.empty_like(ref).copy_(value)
    return value.to(ref.device)


class Checkpoint:
    """Checkpoints of one training unit (a lane, or one model) under ``directory/name``.

    ``fp`` is the run's :func:`fingerprint`; ``epochs`` the total epoch count; ``label``
    names the unit in the log. After :meth:`restore`, ``restored`` is the epoch count it
    resumed from."""

    def __init__(
        self, directory: str | Path, name: str, fp: dict, epochs: int, label: str | None = None,
        every_s: float | None = None,
    ):  # fmt: skip
        self.dir = Path(directory)
        self.name = name
        self.label = label or name
        self.restored = 0
        self.fp = fp
        self.epochs = epochs
        self.every_s = checkpoint_interval() if every_s is None else every_s
        self.record = self.dir / f"{name}.json"
        self._last = time.monotonic()

    # -- loading -------------------------------------------------------------------------------------------------
    def restore(self, model: torch.nn.Module, opt, gens: list[torch.Generator]):
        """Load the latest checkpoint into ``model``, ``opt`` and ``gens``; return (epochs
        done, extra tensors), or (0, {}) when there is none usable (then nothing is changed)."""
        self._last = time.monotonic()
        self.restored = 0
        if not self.record.exists():
            return 0, {}
        try:
            found = self._read(model, opt, gens)
        except (CorruptFileError, ValueError) as exc:
            LOG.warning("ignoring checkpoint %s: %s; training %s from scratch", self.record, exc, self.label)
            return 0, {}
        if found is None:
            return 0, {}
        epochs_done, model_state, opt_state, gen_states, extra, path = found
        model.load_state_dict(model_state, strict=True)
        _load_optimizer(opt, opt_state)
        for g, s in zip(gens, gen_states, strict=True):
            g.set_state(s)
        LOG.info(
            "resuming %s from epoch %d of %d (checkpoint %s)%s", self.label, epochs_done, self.epochs, path,
            ": already trained" if epochs_done >= self.epochs else "",
        )  # fmt: skip
        self.restored = epochs_done
        return epochs_done, extra

    def _read(self, model, opt, gens):
        rec = read_json(self.record)
        if not isinstance(rec, dict) or rec.get("format") != FORMAT:
            raise CorruptFileError(f"not a {FORMAT} record")
        if rec.get("fingerprint") != self.fp:
            old = rec.get("fingerprint") if isinstance(rec.get("fingerprint"), dict) else {}
            keys = sorted(k for k in {*old, *self.fp} if old.get(k) != self.fp.get(k))
            LOG.warning(
                "ignoring checkpoint %s: written by a run with other settings (differs in: %s); training %s from "
                "scratch", self.record, ", ".join(keys) or "format", self.label,
            )  # fmt: skip
            return None
        epochs_done = rec.get("epochs_done")
        if not isinstance(epochs_done, int) or not 1 <= epochs_done <= self.epochs:
            raise CorruptFileError(f"epochs_done = {epochs_done!r} out of range 1..{self.epochs}")
        fname = str(rec.get("tensors", ""))
        if not re.fullmatch(rf"{re.escape(self.name)}\.[0-9a-f]+\.safetensors", fname):
            raise CorruptFileError(f"unexpected tensor file name {fname!r}")
        path = self.dir / fname
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CorruptFileError(f"{path}: unreadable ({exc})") from exc
        if meta.get("token") != rec.get("token") or meta.get("format") != FORMAT:
            raise CorruptFileError(f"{path} does not belong to this record (token mismatch)")
        model_state = {k[6:]: t for k, t in tensors.items() if k.startswith("model.")}
        ref = model.state_dict()
        _check_shapes("model", model_state, ref)
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for k, t in tensors.items():
            if k.startswith("opt."):
                _, idx, key = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[key] = t
        params = [p for group in opt.param_groups for p in group["params"]]
        for idx, st in opt_state.items():
            if not 0 <= idx < len(params):
                raise CorruptFileError(f"{path}: optimizer state for parameter {idx} of {len(params)}")
            for key, t in st.items():
                if key != "step" and t.shape != params[idx].shape:
                    raise CorruptFileError(f"{path}: optimizer {key} of parameter {idx} has shape {tuple(t.shape)}")
        gen_states = [tensors.get(f"gen.{i}") for i in range(len(gens))]
        if any(s is None or s.dtype != torch.uint8 for s in gen_states) or f"gen.{len(gens)}" in tensors:
            raise CorruptFileError(f"{path}: expected {len(gens)} generator states")
        extra = {k[6:]: t for k, t in tensors.items() if k.startswith("extra.")}
        return epochs_done, model_state, opt_state, gen_states, extra, path

    # -- saving --------------------------------------------------------------------------------------------------
    def due(self, epochs_done: int) -> bool:
        """Whether to save after ``epochs_done`` epochs: at the end, or when the interval has passed."""
        return epochs_done >= self.epochs or time.monotonic() - self._last >= self.every_s

    def save(
        self, epochs_done: int, model: torch.nn.Module, opt, gens: list[torch.Generator],
        extra: dict[str, torch.Tensor],
    ) -> Path:  # fmt: skip
        token = uuid.uuid4().hex[:16]
        fname = f"{self.name}.{token}.safetensors"
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        for idx, st in opt.state_dict()["state"].items():
            for key, v in st.items():
                tensors[f"opt.{idx}.{key}"] = v if torch.is_tensor(v) else torch.tensor(v)
        tensors.update({f"gen.{i}": g.get_state() for i, g in enumerate(gens)})
        tensors.update({f"extra.{k}": v for k, v in extra.items()})
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        write_bytes(self.dir / fname, save(tensors, metadata={"format": FORMAT, "token": token}), fsync=True)
        write_json(
            self.record,
            {
                "format": FORMAT, "name": self.name, "epochs_done": epochs_done, "epochs": self.epochs,
                "tensors": fname, "token": token, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "fingerprint": self.fp,
            },
        )  # fmt: skip
        for old in self.dir.glob(f"{self.name}.*.safetensors"):
            if old.name != fname:
                old.unlink(missing_ok=True)
        self._last = time.monotonic()
        LOG.debug("checkpoint of %s after epoch %d of %d: %s", self.label, epochs_done, self.epochs, fname)
        return self.dir / fname


def _check_shapes(what: str, state: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> None:
    if state.keys() != ref.keys():
        diff = sorted(state.keys() ^ ref.keys())[:3]
        raise CorruptFileError(f"{what} tensors do not match the model (e.g. {diff})")
    for k, t in state.items():
        if t.shape != ref[k].shape or t.dtype != ref[k].dtype:
            raise CorruptFileError(f"{what} tensor {k} has {tuple(t.shape)} {t.dtype}, the model {tuple(ref[k].shape)}")


def _load_optimizer(opt, state: dict[int, dict[str, torch.Tensor]]) -> None:
    """Restore per-parameter state; moments get their parameter's layout, as when Adam
    creates them (``zeros_like``), and ``step`` the type Adam uses."""
    sd = opt.state_dict()
    sd["state"] = state
    opt.load_state_dict(sd)
    params = [p for group in opt.param_groups for p in group["params"]]
    for idx in state:
        p = params[idx]
        st = opt.state[p]
        for key, v in st.items():
            if torch.is_tensor(v) and key != "step":
                st[key] = _dense_like(p, v)
