"""Provenance: every job reruns when, and only when, something it reads changes.

The library files a rule declares are its command's import closure (certsmooth.provenance);
the params it declares are the settings its command reads (the ``stages`` of its certifier's record); the device
is a job resource. Checked here against what the jobs of the test workflows really
imported, and by the exact job sets a dry run plans after edits and setting changes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from certsmooth import provenance
from conftest import IMPORT_TRACE, REPO, snakemake
from test_workflow import job_counts

RULES = REPO / "workflow" / "rules"


def _rules() -> dict[str, str]:
    """rule name -> its text, from every .smk file."""
    out = {}
    for f in sorted(RULES.glob("*.smk")):
        for block in re.split(r"(?m)^(?=rule )", f.read_text())[1:]:
            out[re.match(r"rule (\w+):", block).group(1)] = block
    return out


def test_every_rule_declares_the_closure_of_the_command_it_runs():
    rules = _rules()
    assert len(rules) >= 16
    commands = provenance.commands()
    for name, text in rules.items():
        ran = set(re.findall(r"python -m certsmooth ([a-z-]+)", text))
        declared = re.findall(r'lib=lib\("([a-z-]+)"\)', text)
        if not ran:
            continue
        assert len(ran) == 1 and declared == list(ran), f"rule {name}: runs {ran}, declares lib({declared})"
        assert declared[0] in commands


def test_the_closure_is_computed_without_importing_torch():
    code = ("import sys, json; from certsmooth import provenance as p; files = p.command_files('train'); "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'files': sorted(files)}))")  # fmt: skip
    out = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert out["torch"] is False
    assert any(f.endswith("smoothing/train.py") for f in out["files"])


@pytest.mark.parametrize(
    "module",
    ["certsmooth.steps.merge_cohen", "certsmooth.metrics", "certsmooth.steps.poison", "certsmooth.steps.prepare",
     "certsmooth.steps.plot_samples", "certsmooth.plots.sigma", "certsmooth.plots.curves", "certsmooth.plots.attacks"],
)  # fmt: skip
def test_light_commands_do_not_import_torch(module):
    """Jobs that only read tables and arrays start without torch (about 2 s of every job)."""
    code = f"import sys, importlib; importlib.import_module({module!r}); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    "module,commands",
    [
        ("certsmooth.attacks.bilevel", {"bilevel-poison"}),
        ("certsmooth.smoothing.ga", {"train-cohen"}),
        ("certsmooth.certificates.cohen", {"certify-cohen"}),
        ("certsmooth.certificates.cohen_merge", {"merge-cohen"}),
        ("certsmooth.plots.sigma", {"plot-sigma"}),
        ("certsmooth.certificates.memory", {"certify"}),  # optimize-sigma no longer reads the ensemble
        ("certsmooth.bench", set()),  # the package: a closure holding any of its modules holds it too
        ("certsmooth.bench.cli", set()),
        ("certsmooth.bench.gpucheck", set()),
    ],
)
def test_a_module_is_in_the_closure_of_exactly_the_commands_that_import_it(module, commands):
    got = {c for c in provenance.commands() if module in provenance.command_modules(c)}
    assert got == commands


def test_closure_follows_relative_and_nested_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "certsmooth"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from . import b\n\ndef f():\n    from certsmooth.c import g\n")
    (pkg / "sub" / "b.py").write_text("import os\n")
    (pkg / "c.py").write_text("from .sub.b import x\n")
    (pkg / "d.py").write_text("")
    monkeypatch.setattr(provenance, "ROOT", pkg)
    provenance._parsed.cache_clear()
    try:
        got = provenance.closure(["certsmooth.sub.a"])
    finally:
        provenance._parsed.cache_clear()
    assert got - {"certsmooth.cli"} == {"certsmooth", "certsmooth.sub", "certsmooth.sub.a", "certsmooth.sub.b",
                                        "certsmooth.c"}  # fmt: skip


def test_jobs_import_only_what_their_rule_declares(built_project):
    """Every certsmooth process of the test workflows (the session's demo and bilevel
    suites at least) loaded only modules of its command's declared closure."""
    traces = [json.loads(p.read_text()) for p in IMPORT_TRACE.glob("*.json")]
    seen: set[str] = set()
    for t in traces:
        command = t["argv"][0] if t["argv"] else None
        if command not in provenance.commands():
            continue  # --help, bench, a bad command line
        seen.add(command)
        extra = set(t["modules"]) - provenance.command_modules(command)
        assert not extra, f"`certsmooth {' '.join(t['argv'][:3])} ...` imported {sorted(extra)}, not declared"
    expected = {"prepare", "poison", "plot-samples", "train", "certify", "metrics", "optimize-sigma", "plot-sigma",
                "train-cohen", "certify-cohen", "merge-cohen", "bilevel-poison", "plot-curves",
                "plot-attacks"}  # fmt: skip
    assert expected <= seen, f"no trace of {sorted(expected - seen)}"


