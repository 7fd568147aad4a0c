# Shared set-up: config validation, input functions, wildcard constraints.
import json
import os
import sys
from pathlib import Path

# The workflow runs the library of this checkout, also in jobs on other nodes or in
# conda environments: its files are declared as inputs of the jobs that use them, so
# editing a module reruns exactly those jobs.
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
_pythonpath = os.environ.get("PYTHONPATH", "")
if SRC not in _pythonpath.split(os.pathsep):
    os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, _pythonpath) if p))

from certsmooth.config import (
    experiments,
    load_schema,
    load_yaml,
    validate_params,
)  # noqa: E402
from certsmooth.errors import ConfigError  # noqa: E402

# The settings come from params.yaml, or from the files of `--configfile` (merged over it,
# or instead of it with --replace-workflow-config); the checks and their messages name them.
# Their duplicate keys and, for params.yaml, YAML syntax (file, line, column) get one line
# here: Snakemake's own reader keeps the last of two equal keys and says only "not valid
# JSON or YAML" (it reads a --configfile before this file runs, so a syntax error there is
# Snakemake's line; `certsmooth validate <file>` gives its line and column).
_given = [os.path.relpath(p) for p in workflow.config_settings.configfiles]
PARAMS_FILES = [
    *(
        []
        if _given and workflow.config_settings.replace_workflow_config
        else ["params.yaml"]
    ),
    *_given,
]
PARAMS_SOURCE = " + ".join(PARAMS_FILES)  # how error lines name the settings
try:
    for _file in PARAMS_FILES:
        load_yaml(_file)
except ConfigError as _exc:
    raise WorkflowError(str(_exc)) from None


configfile: "params.yaml"


# One-line errors (key, value, what is allowed) before any job starts; defaults are
# filled into `config` in place so every rule sees the complete settings.
try:
    config.update(
        validate_params(
            config,
            load_schema(workflow.source_path("../schemas/params.schema.yaml")),
            source=PARAMS_SOURCE,
        )
    )
except ConfigError as _exc:
    raise WorkflowError(str(_exc)) from None

ENV = "../../envs/certsmooth.yaml"
EXPERIMENTS = {exp.id: exp for exp in experiments(config)}


def lib(command):
    """Library files that `python -m certsmooth <command>` can import: the command's import
    closure, derived from the source (certsmooth.provenance; no module is imported)."""
    from certsmooth.provenance import command_files

    return command_files(command, relative_to=Path(workflow.basedir))


def device(block):
    """A job's device, the ``device`` of its cell's ``block`` (ensemble, cohen, count or the
    attack's bilevel): a resource, so that where a job runs reruns nothing."""

    def of(wildcards):
        cell = attack_cell(wildcards) if block == "bilevel" else experiment(wildcards)
        return cell.device(block)

    return of


def gpus(block):
    """GPUs a job asks for: 1 where its ``block``'s device is CUDA."""
    return lambda wildcards: int(device(block)(wildcards).startswith("cuda"))


def raw_manifest(wildcards):
    """The manifest (raw files' SHA-256) a prepared dataset depends on: of the download,
    or of the user's files; none for embedded data."""
    from certsmooth.data.sources import get_source

    name = wildcards.dataset
    if get_source(name).needs_download or name in config["datasets"]:
        return [f"{config['raw_dir']}/{name}.manifest.json"]
    return []


def user_dataset_files(wildcards):
    """A user dataset's files (so that editing one reruns what read it); none otherwise."""
    from certsmooth.data.sources import get_source

    if wildcards.dataset not in config["datasets"]:
        return []
    return [
        str(p) for p in get_source(wildcards.dataset).raw_files(Path(config["raw_dir"]))
    ]


def user_dataset_flags(wildcards):
    """The `--format ...` flags that describe a user dataset to the command; "" otherwise."""
    spec = config["datasets"].get(wildcards.dataset)
    if spec is None:
        return ""
    import shlex

    size = f" --size {spec['size'][0]} {spec['size'][1]}" if spec["size"] else ""
    path = shlex.quote(spec["path"])
    return (
        f"--format {spec['format']} --path {path} --channels {spec['channels']}{size}"
    )


def experiment(wildcards):
    try:
        return EXPERIMENTS[f"{wildcards.suite}/{wildcards.exp}"]
    except KeyError:
        raise WorkflowError(unknown_cell(wildcards.suite, wildcards.exp)) from None


def unknown_cell(suite, exp):
    """One line for a target path naming no cell of params.yaml: the suite's attacks and
    certifiers as the paths spell them (a grid's cells carry its suffix, e.g. _rate0p01).
    """
    cells = [e for e in EXPERIMENTS.values() if e.suite == suite]
    if not cells:
        return f"results/{suite}/{exp}: params.yaml has no suite {suite!r}; suites: {', '.join(sorted(config['suites']))}"
    attacks = sorted({e.attack_name for e in cells})
    certifiers = sorted({e.certifier_name for e in cells})
    return (
        f"results/{suite}/{exp}: suite {suite} has no cell {exp!r} (<attack>/<certifier>); "
        f"its attacks: {', '.join(attacks)}; its certifiers: {', '.join(certifiers)}"
    )


