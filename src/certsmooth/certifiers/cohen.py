"""Cohen, Rosenfeld & Kolter (ICML 2019, arXiv 1902.02918): test-time smoothing of one base
classifier trained on the (poisoned) set by Gaussian augmentation, MACER (Zhai et al., ICLR
2020) or SmoothAdv (Salman et al., NeurIPS 2019); CERTIFY and PREDICT in chunks of test points.

Rules: ``workflow/rules/cohen.smk``; steps ``train-cohen``, ``certify-cohen``,
``merge-cohen``; mathematics: :mod:`certsmooth.smoothing.ga`, :mod:`certsmooth.certificates.cohen`,
:mod:`certsmooth.certificates.cohen_merge`."""

from __future__ import annotations

from certsmooth.certifiers.base import Cell, Certifier, Data, fits, one_run
from certsmooth.errors import ConfigError

STAGES = {
    "train": ("cohen", ("arch", "epochs", "batch_size", "lr", "train_method")),
    "certify": ("cohen", ("arch", "n0", "n", "alpha", "batch", "skip", "classes")),
    "merge": ("cohen", ("radii", "alpha", "n0", "n", "train_method")),
}


# Folders below the cell's, spelled with the rules' wildcards
MODEL = "cohen/{ctag}"  # the base classifier: model.{safetensors,json}
RUN = "cohen/{ctag}/{crun}"  # CERTIFY/PREDICT: chunk{chunk}of{chunks}.csv, then clean.csv, triggered.csv, summary.json


def _method_block(cell: Cell, stage: str) -> dict:
    """Training by MACER or SmoothAdv also reads that method's block."""
    m = cell.cfg["cohen"]["train_method"]
    return {m: cell.cfg["cohen"][m]} if stage == "train" and m != "ga" else {}


def paths(cell: Cell) -> dict:
    """``model``/``manifest``: the base classifier; ``run``: its CERTIFY/PREDICT results;
    ``chunks``: the certification jobs' tables."""
    from certsmooth.artifacts import short_hash

    c = cell.cfg["cohen"]
    m = c["train_method"]
    tag = f"{m}-{c['arch']}-sigma{cell.sigma:g}-e{c['epochs']}-b{c['batch_size']}-lr{c['lr']:g}-s{cell.seed}"
    if m != "ga":
        tag += f"-{short_hash(c[m])}"
    model = f"{cell.results_dir()}/{MODEL.format(ctag=tag)}"
    classes = "" if c["classes"] is None else "-c" + "_".join(str(v) for v in c["classes"])
    crun = f"n0{c['n0']}-n{c['n']}-a{c['alpha']:g}-skip{c['skip']}{classes}"
    run = f"{cell.results_dir()}/{RUN.format(ctag=tag, crun=crun)}"
    return {"model": f"{model}/model.safetensors", "manifest": f"{model}/model.json", "run": run,
            "chunks": [f"{run}/chunk{i}of{c['chunks']}.csv" for i in range(c["chunks"])]}  # fmt: skip


def targets(cell: Cell) -> list[str]:
    return [cell.paths["model"], cell.paths["manifest"]]


def check(cell: Cell, data: Data) -> None:
    """The architecture's input, the certified labels, and a test point for every CERTIFY job."""
    c = cell.cfg["cohen"]
    fits("cohen", c["arch"], data)
    if c["classes"] is not None:
        bad = [v for v in c["classes"] if v >= len(data.classes)]
        if bad:
            raise ConfigError(f"cohen.classes = {c['classes']}: labels {bad} are not in 0..{len(data.classes) - 1}")
    if data.counts is None or data.counts[1] is None:
        return
    test = data.counts[1]  # every skip-th test image of `classes` (certsmooth.certificates.cohen.chunk_rows)
    keep = c["classes"] if c["classes"] is not None else range(len(test))
    images = sum(test[v] for v in keep)
    points = -(-images // c["skip"])
    if c["chunks"] > points:
        which = f"labels {list(keep)}" if c["classes"] is not None else "all labels"
        raise ConfigError(
            f"cohen.chunks = {c['chunks']} exceeds the {points} test points it certifies (every {c['skip']}-th of "
            f"the {images} test images of {which}); use at most {points} chunks or a smaller skip"
        )


CERTIFIERS = (Certifier("cohen", "Cohen", 30, ("cohen",), "l2", STAGES, paths, one_run, targets, check, _method_block),)