def _dry(project: Path) -> dict[str, int]:
    proc = snakemake(project, "-n", "--cores", "1", "demo", "bilevel")
    out = proc.stdout + proc.stderr
    return {} if "Nothing to be done" in out else job_counts(proc.stdout)


def _edit(project: Path, rel: str) -> None:
    f = project / rel
    f.write_text(f.read_text() + "\n# an edit\n")


def _setting(project: Path, old: str, new: str, count: int = 1) -> None:
    p = project / "params.yaml"
    text = p.read_text()
    assert text.count(old) == count, old
    p.write_text(text.replace(old, new))


SUITES = {"demo": 1, "bilevel": 1}  # the suite target rules


@pytest.mark.parametrize(
    "change,expected",
    [
        (  # only bilevel_poison imports it: the shared poisons, both victims and what follows
            ("edit", "src/certsmooth/attacks/bilevel.py"),
            {"bilevel_poison": 1, "plot_samples": 1, "train_cohen": 2, "certify_cohen_chunk": 2, "merge_cohen": 2,
             "metrics": 2, "plot_curves": 1, "plot_attacks": 1, "bilevel": 1},
        ),
        (  # Cohen et al.'s base-model training: every Cohen model and what follows, no ensemble
            ("edit", "src/certsmooth/smoothing/ga.py"),
            {"train_cohen": 6, "certify_cohen_chunk": 8, "merge_cohen": 6, "metrics": 6, "plot_curves": 2,
             "plot_attacks": 2, **SUITES},
        ),
        (  # Cohen certification only: not the models, not the ensembles' certificates
            ("edit", "src/certsmooth/certificates/cohen.py"),
            {"certify_cohen_chunk": 8, "merge_cohen": 6, "metrics": 6, "plot_curves": 2, "plot_attacks": 2, **SUITES},
        ),
        (  # cohen.n of the demo's Cohen certifier: its two cells' certification, not their training
            ("set", "n: 100, alpha: 0.01, batch: 100, chunks: 2", "n: 200, alpha: 0.01, batch: 100, chunks: 2"),
            {"certify_cohen_chunk": 4, "merge_cohen": 2, "metrics": 2, "plot_curves": 1, "plot_attacks": 1,
             "demo": 1},
        ),
        (("set", "device: cpu", "device: auto", 8), {}),  # where jobs run never changes results
        (  # Cert-SSB's test-point σ ascent: not the pilot, not the ensemble
            ("set", "steps: 3, test_steps: 3", "steps: 3, test_steps: 4"),
            {"optimize_test_sigma": 1, "certify": 2, "metrics": 1, "plot_sigma": 1, "plot_curves": 1,
             "plot_attacks": 1, "demo": 1},
        ),
    ],
    ids=["bilevel.py", "ga.py", "certify-cohen.py", "cohen.n", "device", "sigma_opt.test_steps"],
)  # fmt: skip
def test_an_edit_or_setting_reruns_exactly_what_reads_it(built_project, change, expected):
    project = built_project
    assert _dry(project) == {}
    if change[0] == "edit":
        _edit(project, change[1])
    else:
        _setting(project, *change[1:])
    assert _dry(project) == expected


