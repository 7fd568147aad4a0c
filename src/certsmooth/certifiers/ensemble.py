"""The smoothed ensembles: RAB (Weber et al., IEEE S&P 2023, arXiv 2003.08904) and Wang et
al. (arXiv 2002.03516), and Cert-SSB (Qiao et al.), which adds a per-sample σ fixed before
training. M models trained in jobs of lanes, one Gaussian draw per (model, example); scope
``train`` is RAB's certificate, ``joint`` Wang et al.'s (the test trigger included).

Rules: ``workflow/rules/ensemble.smk``; steps ``train``, ``optimize-sigma``, ``certify``,
``plot-sigma``; mathematics: :mod:`certsmooth.smoothing`, :mod:`certsmooth.certificates`."""

from __future__ import annotations

from certsmooth.certifiers.base import Cell, Certifier, Data, fits
from certsmooth.errors import ConfigError

_TRAIN = ("models", "lane_width", "arch", "epochs", "batch_size", "lr", "bf16")
STAGES = {
    "train": ("ensemble", ("method", *_TRAIN)),
    "sigma": ("ensemble", _TRAIN),  # Cert-SSB's pilot and test-scoring ensembles
    "certify": ("ensemble", ("method", "models", "lane_width", "arch")),
}
# Cert-SSB's σ ascents: what each stage reads of sigma_opt (batch_size changes no result but the step needs it)
_OPT = ("variant", "lr", "mc_samples", "sigma_min", "sigma_max", "batch_size")
SIGMA_STAGES = {
    "sigma-train": ("sigma_opt", (*_OPT, "steps", "pilot_models", "pilot_epochs")),
    "sigma-test": ("sigma_opt", (*_OPT, "test_steps", "test_models")),
}


# Folders below the cell's (results/<suite>/<attack>/<certifier>), spelled with the rules' wildcards
MODELS = "models/{ttag}"  # the M models, a file pair per training job: part{part}of{parts}.{safetensors,json}
SIGMA = "sigma/{otag}"  # Cert-SSB's training-sample σ and its pilot ensemble
TEST_SIGMA = "certify/{ttag}/sigma-{thash}"  # Cert-SSB's test-point σ
RUN = "certify/{ttag}/{scope}-{agg}-a{alpha}"  # a scope's certificates (Cert-SSB's ttag: <tag>/sigma-<hash>)


def _sigma_hash(cell: Cell, stage: str) -> str:
    """Short hash of every setting the ``stage`` ('train' or 'test') σ vector depends on."""
    from certsmooth.artifacts import short_hash

    opt = {k: cell.cfg["sigma_opt"][k] for k in SIGMA_STAGES[f"sigma-{stage}"][1] if k != "batch_size"}
    ens = {k: cell.cfg["ensemble"][k] for k in STAGES["sigma"][1] if k != "models"}  # not M: σ comes first
    return short_hash({"stage": stage, "sigma_opt": opt, "ensemble": ens, "sigma": cell.sigma, "seed": cell.seed})


def train_tag(cell: Cell) -> str:
    """Folder name with the key training settings, e.g. ``rab-mnist_cnn-sigma1-M50-W5-e20-b128-lr0.001-s0``
    (Cert-SSB adds the hash of its training-sample σ settings)."""
    e, kind = cell.cfg["ensemble"], cell.cfg["certifier"]
    return (
        f"{kind}-{e['arch']}-sigma{cell.sigma:g}-M{e['models']}-W{e['lane_width']}"
        f"-e{e['epochs']}-b{e['batch_size']}-lr{e['lr']:g}{'-bf16' if e['bf16'] else ''}-s{cell.seed}"
        + (f"-o{_sigma_hash(cell, 'train')}" if kind == "certssb" else "")
    )


def paths(cell: Cell) -> dict:
    """``weights``/``manifests``: the M models in their jobs' files; ``runs``: scope -> the
    certification folder; Cert-SSB's ``sigma`` (training-sample σ and its pilot) and ``test_sigma``."""
    e, c, res = cell.cfg["ensemble"], cell.cfg["certify"], cell.results_dir()
    tag = ttag = train_tag(cell)
    stems = [f"{res}/{MODELS.format(ttag=tag)}/part{i}of{e['jobs']}" for i in range(e["jobs"])]
    out = {"weights": [f"{s}.safetensors" for s in stems], "manifests": [f"{s}.json" for s in stems]}
    if cell.cfg["certifier"] == "certssb":
        o = cell.cfg["sigma_opt"]
        otag = f"{o['variant']}-K{o['pilot_models']}-n{o['steps']}-{_sigma_hash(cell, 'train')}"
        out["sigma"] = f"{res}/{SIGMA.format(otag=otag)}"
        thash = _sigma_hash(cell, "test")
        out["test_sigma"] = f"{res}/{TEST_SIGMA.format(ttag=tag, thash=thash)}"
        ttag = f"{tag}/sigma-{thash}"
    alpha = f"{c['alpha']:g}"
    out["runs"] = {s: f"{res}/{RUN.format(ttag=ttag, scope=s, agg=c['aggregation'], alpha=alpha)}" for s in c["scopes"]}
    return out


