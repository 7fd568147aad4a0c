# certsmooth workflow: `snakemake --cores all` builds the default suites of params.yaml;
# `snakemake --cores all <suite>` builds one suite. See README.md.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"  # reads and validates params.yaml (configfile)


# the report's landing page: the matrix and the leaderboard of the default suites (`make report`)
report: "workflow/report/workflow.rst"


wildcard_constraints:
    suite=r"[A-Za-z][A-Za-z0-9_]*",
    exp=r"[A-Za-z][A-Za-z0-9_]*/[A-Za-z][A-Za-z0-9_]*",  # a cell: <attack>/<certifier>
    attack=r"[A-Za-z][A-Za-z0-9_]*",
    dataset=r"[A-Za-z0-9_]+",
    classes=r"all|\d+(-\d+)+",
    split=r"official|test[0-9.eE+-]+-seed\d+",
    tag=r"[A-Za-z0-9_.+-]+",
    ttag=r"[A-Za-z0-9_.+-]+",
    otag=r"[A-Za-z0-9_.+-]+",
    thash=r"[0-9a-f]{8}",
    btag=r"bilevel-[A-Za-z0-9_.+-]+",
    ctag=r"(ga|macer|smoothadv)-[A-Za-z0-9_.+-]+",
    crun=r"n0\d+-n\d+-a[0-9.eE+-]+-skip\d+(-c[0-9_]+)?",
    ntag=r"[a-z]+-[A-Za-z0-9_.+-]+",
    nrun=r"certify(-a[0-9.eE+-]+(-pts)?-r\d+)?",
    chunk=r"\d+",
    chunks=r"\d+",
    part=r"\d+",
    parts=r"\d+",
    scope=r"train|joint",
    agg=r"soft|votes",
    alpha=r"[0-9.eE+-]+",


# Every other rule file: data, poisons, one per certifier family, figures (a new family's
# file joins by being there).
for _rules in sorted(Path(workflow.basedir, "workflow", "rules").glob("*.smk")):
    if _rules.name != "common.smk":

        include: _rules


# Cheap or network-bound steps stay on the head node when a cluster executor is used.
localrules:
    all,
    fetch_dataset,
    metrics,
    merge_cohen,
    plot_samples,
    plot_sigma,
    plot_curves,
    plot_attacks,


rule all:
    default_target: True
    input:
        suite_targets(config["default_suites"]),


for _suite in config["suites"]:

    rule:
        name:
            _suite
        input:
            suite_targets([_suite]),


for _target, _suites in config["targets"].items():  # groups of suites, e.g. a paper's

    rule:
        name:
            _target
        input:
            suite_targets(_suites),
