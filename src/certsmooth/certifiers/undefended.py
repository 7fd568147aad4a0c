"""The control column: no defence. One model trained on the whole poisoned training set by the
count certifiers' trainer (their architectures and recipe), so that a row shows whether the
attack works at all before any certifier is asked: its clean accuracy, the attack's success on
triggered inputs, and no certificate (every radius is 0: certified accuracy at 0 is accuracy).

Rules: ``workflow/rules/undefended.smk``; step ``undefended``; trainer:
:mod:`certsmooth.subsets.train`."""

from __future__ import annotations

from certsmooth.certifiers.base import Cell, Certifier, Data, fits, one_run

STAGES = {"train": ("undefended", ("arch", "epochs", "batch_size", "lr"))}
MODEL = "undefended/{utag}"  # below the cell's folder, with the rule's wildcards: model.{safetensors,json}
RUN = "undefended/{utag}/predict"  # clean.csv, triggered.csv, summary.json


def paths(cell: Cell) -> dict:
    """``model``/``manifest``: the trained model; ``run``: its predictions and summary."""
    u = cell.cfg["undefended"]
    utag = f"{u['arch']}-e{u['epochs']}-b{u['batch_size']}-lr{u['lr']:g}-s{cell.seed}"
    model = f"{cell.results_dir()}/{MODEL.format(utag=utag)}"
    return {"model": f"{model}/model.safetensors", "manifest": f"{model}/model.json",
            "run": f"{cell.results_dir()}/{RUN.format(utag=utag)}"}  # fmt: skip


def targets(cell: Cell) -> list[str]:
    return [cell.paths["model"], cell.paths["manifest"]]


def check(cell: Cell, data: Data) -> None:
    fits("undefended", cell.cfg["undefended"]["arch"], data)


CERTIFIERS = (Certifier("undefended", "Undefended", 5, ("undefended",), "none", STAGES, paths, one_run, targets,
                        check),)  # fmt: skip