def prepared(wildcards):
    d = experiment(wildcards).prepared_dir()
    return {"train": f"{d}/train.npz", "test": f"{d}/test.npz"}


def attack_prepared(wildcards):
    d = attack_cell(wildcards).prepared_dir()
    return {"train": f"{d}/train.npz", "test": f"{d}/test.npz"}


def poisoned_dir(wildcards):
    return experiment(wildcards).poisoned_dir()


def cell_path(name):
    """An input function: the cell's output path ``name`` (its certifier record's ``paths``)."""
    return lambda wildcards: experiment(wildcards).paths[name]


def stage_settings(stage):
    """A params function: the settings the cell's certifier's ``stage`` reads, as JSON (the
    record's ``stages``; Snakemake tracks them, so a setting reruns the jobs that read it).
    """
    return lambda wildcards: json.dumps(
        experiment(wildcards).settings(stage), sort_keys=True
    )


def stage_inputs(stage):
    """An input function: the input files of the cell's certifier's ``stage``, by name (its record's ``inputs``)."""
    return lambda wildcards: experiment(wildcards).certifier.inputs(
        experiment(wildcards), stage
    )


def input_flags(**flags):
    """A params function: ``--<flag> <file>`` for each named input the job has (``name="flag"``)."""
    return lambda wildcards, input: " ".join(
        f"--{flag} {input[name]}"
        for name, flag in flags.items()
        if name in input.keys()
    )


def cell_file(folder, name):
    """An output pattern: file ``name`` in a record's ``folder`` pattern below the cell's folder
    (``results/{suite}/{exp}``): the records spell their folders once, for rules and paths alike.
    """
    return f"results/{{suite}}/{{exp}}/{folder}/{name}"


def log_path(rule, stem):
    """The log of a rule's job: ``logs/<rule>/<stem>.log``."""
    return f"logs/{rule}/{stem}.log"


def bench_path(rule, stem):
    """The ``benchmark:`` file of a rule's job (time and peak memory): ``benchmarks/<rule>/<stem>.tsv``."""
    return f"benchmarks/{rule}/{stem}.tsv"


def certify_runs(suite):
    """Certification folders of a suite: each cell's runs (the ensembles one per scope)."""
    return [d for exp in experiments(config, [suite]) for _, d in exp.runs()]


def run_settings(wildcards):
    """The certification runs of a suite as `attack/certifier: model folder / run folder`;
    the folder names record the settings (report captions quote them)."""
    out = []
    for exp in experiments(config, [wildcards.suite]):
        for _, d in exp.runs():
            rest = (
                Path(d).relative_to(exp.results_dir()).parts[1:]
            )  # below certify/ or cohen/
            out.append(f"{exp.name}: {Path(*rest).as_posix()}")
    return "; ".join(out)


def experiment_summaries(wildcards):
    """Every certification summary of one cell (merged into metrics.json)."""
    return [f"{d}/summary.json" for _, d in experiment(wildcards).runs()]


def attack_cell(wildcards):
    """A cell of the attack's row (all of them read the same poisoned set)."""
    for exp in experiments(config, [wildcards.suite]):
        if exp.attack_name == wildcards.attack:
            return exp
    raise WorkflowError(f"suite {wildcards.suite} has no attack {wildcards.attack}")


# A suite's tables and figures (rules plot_curves and plot_attacks), which its target requests;
# metrics/ holds DVC's metrics (one JSON per cell), plots/ DVC's plot data (git-tracked)
SUITE_FILES = {
    "curves": "results/{suite}/figures/certified_accuracy.png",
    "curves_csv": "plots/{suite}/curves.csv",
    "matrix": "results/{suite}/figures/attack_matrix.png",
    "effects": "results/{suite}/figures/attack_effects.png",
    "leaderboard_csv": "results/{suite}/leaderboard.csv",
    "leaderboard_md": "results/{suite}/leaderboard.md",
    "cells": "results/{suite}/cells.csv",
    "matrix_csv": "results/{suite}/matrix.csv",
    "metrics": "metrics/{suite}",
}


# the report's landing page (workflow/report/workflow.rst) shows the tables of the default suites
# built so far (docutils stops at a table whose file is missing); the report reads them after the parse
config["_report_suites"] = [
    s
    for s in config["default_suites"]
    if all(
        Path(SUITE_FILES[f].format(suite=s)).is_file()
        for f in ("matrix_csv", "leaderboard_csv")
    )
]


