"""Command-line interface: one subcommand per workflow step.

Every Snakemake rule calls one of these (``python -m certsmooth <step> ...``); each
also runs standalone. A user error prints one line ``certsmooth: error: ...`` and
exits with status 2, leaving no output behind.
"""

from __future__ import annotations

import argparse
import json
import sys

from certsmooth import __version__
from certsmooth.errors import CertsmoothError, ConfigError
from certsmooth.heap import keep_freed_blocks
from certsmooth.logs import LOG, setup_logging


def _threads(args) -> None:
    """``--threads N``: torch's intra-op threads of this job (0: torch's default)."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def _json_arg(args, name: str):
    """The settings block a rule passed as ``--<name>`` JSON."""
    text = getattr(args, name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--{name.replace('_', '-')} {text!r}: not valid JSON ({exc})") from None


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
    from certsmooth.steps import prepare

    _register_user_dataset(args)
    prepare.run(dataset=args.dataset, classes=args.classes, split=args.split, raw_dir=args.raw_dir,
                manifest=args.manifest, out_dir=args.out_dir)  # fmt: skip


def cmd_poison(args) -> None:
    from certsmooth.steps import poison

    poison.run(train=args.train, test=args.test, attack=_json_arg(args, "attack"), seed=args.seed,
               experiment=args.experiment, out_dir=args.out_dir)  # fmt: skip


def cmd_bilevel_poison(args) -> None:
    from certsmooth.steps import bilevel_poison

    _threads(args)
    bilevel_poison.run(train=args.train, test=args.test, attack=_json_arg(args, "attack"), sigma=args.sigma,
                       seed=args.seed, experiment=args.experiment, device=args.device,
                       out_dir=args.out_dir)  # fmt: skip


def cmd_plot_samples(args) -> None:
    from certsmooth.steps import plot_samples

    plot_samples.run(poisoned_dir=args.poisoned_dir, prepared_train=args.prepared_train, out=args.out,
                     sigma=args.sigma, seed=args.seed, n_examples=args.n_examples, dpi=args.dpi,
                     context=args.context)  # fmt: skip


def cmd_train(args) -> None:
    from certsmooth.steps import train

    _threads(args)
    train.run(train=args.train, ensemble=_json_arg(args, "ensemble"), sigma=args.sigma, seed=args.seed,
              part=args.part, parts=args.parts, experiment=args.experiment, device=args.device, out=args.out,
              manifest=args.manifest, sample_sigma=args.sample_sigma, checkpoint_dir=args.checkpoint_dir)  # fmt: skip


def cmd_optimize_sigma(args) -> None:
    from certsmooth.steps import optimize_sigma

    _threads(args)
    optimize_sigma.run(
        stage=args.stage, train=args.train, ensemble=_json_arg(args, "ensemble"),
        sigma_opt=_json_arg(args, "sigma_opt"), sigma=args.sigma, seed=args.seed, experiment=args.experiment,
        device=args.device, out=args.out, out_info=args.out_info, out_pilot=args.out_pilot,
        out_pilot_manifest=args.out_pilot_manifest, checkpoint_dir=args.checkpoint_dir,
        train_sigma=args.train_sigma, clean_test=args.clean_test, triggered_test=args.triggered_test,
    )  # fmt: skip


def cmd_certify(args) -> None:
    from certsmooth.certify.run import certify_experiment

    _threads(args)
    summary = certify_experiment(
        weights=args.weights, manifests=args.manifests, train_path=args.train, record_path=args.record,
        clean_test_path=args.clean_test, triggered_test_path=args.triggered_test,
        ensemble=_json_arg(args, "ensemble"), certify=_json_arg(args, "certify"), scope=args.scope,
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
    from certsmooth.steps import train_cohen

    _threads(args)
    train_cohen.run(train=args.train, cohen=_json_arg(args, "cohen"), sigma=args.sigma, seed=args.seed,
                    experiment=args.experiment, device=args.device, out=args.out, manifest=args.manifest,
                    checkpoint_dir=args.checkpoint_dir)  # fmt: skip


def cmd_certify_cohen(args) -> None:
    from certsmooth.steps import certify_cohen

    _threads(args)
    certify_cohen.run(weights=args.weights, manifest=args.manifest, clean_test=args.clean_test,
                      triggered_test=args.triggered_test, cohen=_json_arg(args, "cohen"), sigma=args.sigma,
                      seed=args.seed, chunk=args.chunk, chunks=args.chunks, device=args.device,
                      out=args.out)  # fmt: skip


def cmd_merge_cohen(args) -> None:
    from certsmooth.steps import merge_cohen

    merge_cohen.run(chunks=args.chunks, record=args.record, triggered_test=args.triggered_test,
                    cohen=_json_arg(args, "cohen"), sigma=args.sigma, experiment=args.experiment,
                    out_clean=args.out_clean, out_triggered=args.out_triggered,
                    out_summary=args.out_summary)  # fmt: skip


def cmd_train_count(args) -> None:
    from certsmooth.steps import train_count

    _threads(args)
    train_count.run(train=args.train, count=_json_arg(args, "count"), seed=args.seed, part=args.part,
                    parts=args.parts, experiment=args.experiment, device=args.device, out=args.out,
                    manifest=args.manifest)  # fmt: skip


def cmd_certify_count(args) -> None:
    from certsmooth.steps import certify_count

    _threads(args)
    certify_count.run(weights=args.weights, manifests=args.manifests, train=args.train, record=args.record,
                      clean_test=args.clean_test, triggered_test=args.triggered_test,
                      count=_json_arg(args, "count"), seed=args.seed, experiment=args.experiment,
                      device=args.device, out_clean=args.out_clean, out_triggered=args.out_triggered,
                      out_summary=args.out_summary)  # fmt: skip


def cmd_metrics(args) -> None:
    from certsmooth.artifacts import write_json
    from certsmooth.summary import read_summary

    out = {"experiment": args.experiment}
    for path in args.summaries:
        s = read_summary(path)
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
        args.suite, _json_arg(args, "layout"), args.summaries, args.out_matrix, args.out_bars, args.out_csv,
        args.out_md, args.dpi, args.context,
    )  # fmt: skip
    LOG.info("%d (attack, certifier) pairs: %s", len(effects), args.out_matrix)


def cmd_rule_times(args) -> None:
    from certsmooth.runtimes import rule_times, write_rule_times

    write_rule_times(*rule_times(args.dir), args.json)


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
    sp.add_argument("--checkpoint-dir", help="the pilot's (stage train) or test-scoring ensemble's (stage test) "
                    + CHECKPOINT_HELP)  # fmt: skip
    sp.add_argument("--train-sigma", help="stage test: the training-sample sigma the models train with")
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

    sp = add("train-count", cmd_train_count, "count certificates: train one job's share of the base models")
    sp.add_argument("--train", required=True, help="poisoned train.npz")
    sp.add_argument("--count", required=True, help="the certifier's count settings as JSON (method = its kind)")
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--part", type=int, required=True)
    sp.add_argument("--parts", type=int, required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
    sp.add_argument("--out", required=True, help="safetensors file")
    sp.add_argument("--manifest", required=True, help="JSON manifest")

    sp = add("certify-count", cmd_certify_count, "count certificates (DPA, FA, bagging) of the test points")
    sp.add_argument("--weights", nargs="+", required=True)
    sp.add_argument("--manifests", nargs="+", required=True)
    sp.add_argument("--train", required=True, help="poisoned train.npz (checksum check, n for bagging)")
    sp.add_argument("--record", required=True)
    sp.add_argument("--clean-test", required=True)
    sp.add_argument("--triggered-test", required=True)
    sp.add_argument("--count", required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--experiment", required=True)
    sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    sp.add_argument("--threads", type=int, default=0)
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

    sp = add("rule-times", cmd_rule_times, "a finished workflow run's job seconds per rule (from .snakemake/metadata)")
    sp.add_argument("--dir", default=".", help="the project folder the workflow ran in")
    sp.add_argument("--json", help="also write the table as JSON here")
    return p


def _bench(argv: list[str]) -> int:
    """``certsmooth bench ...``: the benchmarks (not a workflow step)."""
    from certsmooth.bench.cli import main as bench_main

    return bench_main(argv)


def main(argv: list[str] | None = None) -> int:
    keep_freed_blocks()  # before the first tensor: batches reuse the heap instead of faulting in pages
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
