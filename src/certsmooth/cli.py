"""Command-line interface: one subcommand per workflow step.

Every Snakemake rule calls one of these (``python -m certsmooth <step> ...``); each
also runs standalone. A user error prints one line ``certsmooth: error: ...`` and
exits with status 2, leaving no output behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from certsmooth import __version__
from certsmooth.errors import CertsmoothError, ConfigError
from certsmooth.logs import LOG, setup_logging


def cmd_validate(args) -> None:
    from certsmooth.config import DEFAULT_SCHEMA, experiments, load_schema, load_yaml, validate_params

    schema = load_schema(args.schema or DEFAULT_SCHEMA)
    config = validate_params(load_yaml(args.params), schema, source=str(args.params))
    n = sum(1 for _ in experiments(config))
    print(f"{args.params}: valid ({len(config['suites'])} suites, {n} attack × certifier cells)")


def cmd_download(args) -> None:
    from certsmooth.artifacts import write_json
    from certsmooth.data.sources import fetch

    _register_user_dataset(args)
    manifest = fetch(args.dataset, args.raw_dir, download=not args.offline)
    LOG.info("%s: %d raw files, sha256 %s", args.dataset, len(manifest["files"]), manifest["sha256"])
    if args.manifest:
        write_json(args.manifest, manifest)
    print(f"{args.dataset}: raw files ready under {args.raw_dir} (sha256 {manifest['sha256'][:12]}...)")


def cmd_prepare(args) -> None:
    from certsmooth.data.prepared import parse_classes_token, parse_split_token, prepare, save_prepared
    from certsmooth.data.sources import get_source

    _register_user_dataset(args)
    source = get_source(args.dataset)
    classes = parse_classes_token(args.classes, len(source.class_names))
    split = parse_split_token(args.split)
    t0 = time.perf_counter()
    parts = prepare(args.dataset, classes, split, args.raw_dir, args.manifest)
    out = Path(args.out_dir)
    written = []
    try:
        for part, data in parts.items():
            save_prepared(out / f"{part}.npz", data)
            written.append(out / f"{part}.npz")
            counts = {data.class_names[c]: int((data.y == c).sum()) for c in range(data.num_classes)}
            LOG.info("%s %s: %d images %s, per class %s", args.dataset, part, data.y.size, data.x.shape[1:], counts)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    LOG.info("prepared in %.2f s", time.perf_counter() - t0)


def cmd_poison(args) -> None:
    from certsmooth.attacks.poison import NO_TARGET, poison_availability, poison_training_set, trigger_test_set
    from certsmooth.attacks.store import build_record, write_poisoned
    from certsmooth.attacks.triggers import make_trigger
    from certsmooth.data.prepared import load_prepared

    try:
        attack = json.loads(args.attack)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--attack {args.attack!r}: not valid JSON ({exc})") from None
    train, test = load_prepared(args.train), load_prepared(args.test)
    trigger = make_trigger(attack.get("trigger"))
    kind = attack.get("kind", "backdoor")
    if kind == "bilevel":
        raise ConfigError("attack.kind = 'bilevel': the bilevel attack is run by `certsmooth bilevel-poison`")
    if kind == "backdoor":
        poisoned = poison_training_set(train, trigger, float(attack["rate"]), int(attack["target"]), args.seed)
        triggered = trigger_test_set(test, trigger, int(attack["target"]))
    else:
        poisoned = poison_availability(
            train, trigger, kind, float(attack.get("rate", 0.0)), args.seed, attack.get("split_classes", (0, 1))
        )
        triggered = trigger_test_set(test, trigger, NO_TARGET)
    record = build_record(args.experiment, attack, args.seed, trigger, train, test, poisoned, triggered)
    write_poisoned(args.out_dir, record, trigger, train, test, poisoned, triggered)
    tr = record["train"]
    LOG.info(
        "%s: %d/%d training points poisoned with %s; norms %s; stacked norm %.4f (√m·δ = %s); %s clipped",
        args.experiment, tr["num_poisons"], tr["num_examples"], trigger.spec(), tr["perturbation_norm"],
        tr["stacked_norm"], tr["sqrt_m_times_nominal"], tr["num_clipped"],
    )  # fmt: skip


def cmd_bilevel_poison(args) -> None:
    import numpy as np
    import torch

    from certsmooth.attacks.bilevel import BilevelConfig, bilevel_poison, linf_norms
    from certsmooth.attacks.poison import NO_TARGET, PoisonedTrain, perturbation_norms, trigger_test_set
    from certsmooth.attacks.store import build_record, write_poisoned
    from certsmooth.attacks.triggers import NoTrigger
    from certsmooth.data.prepared import load_prepared

    if args.threads:
        torch.set_num_threads(args.threads)
    attack = json.loads(args.attack)
    b = dict(attack["bilevel"])
    b.pop("device", None)  # where it runs is --device
    device = args.device
    b["sigma"] = args.sigma
    cfg = BilevelConfig(epsilon=float(attack["epsilon"]), **b)
    train, test = load_prepared(args.train), load_prepared(args.test)
    target = int(attack["target"])
    x = train.floats()
    res = bilevel_poison(x, train.y, target, cfg, args.seed, train.num_classes, device)
    clean = x[res.index]
    poisoned_x = x.copy()
    poisoned_x[res.index] = res.poisons
    poisoned = PoisonedTrain(poisoned_x, train.y.copy(), train.y.copy(), res.index,
                             perturbation_norms(clean, res.poisons))  # fmt: skip
    trigger = NoTrigger()
    triggered = trigger_test_set(test, trigger, NO_TARGET)  # no test-time trigger
    record = build_record(args.experiment, attack, args.seed, trigger, train, test, poisoned, triggered)
    linf = linf_norms(res.poisons, clean)
    record["bilevel"] = {
        "config": cfg.to_dict(), "device": device, "target": target, "linf": {"min": float(linf.min()),
        "max": float(linf.max()), "mean": float(linf.mean())}, "stats": res.stats, "history": res.history,
        "shared_by": "every experiment of the suite with the same attack, dataset and seed",
    }  # fmt: skip
    write_poisoned(args.out_dir, record, trigger, train, test, poisoned, triggered)
    LOG.info("bilevel poisons: %d images of class %d, max |δ|∞ %.4f (ε %.3g), mean ‖δ‖₂ %.3f; %.0f s, %d steps",
             len(res.index), target, linf.max(), cfg.epsilon, float(np.mean(poisoned.perturbation_norm)),
             res.stats["wall_s"], res.stats["steps"])  # fmt: skip


def cmd_plot_samples(args) -> None:
    import numpy as np

    from certsmooth.artifacts import read_json
    from certsmooth.attacks.store import load_poisoned_train
    from certsmooth.data.prepared import load_prepared
    from certsmooth.plots.samples import plot_trigger_samples

    poisoned = load_poisoned_train(Path(args.poisoned_dir) / "train.npz")
    record = read_json(Path(args.poisoned_dir) / "record.json")
    clean = load_prepared(args.prepared_train)
    if clean.y.size != poisoned.y.size:
        raise CertsmoothError(
            f"{args.prepared_train} has {clean.y.size} images but {args.poisoned_dir} has {poisoned.y.size}: "
            "they come from different runs; rerun the workflow"
        )
    tr = record["train"]
    trig = ", ".join(f"{k}={v}" for k, v in record["trigger"].items() if k != "name" and v is not None)
    attack = record["attack"]
    kind = attack.get("kind", "backdoor")
    if kind == "none" and "trigger" not in attack:
        kind = "clean"
    if kind in ("none", "clean"):  # the control: show the test-time trigger on clean training images
        from certsmooth.attacks.poison import perturbation_norms
        from certsmooth.attacks.triggers import make_trigger

        rows = np.arange(min(args.n_examples, poisoned.y.size))
        shown = make_trigger(attack.get("trigger")).apply(clean.floats()[rows])
        norms = perturbation_norms(clean.floats()[rows], shown)
    else:
        rows = poisoned.poison_index[: args.n_examples]
        shown, norms = poisoned.x[rows], poisoned.perturbation_norm[: args.n_examples]
    names = poisoned.class_names
    relabel = {
        "backdoor": lambda: f"→ label {names[attack.get('target', 0)]}",
        "avail_uniform": lambda: "→ uniformly random labels",
        "avail_split": lambda: (
            "→ labels split between " + " and ".join(names[int(c)] for c in attack.get("split_classes", (0, 1)))
        ),
        "none": lambda: "(control: no poisons; the trigger is applied at test time only)",
        "clean": lambda: "(no poisons, no trigger: the clean baseline)",
        "bilevel": lambda: (
            f"(clean-label: labels kept; ℓ∞ ≤ {attack['epsilon']:g}, optimised against {attack['bilevel']['victim']})"
        ),
    }[kind]()
    title = {
        "bilevel": f"{record['experiment']}: bilevel poisons of class {names[attack.get('target', 0)]}",
        "clean": f"{record['experiment']}: clean data",
    }.get(kind, f"{record['experiment']}: {record['trigger']['name']} ({trig})")
    plot_trigger_samples(
        args.out,
        clean=clean.floats()[rows],
        triggered=shown,
        clean_labels=poisoned.clean_y[rows],
        new_labels=poisoned.y[rows],
        norms=norms,
        class_names=poisoned.class_names,
        sigma=args.sigma,
        seed=args.seed,
        title=title,
        subtitle=(
            f"{tr['num_poisons']} of {tr['num_examples']} training points poisoned {relabel}; "
            f"stacked ‖δ‖₂ = {tr['stacked_norm']:.3f}"
        ),
        dpi=args.dpi,
        context=args.context,
    )
    LOG.info("wrote %s", args.out)


def cmd_train(args) -> None:
    import torch

    from certsmooth.artifacts import load_sigma, sha256_array
    from certsmooth.attacks.store import load_poisoned_train
    from certsmooth.lanes import partition_lanes
    from certsmooth.models.partitions import save_partition
    from certsmooth.smoothing.resume import remove_checkpoints
    from certsmooth.smoothing.train import TrainConfig, train_partition

    if args.threads:
        torch.set_num_threads(args.threads)
    ens = json.loads(args.ensemble)
    cfg = TrainConfig(
        arch=ens["arch"], sigma=args.sigma, epochs=ens["epochs"], batch_size=ens["batch_size"], lr=ens["lr"],
        lane_width=ens["lane_width"], bf16=ens["bf16"],
    )  # fmt: skip
    data = load_poisoned_train(args.train)
    part_lanes = partition_lanes(ens["models"], ens["lane_width"], args.parts)[args.part]
    LOG.info("partition %d/%d: models %s in lanes of %d; %s", args.part, args.parts, part_lanes, cfg.lane_width, cfg)
    sample_sigma, sigma_sha = None, None
    if args.sample_sigma:
        sample_sigma = load_sigma(args.sample_sigma, "train", data.y.size)
        sigma_sha = sha256_array(sample_sigma)
        LOG.info("per-example noise scales from %s: min %.4f, max %.4f", args.sample_sigma, sample_sigma.min(),
                 sample_sigma.max())  # fmt: skip
    states, stats, timing = train_partition(
        data.x, data.y, part_lanes, args.seed, cfg, len(data.class_names), args.device, sample_sigma,
        args.checkpoint_dir,
    )  # fmt: skip
    LOG.info("trained %d models in %.1f s (%.0f sample-steps/s on %s)", len(states), timing["wall_s"],
             timing["sample_steps_per_s"], timing["device"])  # fmt: skip
    manifest = {
        "experiment": args.experiment,
        "seed": args.seed,
        "partition": args.part,
        "partitions": args.parts,
        "num_models": ens["models"],
        "train": cfg.to_dict(),
        "num_classes": len(data.class_names),
        "input_shape": list(data.x.shape[1:]),
        "data_sha256": sha256_array(data.x, data.y),
        "method": ens["method"],
        "sample_sigma_sha256": sigma_sha,
        "per_model": stats,
        "device": timing["device"],
    }
    save_partition(args.out, args.manifest, states, manifest)
    remove_checkpoints(args.checkpoint_dir)


def cmd_optimize_sigma(args) -> None:
    import torch

    from certsmooth.artifacts import load_sigma, save_npz, sha256_array, write_json
    from certsmooth.attacks.store import load_poisoned_train
    from certsmooth.device import resolve_device
    from certsmooth.models.partitions import save_partition
    from certsmooth.smoothing import certssb
    from certsmooth.smoothing.resume import remove_checkpoints

    needs = {
        "train": ("out_pilot", "out_pilot_manifest"),
        "test": ("weights", "manifests", "train_sigma", "clean_test", "triggered_test"),
    }[args.stage]
    missing = ["--" + k.replace("_", "-") for k in needs if not getattr(args, k)]
    if missing:
        raise ConfigError(f"optimize-sigma --stage {args.stage} needs {', '.join(missing)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    ens, opt = json.loads(args.ensemble), certssb.settings(json.loads(args.sigma_opt))
    device = resolve_device(args.device)
    train = load_poisoned_train(args.train)
    num_classes = len(train.class_names)
    if args.stage == "train":
        sigma, states, info = certssb.train_sigmas(
            train.x, train.y, num_classes, ens, opt, args.sigma, args.seed, device, args.checkpoint_dir
        )
        info.update(experiment=args.experiment, data_sha256=sha256_array(train.x, train.y),
                    sigma_sha256=sha256_array(sigma))  # fmt: skip
        pilot_manifest = {
            "experiment": args.experiment, "purpose": "Cert-SSB pilot ensemble (training-sample sigma)",
            "seed": info["pilot"]["seed"], "num_models": opt["pilot_models"], "train": info["pilot"]["train"],
            "num_classes": num_classes, "input_shape": list(train.x.shape[1:]), "data_sha256": info["data_sha256"],
            "per_model": info["pilot"]["per_model"],
        }  # fmt: skip
        outputs = [args.out, args.out_info, args.out_pilot, args.out_pilot_manifest]
        save_partition(args.out_pilot, args.out_pilot_manifest, states, pilot_manifest)
        with _removed_on_failure(outputs):
            save_npz(args.out, train=sigma)
        LOG.info("train σ: %s", info["sigma"])
    else:
        from certsmooth.attacks.store import load_triggered_test
        from certsmooth.certify.run import load_ensemble
        from certsmooth.data.prepared import load_prepared

        train_sigma = load_sigma(args.train_sigma, "train", train.y.size)
        states, _ = load_ensemble(
            args.weights, args.manifests, sha256_array(train.x, train.y), args.seed, args.sigma, ens,
            sha256_array(train_sigma),
        )  # fmt: skip
        sets = {
            "clean": load_prepared(args.clean_test).floats(),
            "triggered": load_triggered_test(args.triggered_test).x,
        }
        sigmas, info = certssb.test_sigmas(
            states, ens["arch"], num_classes, ens["lane_width"], sets, opt, args.sigma, args.seed, device
        )
        info.update(experiment=args.experiment, train_sigma_sha256=sha256_array(train_sigma))
        outputs = [args.out, args.out_info]
        save_npz(args.out, **sigmas)
        LOG.info("test σ: %s", {k: v["sigma"] for k, v in info["sets"].items()})
    with _removed_on_failure(outputs):
        write_json(args.out_info, info)
    remove_checkpoints(args.checkpoint_dir)  # every output is saved: the pilot's checkpoints are done


@contextlib.contextmanager
def _removed_on_failure(paths):
    """Delete every path of a multi-file output if writing the rest fails."""
    try:
        yield
    except BaseException:
        for p in paths:
            Path(p).unlink(missing_ok=True)
        raise


def cmd_certify(args) -> None:
    import torch

    from certsmooth.certify.run import certify_experiment

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = certify_experiment(
        weights=args.weights, manifests=args.manifests, train_path=args.train, record_path=args.record,
        clean_test_path=args.clean_test, triggered_test_path=args.triggered_test,
        ensemble=json.loads(args.ensemble), certify=json.loads(args.certify), scope=args.scope,
        sigma=args.sigma, seed=args.seed, experiment=args.experiment, device=args.device,
        train_sigma_path=args.train_sigma, test_sigma_path=args.test_sigma, out_clean=args.out_clean,
        out_triggered=args.out_triggered, out_summary=args.out_summary,
    )  # fmt: skip
    LOG.info(
        "%s scope %s: clean acc %.3f, cert acc@0 %.3f, ASR %.3f, certified vs attack %.3f",
        args.experiment, args.scope, summary["clean_accuracy"], summary["certified_accuracy_clean"]["0"],
        summary["attack_success_rate"], summary["certified_vs_deployed_attack"],
    )  # fmt: skip


def cmd_train_cohen(args) -> None:
    import torch

    from certsmooth.artifacts import sha256_array
    from certsmooth.attacks.store import load_poisoned_train
    from certsmooth.models.partitions import save_partition
    from certsmooth.smoothing.ga import GAConfig, train_gaussian
    from certsmooth.smoothing.resume import remove_checkpoints

    if args.threads:
        torch.set_num_threads(args.threads)
    c = json.loads(args.cohen)
    cfg = GAConfig(arch=c["arch"], sigma=args.sigma, epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"],
                   method=c["train_method"], **{m: c[m] for m in ("macer", "smoothadv") if m in c})  # fmt: skip
    data = load_poisoned_train(args.train)
    state, stats = train_gaussian(data.x, data.y, cfg, args.seed, len(data.class_names), args.device,
                                  args.checkpoint_dir)  # fmt: skip
    LOG.info("trained the %s model in %.1f s on %s; %s", cfg.method, stats.pop("wall_s"), stats["device"],
             stats)  # fmt: skip
    manifest = {
        "experiment": args.experiment, "purpose": f"Cohen et al. base classifier ({cfg.method} training)",
        "seed": args.seed, "train": cfg.to_dict(), "num_classes": len(data.class_names),
        "input_shape": list(data.x.shape[1:]), "data_sha256": sha256_array(data.x, data.y), "stats": stats,
    }  # fmt: skip
    save_partition(args.out, args.manifest, {0: state}, manifest)
    remove_checkpoints(args.checkpoint_dir)


def _cohen_config(c: dict, sigma: float):
    from certsmooth.certify.cohen import CohenConfig

    return CohenConfig(sigma=sigma, n0=c["n0"], n=c["n"], alpha=c["alpha"], batch=c["batch"])


def cmd_certify_cohen(args) -> None:
    import numpy as np
    import pandas as pd
    import torch

    from certsmooth.artifacts import atomic_path
    from certsmooth.attacks.store import load_triggered_test
    from certsmooth.certify.cohen import certify_rows, chunk_rows
    from certsmooth.data.prepared import load_prepared
    from certsmooth.device import resolve_device
    from certsmooth.models import build_model
    from certsmooth.models.partitions import check_manifest, load_partition
    from certsmooth.seeding import derive_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    c = json.loads(args.cohen)
    cfg = _cohen_config(c, args.sigma)
    states, man = load_partition(args.weights, args.manifest)
    check_manifest(man, args.weights, args.manifest, seed=args.seed)
    check_manifest(man["train"], args.weights, args.manifest, sigma=args.sigma, arch=c["arch"])
    clean, trig = load_prepared(args.clean_test), load_triggered_test(args.triggered_test)
    model = build_model(c["arch"], tuple(man["input_shape"]), man["num_classes"], check=False)
    model.load_state_dict(states[0])
    device = resolve_device(args.device)
    rows = chunk_rows(clean.y.size, c["skip"], args.chunk, args.chunks, clean.y, c["classes"])
    t0 = time.perf_counter()
    frames = []
    cx = clean.floats()
    for name, x, y in (("clean", cx, clean.y), ("triggered", trig.x, trig.y)):
        if name == "triggered" and np.array_equal(x, cx):  # no test-time trigger: the same inputs
            f = frames[0].drop(columns="set")
            LOG.info("the triggered test set equals the clean one (no trigger): its certificates are the clean ones")
        else:
            f = certify_rows(model, x, y, rows, cfg, derive_seed(args.seed, "cohen-set", name), man["num_classes"],
                             device)  # fmt: skip
        f.insert(0, "set", name)
        frames.append(f)
    wall = time.perf_counter() - t0
    LOG.info("chunk %d/%d: %d points × 2 sets in %.1f s (%.2f s per point, n0 = %d, n = %d, device %s)", args.chunk,
             args.chunks, len(rows), wall, wall / max(1, 2 * len(rows)), cfg.n0, cfg.n, device)  # fmt: skip
    with atomic_path(args.out) as tmp:
        pd.concat(frames, ignore_index=True).to_csv(tmp, index=False, float_format="%.10g")


def cmd_merge_cohen(args) -> None:
    import pandas as pd

    from certsmooth.artifacts import atomic_path, read_json, write_json
    from certsmooth.attacks.store import load_triggered_test
    from certsmooth.certify.cohen import max_radius, merge_chunks
    from certsmooth.metrics import per_class, summarize

    c = json.loads(args.cohen)
    trig = load_triggered_test(args.triggered_test)
    record = read_json(args.record)
    clean, triggered = merge_chunks([pd.read_csv(p) for p in args.chunks], trig.nontarget, trig.perturbation_norm)
    scored = triggered[triggered["nontarget"]]
    summary = summarize(clean, scored, c["radii"], "ge", trig.target)
    m = record["train"]["num_poisons"]
    summary.update(
        {
            "experiment": args.experiment,
            "method": "cohen",
            "train_method": c["train_method"],
            "scope": "cohen",
            "aggregation": "cohen",
            "alpha": c["alpha"],
            "sigma": args.sigma,
            "num_models": 1,
            "radius_cmp": "ge",
            "radius": "σ·Φ⁻¹(p_A,low): perturbations of the test input, training set as given",
            "n0": c["n0"],
            "n": c["n"],
            "max_radius": max_radius(args.sigma, c["n"], c["alpha"]),
            "predict": {
                "abstain_rate_clean": float(clean["predict_only_abstain"].mean()),
                "abstain_rate_triggered": float(scored["predict_only_abstain"].mean()),
                "accuracy_clean": float((clean["predict_only"] == clean["label"]).mean()),
                "accuracy_triggered": float((scored["predict_only"] == scored["label"]).mean()),
            },
            "per_class_clean": per_class(clean, c["radii"], "ge"),
            "base_accuracy_clean": float((clean["base_predict"] == clean["label"]).mean()),
            "base_accuracy_triggered": float((scored["base_predict"] == scored["label"]).mean()),
            "deployed_attack": {
                "num_poisons": m,
                "stacked_train_norm": float(record["train"]["stacked_norm"]),
                "covered": "nothing of the poisoning: the certificate is about the test input",
                "not_covered": f"the {m} poisons (features and labels)",
            },
        }
    )
    for frame, out in ((clean, args.out_clean), (triggered, args.out_triggered)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.10g")
    write_json(args.out_summary, summary)


def cmd_metrics(args) -> None:
    from certsmooth.artifacts import read_json, write_json

    out = {"experiment": args.experiment}
    for path in args.summaries:
        s = read_json(path)
        out[s["scope"]] = s
    write_json(args.out, out)


def cmd_plot_sigma(args) -> None:
    from certsmooth.artifacts import load_npz, load_sigma
    from certsmooth.attacks.store import load_poisoned_train
    from certsmooth.plots.sigma import plot_sigma_histograms

    train = load_poisoned_train(args.train)
    train_sigma = load_sigma(args.train_sigma, "train", train.y.size)
    test = load_npz(args.test_sigma, required=["clean", "triggered"])
    plot_sigma_histograms(
        args.out, train_sigma, train.poison_index, {k: test[k] for k in ("clean", "triggered")}, args.sigma,
        f"{args.experiment}: Cert-SSB noise scales ({args.variant} ascent)", args.dpi, args.context,
    )  # fmt: skip
    LOG.info("wrote %s", args.out)


def cmd_plot_curves(args) -> None:
    from certsmooth.plots.curves import plot_suite

    plot_suite(
        args.suite, args.runs, args.out_png, args.out_csv, args.out_md, args.out_metrics, args.out_curves,
        args.dpi, args.context,
    )  # fmt: skip


def cmd_plot_attacks(args) -> None:
    from certsmooth.plots.attacks import plot_attacks

    effects = plot_attacks(
        args.suite, json.loads(args.layout), args.summaries, args.out_matrix, args.out_bars, args.out_csv,
        args.out_md, args.dpi, args.context,
    )  # fmt: skip
    LOG.info("%d (attack, certifier) pairs: %s", len(effects), args.out_matrix)


CHECKPOINT_HELP = (
    "folder for epoch checkpoints (outside the outputs): an interrupted run resumes from it with the same result; "
    "removed once the outputs are saved. Interval: $CERTSMOOTH_CHECKPOINT_EVERY_S seconds (default 300, 0 = every "
    "epoch)"
)


def _user_dataset_args(sp) -> None:
    g = sp.add_argument_group("a dataset of your own (params.yaml datasets: entry)")
    g.add_argument("--format", choices=["npz", "imagefolder"], help="the dataset is yours, in this format")
    g.add_argument("--path", help="its .npz file or ImageFolder root")
    g.add_argument("--channels", type=int, choices=[1, 3], default=3, help="imagefolder: 1 or 3")
    g.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="imagefolder: resize to H×W")


def _register_user_dataset(args) -> None:
    """Register ``args.dataset`` as the user dataset the ``--format`` flags describe."""
    from certsmooth.data.sources import register_user_datasets

    if args.format is None:
        return
    if args.path is None:
        raise ConfigError("--format needs --path (the .npz file or the ImageFolder root)")
    spec = {"format": args.format, "path": args.path, "channels": args.channels, "size": args.size}
    register_user_datasets({args.dataset: spec})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="certsmooth", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"certsmooth {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        sp.add_argument("--log", help="write the log to this file (default: stderr)")
        sp.add_argument("-v", "--verbose", action="store_true")
        return sp

    sub.add_parser("bench", help="benchmarks: bench data | train | certify (see certsmooth bench -h)")

    sp = add("validate", cmd_validate, "validate a params.yaml against the schema")
    sp.add_argument("params", nargs="?", default="params.yaml")
    sp.add_argument("--schema", help="schema file (default: workflow/schemas/params.schema.yaml)")

    sp = add("download", cmd_download, "download a dataset's raw files (run where there is network)")
    sp.add_argument("dataset")
    sp.add_argument("--raw-dir", default="data/raw")
    sp.add_argument("--manifest", help="write a JSON manifest (files, sha256) here")
    sp.add_argument("--offline", action="store_true", help="never download; only check the files")
    _user_dataset_args(sp)

    sp = add("prepare", cmd_prepare, "write the prepared train/test .npz of a dataset and class subset")
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--classes", required=True, help="'all' or class indices joined by '-', e.g. 1-0")
    sp.add_argument("--split", required=True, help="'official' or test<fraction>-seed<seed>")
    sp.add_argument("--raw-dir", default="data/raw")
    sp.add_argument("--manifest", help="the download manifest the raw files must match (SHA-256)")
    sp.add_argument("--out-dir", required=True)
    _user_dataset_args(sp)

    sp = add("poison", cmd_poison, "generate a poisoned training set and a triggered test set")
    sp.add_argument("--train", required=True)
    sp.add_argument("--test", required=True)
    sp.add_argument("--attack", required=True, help="the experiment's attack entry as JSON")
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--experiment", required=True, help="experiment id, for the record")
    sp.add_argument("--out-dir", required=True)

    sp = add("plot-attacks", cmd_plot_attacks, "attack x certifier matrix, effect bars and table of a suite")
    sp.add_argument("--suite", required=True)
    sp.add_argument("--layout", required=True, help="JSON: the suite's attacks, columns, baseline, exclusions")
    sp.add_argument("--summaries", nargs="*", default=[], help="certification summary.json files")
    sp.add_argument("--out-matrix", required=True)
    sp.add_argument("--out-bars", required=True)
    sp.add_argument("--out-csv", required=True)
    sp.add_argument("--out-md", required=True)
    sp.add_argument("--dpi", type=int, default=150)
    sp.add_argument("--context", default="paper")

    sp = add("bilevel-poison", cmd_bilevel_poison, "Mehra et al.'s bilevel poisons of the target class (ApproxGrad)")
    sp.add_argument("--train", required=True)
    sp.add_argument("--test", required=True)
    sp.add_argument("--attack", required=True, help="the experiment's attack entry as JSON")
    sp.add_argument("--sigma", type=float, required=True, help="the attack's smoothing sigma")
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--experiment", required=True, help="experiment id, for the record")
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
    sp.add_argument("--out-dir", required=True)

    sp = add("plot-samples", cmd_plot_samples, "figure of clean vs triggered training samples")
    sp.add_argument("--poisoned-dir", required=True)
    sp.add_argument("--prepared-train", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--sigma", type=float, required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--n-examples", type=int, default=6)
    sp.add_argument("--dpi", type=int, default=150)
    sp.add_argument("--context", default="paper")

    sp = add("train", cmd_train, "train one partition of a smoothed ensemble")
    sp.add_argument("--train", required=True, help="poisoned train.npz")
    sp.add_argument("--ensemble", required=True, help="the experiment's ensemble entry as JSON")
    sp.add_argument("--sigma", type=float, required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--part", type=int, required=True)
    sp.add_argument("--parts", type=int, required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
    sp.add_argument("--out", required=True, help="safetensors file")
    sp.add_argument("--manifest", required=True, help="JSON manifest")
    sp.add_argument("--sample-sigma", help="Cert-SSB: train_sigma.npz with one noise scale per training example")
    sp.add_argument("--checkpoint-dir", help=CHECKPOINT_HELP)

    sp = add("optimize-sigma", cmd_optimize_sigma, "Cert-SSB: per-sample sigma of the training or the test points")
    sp.add_argument("--stage", choices=["train", "test"], required=True)
    sp.add_argument("--train", required=True, help="poisoned train.npz")
    sp.add_argument("--ensemble", required=True, help="the experiment's ensemble entry as JSON")
    sp.add_argument("--sigma-opt", required=True, help="the experiment's sigma_opt entry as JSON")
    sp.add_argument("--sigma", type=float, required=True, help="base sigma")
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
    sp.add_argument("--out", required=True, help="npz of sigma vectors")
    sp.add_argument("--out-info", required=True, help="JSON: settings, seeds, statistics")
    sp.add_argument("--out-pilot", help="stage train: pilot ensemble safetensors")
    sp.add_argument("--out-pilot-manifest", help="stage train: pilot ensemble manifest")
    sp.add_argument("--checkpoint-dir", help="stage train: " + CHECKPOINT_HELP)
    sp.add_argument("--weights", nargs="+", help="stage test: the trained ensemble's partitions")
    sp.add_argument("--manifests", nargs="+")
    sp.add_argument("--train-sigma", help="stage test: the training-sample sigma the ensemble was trained with")
    sp.add_argument("--clean-test")
    sp.add_argument("--triggered-test")

    sp = add("certify", cmd_certify, "certify clean and triggered test points with a trained ensemble")
    sp.add_argument("--weights", nargs="+", required=True)
    sp.add_argument("--manifests", nargs="+", required=True)
    sp.add_argument("--train", required=True, help="poisoned train.npz (checksum check)")
    sp.add_argument("--record", required=True)
    sp.add_argument("--clean-test", required=True)
    sp.add_argument("--triggered-test", required=True)
    sp.add_argument("--ensemble", required=True)
    sp.add_argument("--certify", required=True)
    sp.add_argument("--scope", choices=["train", "joint"], required=True)
    sp.add_argument("--sigma", type=float, required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
    sp.add_argument("--train-sigma", help="Cert-SSB: train_sigma.npz the ensemble was trained with")
    sp.add_argument("--test-sigma", help="Cert-SSB: test_sigma.npz (clean, triggered)")
    sp.add_argument("--out-clean", required=True)
    sp.add_argument("--out-triggered", required=True)
    sp.add_argument("--out-summary", required=True)

    sp = add("train-cohen", cmd_train_cohen, "train Cohen et al.'s base classifier with Gaussian augmentation")
    sp.add_argument("--train", required=True, help="poisoned train.npz")
    sp.add_argument("--cohen", required=True, help="the experiment's cohen entry as JSON")
    sp.add_argument("--sigma", type=float, required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
    sp.add_argument("--out", required=True, help="safetensors file")
    sp.add_argument("--manifest", required=True, help="JSON manifest")
    sp.add_argument("--checkpoint-dir", help=CHECKPOINT_HELP)

    sp = add("certify-cohen", cmd_certify_cohen, "CERTIFY and PREDICT one chunk of the clean and triggered test points")
    sp.add_argument("--weights", required=True)
    sp.add_argument("--manifest", required=True)
    sp.add_argument("--clean-test", required=True)
    sp.add_argument("--triggered-test", required=True)
    sp.add_argument("--cohen", required=True)
    sp.add_argument("--sigma", type=float, required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--chunk", type=int, required=True)
    sp.add_argument("--chunks", type=int, required=True)
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
    sp.add_argument("--out", required=True)

    sp = add("merge-cohen", cmd_merge_cohen, "merge CERTIFY chunks into per-point CSVs and a summary")
    sp.add_argument("--chunks", nargs="+", required=True)
    sp.add_argument("--record", required=True)
    sp.add_argument("--triggered-test", required=True)
    sp.add_argument("--cohen", required=True)
    sp.add_argument("--sigma", type=float, required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--out-clean", required=True)
    sp.add_argument("--out-triggered", required=True)
    sp.add_argument("--out-summary", required=True)

    sp = add("metrics", cmd_metrics, "merge the scopes' summaries into metrics.json")
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--summaries", nargs="+", required=True)
    sp.add_argument("--out", required=True)

    sp = add("plot-sigma", cmd_plot_sigma, "Cert-SSB: histograms of the optimised noise scales")
    sp.add_argument("--train-sigma", required=True)
    sp.add_argument("--test-sigma", required=True)
    sp.add_argument("--train", required=True, help="poisoned train.npz (marks the poisons)")
    sp.add_argument("--sigma", type=float, required=True, help="base sigma")
    sp.add_argument("--variant", required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--dpi", type=int, default=150)
    sp.add_argument("--context", default="paper")

    sp = add("plot-curves", cmd_plot_curves, "certified-accuracy curves and summary table of a suite")
    sp.add_argument("--suite", required=True)
    sp.add_argument(
        "--runs", nargs="+", required=True, help="certify folders (with clean.csv, triggered.csv, summary.json)"
    )
    sp.add_argument("--out-png", required=True)
    sp.add_argument("--out-csv", required=True)
    sp.add_argument("--out-md", required=True)
    sp.add_argument("--out-metrics", required=True, help="suite metrics JSON (DVC metrics)")
    sp.add_argument("--out-curves", required=True, help="certified-accuracy curves CSV (DVC plots)")
    sp.add_argument("--dpi", type=int, default=150)
    sp.add_argument("--context", default="paper")
    return p


def _bench(argv: list[str]) -> int:
    """``certsmooth bench ...``: the benchmarks (not a workflow step)."""
    from certsmooth.bench import main as bench_main

    return bench_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        setup_logging(args.log, args.verbose)
        args.func(args)
    except CertsmoothError as exc:
        return _fail(str(exc), args.log)
    except OSError as exc:
        msg = storage_error(exc)
        if msg is None:
            raise  # not the environment's doing: a bug, keep the traceback
        return _fail(msg, args.log)
    return 0


def storage_error(exc: OSError) -> str | None:
    """One line for a write that the file system refused (full, read-only, no permission,
    quota), naming the path and the fix; None for other errors."""
    import errno
    import os

    fixes = {
        errno.ENOSPC: "free space on that file system (or point the workflow's folders elsewhere), then rerun",
        errno.EDQUOT: "free space within your quota, then rerun",
        errno.EROFS: "the file system is read-only: run where the output folders are writable",
        errno.EACCES: "make the folder writable for this user, then rerun",
        errno.EPERM: "make the folder writable for this user, then rerun",
    }
    if exc.errno not in fixes:
        return None
    where = exc.filename or "an output file"
    return f"cannot write {where}: {os.strerror(exc.errno)}; {fixes[exc.errno]}"


def _fail(msg: str, log: str | None) -> int:
    msg = msg.replace("\n", " ")
    if log:
        LOG.error("%s", msg)  # a log that cannot be written is skipped (logs.setup_logging)
    print(f"certsmooth: error: {msg}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