def inputs(cell: Cell, stage: str) -> dict:
    """The input files of a stage's jobs (``train``, ``test-sigma`` or ``certify``), by name: the
    poisoned training set, Cert-SSB's noise scales, and to certify the models and the test sets."""
    d = cell.poisoned_dir()
    out = {"train": f"{d}/train.npz"}
    if "sigma" in cell.paths:
        out["sample_sigma"] = f"{cell.paths['sigma']}/train_sigma.npz"
    if stage == "certify":
        out.update(weights=cell.paths["weights"], manifests=cell.paths["manifests"], record=f"{d}/record.json",
                   triggered_test=f"{d}/test.npz", clean_test=f"{cell.prepared_dir()}/test.npz")  # fmt: skip
        if "test_sigma" in cell.paths:
            out["test_sigma"] = f"{cell.paths['test_sigma']}/test_sigma.npz"
    return out


def runs(cell: Cell) -> list[tuple[str, str]]:
    """One run per scope: both scopes certify the same models."""
    return [(f"{cell.certifier_name} ({scope})", d) for scope, d in cell.paths["runs"].items()]


def targets(cell: Cell) -> list[str]:
    return cell.paths["weights"] + cell.paths["manifests"]


def certssb_targets(cell: Cell) -> list[str]:
    sd, td = cell.paths["sigma"], cell.paths["test_sigma"]
    return [
        *targets(cell),
        *(f"{sd}/{f}" for f in ("train_sigma.npz", "train_sigma.json", "pilot.safetensors", "pilot.json")),
        f"{td}/test_sigma.npz", f"{td}/test_sigma.json", f"{cell.results_dir()}/figures/sigma.png",
    ]  # fmt: skip


def check(cell: Cell, data: Data) -> None:
    """The jobs' lanes, the architecture's input, and an ensemble large enough to certify a point."""
    from certsmooth.certificates.bounds import min_models_to_certify

    e = cell.cfg["ensemble"]
    fits("ensemble", e["arch"], data, e["models"], e["lane_width"], e["jobs"])
    m, agg, alpha = e["models"], cell.cfg["certify"]["aggregation"], cell.cfg["certify"]["alpha"]
    need, why = min_models_to_certify(agg, alpha, len(data.classes), m)
    if m < need:
        raise ConfigError(
            f"ensemble.models = {m} cannot certify any point with certify.aggregation {agg} at alpha {alpha:g} "
            f"({why}); use at least {need} models or a larger alpha"
        )


def certssb_check(cell: Cell, data: Data) -> None:
    check(cell, data)
    opt, sigma = cell.cfg["sigma_opt"], cell.sigma

    if opt["sigma_min"] > opt["sigma_max"]:
        raise ConfigError(f"sigma_opt.sigma_min = {opt['sigma_min']} > sigma_max = {opt['sigma_max']}; the bounds "
                          "must be ordered")  # fmt: skip
    if opt["variant"] == "paper" and not opt["sigma_min"] <= sigma <= opt["sigma_max"]:
        raise ConfigError(f"sigma_opt: the base sigma {sigma} (smoothing.sigma, the ascent's start) is outside "
                          f"[sigma_min, sigma_max] = [{opt['sigma_min']}, {opt['sigma_max']}]; widen the bounds")
    if opt["test_models"] > cell.cfg["ensemble"]["models"]:
        raise ConfigError(f"sigma_opt.test_models = {opt['test_models']} exceeds ensemble.models = "
                          f"{cell.cfg['ensemble']['models']}; use at most that many")  # fmt: skip


RAB = Certifier("rab", "RAB", 10, ("ensemble", "certify"), "l2", STAGES, paths, runs, targets, check, inputs=inputs)
CERTSSB = Certifier("certssb", "Cert-SSB", 20, ("ensemble", "sigma_opt", "certify"), "l2", {**STAGES, **SIGMA_STAGES},
                    paths, runs, certssb_targets, certssb_check, inputs=inputs)  # fmt: skip
CERTIFIERS = (RAB, CERTSSB)