def suite_targets(suites):
    """Every artifact of the given suites that a user reads: poisoned sets, models,
    per-point certificates, summaries, metrics, figures. Requesting them all (not only the
    last ones) means a deleted, corrupt-and-removed or interrupted output is rebuilt by the
    next plain run, and what follows it reruns (Snakemake does not rebuild a missing
    intermediate file whose consumers are present)."""
    out = []
    rows = {}
    for exp in experiments(config, suites):
        rows.setdefault((exp.suite, exp.attack_name), exp)
        out.append(f"{exp.results_dir()}/metrics.json")
        out += exp.certifier.targets(exp)
        out += [
            f"{d}/{f}"
            for _, d in exp.runs()
            for f in ("clean.csv", "triggered.csv", "summary.json")
        ]
    for exp in rows.values():
        d = exp.poisoned_dir()
        out += [
            f"{d}/{f}"
            for f in (
                "train.npz",
                "test.npz",
                "trigger.npz",
                "poisons.csv",
                "record.json",
            )
        ]
        out.append(f"{exp.attack_dir()}/figures/samples.png")
    for suite in suites:
        out += [path.format(suite=suite) for path in SUITE_FILES.values()]
    return out


def matrix_layout(suite):
    """What plot_attacks needs: the rows (attack settings), the columns (certifier runs),
    the baseline and the excluded pairs with the reason."""
    lay = config["layout"][suite]
    attacks, columns = {}, {}
    for exp in experiments(config, [suite]):
        attacks[exp.attack_name] = exp.attack_settings()
        for col, _ in exp.runs():
            columns.setdefault(exp.certifier_name, [])
            if col not in columns[exp.certifier_name]:
                columns[exp.certifier_name].append(col)
    return {  # lists of pairs: the order of params.yaml survives the JSON of the command line
        "attacks": [[a, attacks[a]] for a in lay["attacks"] if a in attacks],
        "certifiers": [
            [c, {"kind": k, "columns": columns.get(c, [c])}]
            for c, k in lay["certifiers"].items()
        ],
        "baseline": lay["baseline"],
        "excluded": lay["excluded"],
    }


def preflight():
    """One line, before any job starts, for what only this machine can say (folders not
    writable, no CUDA device, raw files placed by hand that are not the dataset's, images that
    do not decode: certsmooth.preflight), judged on the jobs this run is about to start.
    """
    from certsmooth import preflight as pf
    from certsmooth.errors import CertsmoothError

    jobs = list(workflow.dag.needrun_jobs())
    paths = ["checkpoints/."] if jobs else []
    devices, fetch, prepare = {}, set(), set()
    for job in jobs:
        paths += [*job.output, *job.log, *([job.benchmark] if job.benchmark else [])]
        wc = job.wildcards_dict
        if job.rule.name == "fetch_dataset":
            fetch.add(wc["dataset"])
        if job.rule.name == "prepare_dataset" and wc["dataset"] in config["datasets"]:
            prepare.add(wc["dataset"])
        device = str(job.resources.get("device", ""))
        if device.startswith("cuda") and ("exp" in wc or "attack" in wc):
            exp = (
                EXPERIMENTS[f"{wc['suite']}/{wc['exp']}"]
                if "exp" in wc
                else attack_cell(job.wildcards)
            )
            # bilevel_poison (wildcards suite/attack) reads its solver's device only
            block = ".bilevel." if "exp" not in wc else ""
            devices.update(
                {
                    k: v
                    for k, v in exp.device_settings().items()
                    if v == device and block in k
                }
            )
    try:
        pf.check_writable(paths)
        if workflow.local_exec:
            pf.check_cuda(devices, PARAMS_SOURCE)
        pf.check_raw_data(fetch, config["raw_dir"], config["download"])
        pf.check_images(prepare)
    except CertsmoothError as exc:
        raise WorkflowError(str(exc)) from None


# A local run forks its jobs from one warm interpreter (certsmooth.forkserver): `import
# torch` once per run instead of once per job. Jobs on cluster nodes, in conda or
# containers, and runs with CERTSMOOTH_FORKSERVER=off start as plain processes.
onstart:
    preflight()
    if workflow.local_exec:  # Ctrl-C as SIGTERM: the same command finishes the run
        from certsmooth import interrupts

        interrupts.install(workflow.scheduler)
    if workflow.local_exec and not workflow.deployment_settings.deployment_method:
        import atexit
        from certsmooth import forkserver

        _server = forkserver.start(sys.executable, config["torch_threads"])
        if _server is not None:
            os.environ[forkserver.ENV] = _server[1]
            atexit.register(forkserver.stop, *_server)


onerror:
    from certsmooth import interrupts

    if interrupts.explain():
        print(interrupts.explain(), file=sys.stderr)
