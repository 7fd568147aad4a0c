"""Before the first job of a workflow run: what only the machine that runs the jobs can say.

params.yaml is validated when the workflow is parsed (:mod:`certsmooth.config`); some
settings can only be judged against the machine and the files a run meets. The workflow's
``onstart`` (``workflow/rules/common.smk``; real runs only, not dry runs) passes what the
jobs about to run need, and each check below raises one line naming the value and the fix
before any job starts, instead of a failure after others have run:

* the folders the jobs write (outputs, logs, benchmarks, checkpoints) are writable: a
  file is created and removed in each (a read-only mount, a full quota, a missing
  permission);
* a ``device: cuda`` (or ``cuda:N``) of a job that runs here finds that device (local runs
  only: on a cluster the jobs run on other nodes);
* the raw files of a dataset that will be fetched offline are present and readable by
  torchvision (files placed by hand);
* every image of a user ImageFolder dataset that will be prepared decodes, at the size
  the dataset declares.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from certsmooth.errors import CertsmoothError


class PreflightError(CertsmoothError):
    """This machine cannot run what the workflow is about to start."""


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_writable(paths: Iterable[str | os.PathLike]) -> None:
    """Each folder the ``paths`` will be written to (or its nearest existing ancestor)
    accepts a new file."""
    folders = set()
    for p in paths:
        d = Path(os.path.abspath(p)).parent
        while not d.exists() and d != d.parent:
            d = d.parent
        folders.add(d)
    for d in sorted(folders):
        try:
            fd, probe = tempfile.mkstemp(prefix=".certsmooth-probe-", dir=d)
        except OSError as exc:
            why = exc.strerror or exc.__class__.__name__
            raise PreflightError(
                f"{_shown(d)}/ is not writable ({why}), and the jobs about to run write there; make it writable "
                "(or run the workflow in a writable copy of the project), then rerun"
            ) from None
        os.close(fd)
        os.unlink(probe)


def check_cuda(settings: dict[str, str], source: str = "params.yaml") -> None:
    """Every CUDA device named by ``settings`` (dotted key → device) is visible here."""
    wanted = {k: v for k, v in settings.items() if v.startswith("cuda")}
    if not wanted:
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for key, device in sorted(wanted.items()):
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            have = "no CUDA device" if count == 0 else f"{count} CUDA device(s), cuda:0..cuda:{count - 1}"
            raise PreflightError(
                f"{source}: {key} = {device!r}, but this machine has {have}; use device: auto (CUDA where there is "
                "one) or cpu, or run on GPU nodes (--workflow-profile workflow/profiles/slurm)"
            )


def check_raw_data(datasets: Iterable[str], raw_dir: str | os.PathLike, download: bool) -> None:
    """The raw files of each built-in dataset about to be fetched: present ones are read as
    the prepare step will read them; missing ones without ``download`` are named."""
    from certsmooth.data.sources import get_source

    raw = Path(raw_dir)
    for name in sorted(set(datasets)):
        source = get_source(name)
        if not source.needs_download:
            continue
        if all(f.exists() for f in source.raw_files(raw)):
            source.load(raw)  # a file placed by hand that is not the dataset's: one line
        elif not download:
            source.fetch(raw, download=False)  # the missing files and where to get them: one line


def check_images(datasets: Iterable[str]) -> None:
    """Every image of each user ImageFolder dataset about to be prepared decodes."""
    from certsmooth.data.sources import get_source
    from certsmooth.data.user import ImageFolderSource

    for name in sorted(set(datasets)):
        source = get_source(name)
        if isinstance(source, ImageFolderSource):
            source.check_images()