def _folder(module: str) -> str:
    """The node of the layering graph: a subpackage, or a top-level module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def folder_graph() -> dict[str, set[str]]:
    """Library folder -> the folders its modules import (any import, at any depth)."""
    import ast

    graph: dict[str, set[str]] = {}
    for f in sorted(provenance.ROOT.rglob("*.py")):
        rel = f.relative_to(provenance.ROOT).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        mod = ".".join(["certsmooth", *parts])
        src = _folder(mod)
        deps = provenance._imports(ast.parse(f.read_text()), mod, f.name == "__init__.py")
        graph.setdefault(src, set()).update(_folder(d) for d in deps if d != "certsmooth" and _folder(d) != src)
    return graph


def test_library_folders_import_each_other_without_cycles():
    graph = folder_graph()
    assert {"smoothing", "certificates", "attacks", "models", "data", "plots"} <= set(graph)
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            assert state.get(dep) != 1, f"import cycle between library folders: {' -> '.join([*path, node, dep])}"
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_building_blocks_import_no_algorithm():
    """models, data, noise, lanes, device, artifacts, seeding, errors, logs sit below
    smoothing, certify and attacks."""
    graph = folder_graph()
    low = {"models", "data", "noise", "lanes", "device", "artifacts", "seeding", "errors", "logs"}
    for node in low:
        assert not graph.get(node, set()) & {"smoothing", "certificates", "attacks", "plots", "cli", "config"}, node


def test_parsing_the_workflow_imports_no_torch():
    code = (
        "import sys; from certsmooth.config import validate_params, load_yaml, experiments\n"
        "from certsmooth.provenance import command_files\n"
        "c = validate_params(load_yaml('params.yaml'))\n"
        "for e in experiments(c):\n"
        "    e.poisoned_dir(); e.paths\n"
        "[command_files(x) for x in ('train', 'certify')]\n"
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.split() == [], f"parsing imported {proc.stdout.split()[:5]}"


def test_training_steps_import_no_pandas():
    """pandas' import (~0.3 s) would be paid by every training job, which writes no table."""
    steps = ("train", "train_count", "train_cohen", "optimize_sigma", "bilevel_poison")
    code = f"import sys; import {', '.join('certsmooth.steps.' + s for s in steps)}; print('pandas' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.strip() == "False"


def test_steps_sit_between_the_cli_and_the_algorithms():
    """certsmooth.steps holds every command's step logic: only the CLI calls it (by the
    module names of its COMMANDS), and it calls the algorithms (never the other way round)."""
    graph = folder_graph()
    assert {node for node, deps in graph.items() if "steps" in deps} == set()  # nothing imports a step by name
    steps = set(provenance.commands().values())
    assert steps == {f"certsmooth.steps.{f.stem}" for f in (provenance.ROOT / "steps").glob("*.py")} - {
        "certsmooth.steps.__init__"}  # every step is a command, every command a step
    assert {"attacks", "smoothing", "certificates", "plots", "data"} <= graph["steps"]


def test_every_command_is_parse_then_one_step_call():
    """The command line is generated from each step's signature: no flag is declared by hand,
    and the CLI stays small."""
    import inspect

    from certsmooth import cli

    assert len(inspect.getsource(cli).splitlines()) <= 150
    parser = cli.build_parser()
    for command, module in provenance.commands().items():
        run = __import__(module, fromlist=["run"]).run
        sub = parser._subparsers._group_actions[0].choices[command]
        flags = {a.dest for a in sub._actions} - {"help", "log", "verbose", "threads"}
        assert flags == set(inspect.signature(run).parameters), command
