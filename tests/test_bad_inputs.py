"""Bad input, case by case: every one gets exit status 2 and one line on stderr that names
the value and the fix, before any work, and no file appears under data/ or results/.

Settings go through ``certsmooth validate`` (the same validation every workflow run does
first; a few also through Snakemake itself); files through the real commands in their
own processes: truncated, garbage, pickled or mismatched artifacts, missing or changed
raw data, and a full or read-only output folder (a small tmpfs when this user may mount
one, else the same OSError injected where the file system would raise it).
"""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from certsmooth.cli import main
from conftest import REPO, copy_project, snakemake

TEST_PARAMS = yaml.safe_load((REPO / ".test/params.yaml").read_text())
NAN, INF = math.nan, math.inf


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for d in ("data", "results") for p in (root / d).rglob("*") if p.is_file()}


def _set(cfg: dict, dotted: str, value) -> dict:
    cfg = copy.deepcopy(cfg)
    *path, last = dotted.split(".")
    node = cfg
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return cfg


D = "suites.demo"
RAB = f"{D}.certifiers.rab"
SSB = f"{D}.certifiers.ssb"
COHEN = f"{D}.certifiers.cohen"
ONE = f"{D}.attacks.onepixel"
FA = "suites.count.certifiers.fa"
# (case, settings after the change, what the line must say: the value's key and the fix)
CONFIG_CASES = [
    ("sigma NaN", _set(TEST_PARAMS, f"{RAB}.sigma", NAN), [f"{RAB}.sigma = nan", "finite"]),
    ("sigma inf", _set(TEST_PARAMS, f"{RAB}.sigma", INF), [f"{RAB}.sigma = inf", "finite"]),
    ("sigma negative", _set(TEST_PARAMS, f"{RAB}.sigma", -1.0), ["rab.sigma = -1.0", "must be > 0"]),
    ("sigma 1e9", _set(TEST_PARAMS, f"{RAB}.sigma", 1e9), ["rab.sigma = 1000000000.0", "<= 10"]),
    ("lr NaN", _set(TEST_PARAMS, f"{RAB}.ensemble.lr", NAN), [f"{RAB}.ensemble.lr = nan", "finite"]),
    ("lr 5", _set(TEST_PARAMS, f"{RAB}.ensemble.lr", 5.0), ["ensemble.lr = 5.0", "<= 1"]),
    ("alpha NaN", _set(TEST_PARAMS, f"{RAB}.certify.alpha", NAN), [f"{RAB}.certify.alpha = nan", "finite"]),
    ("alpha 0.7", _set(TEST_PARAMS, f"{RAB}.certify.alpha", 0.7), ["certify.alpha = 0.7", "< 0.5"]),
    ("alpha 0", _set(TEST_PARAMS, f"{RAB}.certify.alpha", 0), ["certify.alpha = 0", "> 0"]),
    ("cohen alpha NaN", _set(TEST_PARAMS, f"{COHEN}.cohen.alpha", NAN), [f"{COHEN}.cohen.alpha = nan", "finite"]),
    ("delta NaN", _set(TEST_PARAMS, f"{ONE}.trigger.delta", NAN), ["onepixel.trigger.delta = nan", "finite"]),
    ("radius inf", _set(TEST_PARAMS, f"{RAB}.certify.radii", [0, INF]), ["certify.radii.1 = inf", "finite"]),
    ("radius negative", _set(TEST_PARAMS, f"{RAB}.certify.radii", [-0.5]), ["certify.radii.0 = -0.5", ">= 0"]),
    ("test_fraction NaN", _set(TEST_PARAMS, f"{D}.dataset.split", {"test_fraction": NAN, "seed": 0}),
     ["split.test_fraction = nan", "finite"]),
    ("test_fraction 1.5", _set(TEST_PARAMS, f"{D}.dataset.split", {"test_fraction": 1.5, "seed": 0}),
     ["test_fraction = 1.5", "must be"]),
    ("rate 1.5", _set(TEST_PARAMS, f"{ONE}.rate", 1.5), ["onepixel.rate = 1.5", "must be < 1"]),
    ("unknown top-level key", _set(TEST_PARAMS, "raw_dri", "x"), ["unknown key 'raw_dri'", "allowed keys"]),
    ("unknown dataset", _set(TEST_PARAMS, f"{D}.dataset.name", "imagenet"), ["imagenet", "mnist5k"]),
    ("unknown trigger", _set(TEST_PARAMS, f"{ONE}.trigger.name", "sevenpixel"), ["sevenpixel", "onepixel"]),
    ("unknown attack kind", _set(TEST_PARAMS, f"{ONE}.kind", "flip"), ["onepixel.kind = 'flip'", "backdoor"]),
    ("unknown certifier kind", _set(TEST_PARAMS, f"{RAB}.kind", "ssdpa"),
     ["rab.kind = 'ssdpa'", "rab, certssb, cohen, dpa, fa, bagging"]),
    ("unknown arch", _set(TEST_PARAMS, f"{RAB}.ensemble.arch", "vgg16"), ["ensemble.arch = 'vgg16'", "mnist_cnn"]),
    ("count d = 0", _set(TEST_PARAMS, f"{FA}.count.d", 0), ["fa.count.d = 0", ">= 1"]),
    ("count jobs beyond lanes", _set(TEST_PARAMS, f"{FA}.count.jobs", 5),
     ["fa.count.jobs = 5", "number of lanes"]),
    # the test suite's mnist5k 1 vs 0 split at 0.5 keeps 500 training images
    ("dpa k beyond the training set", _set(TEST_PARAMS, "suites.count.certifiers.dpa.count.k", 501),
     ["suites.count.certifiers.dpa.count.k = 501", "500 training samples", "k ≤ 500"]),
    ("fa k·d beyond the training set", _set(TEST_PARAMS, f"{FA}.count.d", 200),
     [f"{FA}.count.k = 3, d = 200", "k·d = 600", "k·d ≤ 500"]),
    ("bagging k beyond the training set", _set(TEST_PARAMS, "suites.count.certifiers.bagging.count.k", 10_000),
     ["bagging.count.k = 10000", "samples per subsample", "k ≤ 500"]),
    ("device gpu", _set(TEST_PARAMS, f"{RAB}.ensemble.device", "gpu"), ["ensemble.device = 'gpu'", "must match"]),
    ("no models", _set(TEST_PARAMS, f"{RAB}.ensemble.models", 0), ["ensemble.models = 0", ">= 1"]),
    ("votes ensemble too small at its per-side alpha",
     _set(_set(TEST_PARAMS, f"{RAB}.ensemble.models", 10), f"{RAB}.certify.alpha", 0.001),
     ["ensemble.models = 10 cannot certify", "at least 11 models"]),
    ("soft ensemble too small at its per-side alpha",
     _set(_set(_set(TEST_PARAMS, f"{RAB}.ensemble.models", 15), f"{RAB}.certify.alpha", 0.001),
          f"{RAB}.certify.aggregation", "soft"), ["ensemble.models = 15 cannot certify", "at least 16 models"]),
    ("more jobs than lanes", _set(TEST_PARAMS, f"{RAB}.ensemble.jobs", 9),
     ["jobs = 9", "between 1 and"]),
    ("target out of range", _set(TEST_PARAMS, f"{ONE}.target", 3), ["attacks.onepixel.target = 3", "0..1"]),
    ("unknown default suite", _set(TEST_PARAMS, "default_suites", ["paper"]), ["default_suites lists 'paper'", "demo"]),
    ("baseline not an attack of kind none", _set(TEST_PARAMS, "suites.bilevel.baseline", "poisoned"),
     ["bilevel.baseline = 'poisoned'", "of kind none"]),
    ("exclude names no certifier", _set(TEST_PARAMS, f"{D}.exclude", [{"attack": "onepixel", "certifier": "dpa",
     "why": "x"}]), ["('onepixel', 'dpa') is not an (attack, certifier) of the suite"]),  # fmt: skip
    ("ensemble too small for Hoeffding", _set(TEST_PARAMS, "suites.tiny.certifiers.rab.certify.aggregation", "soft"),
     ["suites.tiny.certifiers.rab.ensemble.models = 4", "Hoeffding half-width", "use at least 5 models"]),
    ("a reserved name", _set(TEST_PARAMS, f"{D}.attacks.figures", {"kind": "none"}),
     ["attacks.figures: the name 'figures' is reserved", "rename it"]),
    ("a block of another certifier", _set(TEST_PARAMS, f"{COHEN}.certify", {"alpha": 0.1}),
     ["certifiers.cohen.certify is not used by kind 'cohen'", "remove it"]),
    ("bilevel sigma unset", _set(TEST_PARAMS, "suites.bilevel.attacks.poisoned.bilevel.sigma", None),
     ["attacks.poisoned.bilevel.sigma is not set", "give the σ"]),
    ("keep_trigger on an attack without trigger",
     _set(TEST_PARAMS, "suites.bilevel.attacks.poisoned.bilevel.keep_trigger", True),
     ["attacks.poisoned.bilevel.keep_trigger = true", "kind bilevel has no trigger", "remove it"]),
    ("grid key of no entry", _set(TEST_PARAMS, f"{D}.grid", {"certifiers.dpa.sigma": [1]}),
     ["grid.certifiers.dpa.sigma: suite 'demo' has no certifier named 'dpa'"]),
    ("grid values not a list", _set(TEST_PARAMS, f"{D}.grid", {"certifiers.rab.sigma": 0.5}),
     ["grid.certifiers.rab.sigma = 0.5", "non-empty list"]),
    ("sigma bounds reversed", _set(TEST_PARAMS, f"{SSB}.sigma_opt.sigma_min", 0.6), ["sigma_min = 0.6", "ordered"]),
    ("torch_threads 0", _set(TEST_PARAMS, "torch_threads", 0), ["torch_threads = 0", ">= 1"]),
    ("epochs 0", _set(TEST_PARAMS, f"{RAB}.ensemble.epochs", 0), ["ensemble.epochs = 0", ">= 1"]),
    ("class name unknown", _set(TEST_PARAMS, f"{D}.dataset.classes", ["one", "zero"]), ["one", "classes"]),
    ("cohen classes out of range", _set(TEST_PARAMS, "suites.bilevel.certifiers.ga.cohen.classes", [5]),
     ["cohen.classes = [5]", "0..1"]),
    ("n0 zero", _set(TEST_PARAMS, f"{COHEN}.cohen.n0", 0), ["cohen.n0 = 0", ">= 1"]),
    ("missing attacks", _set(TEST_PARAMS, f"{D}.attacks", KeyError), ["missing the key 'attacks'", "add it"]),
    ("split official for mnist5k", _set(TEST_PARAMS, f"{D}.dataset.split", "official"),
     ["split = 'official'", "test_fraction"]),
    ("target naming no suite", _set(TEST_PARAMS, "targets", {"paper": ["demo", "nope"]}),
     ["targets.paper: names no suite 'nope'"]),
    # known before the data is read: poison counts, CERTIFY jobs, names Snakemake gives rules, seeds
    ("rate beyond the non-target images", _set(TEST_PARAMS, f"{ONE}.rate", 0.999),
     [f"{ONE}.rate = 0.999 asks for 499 poisons", "only 250 of the 500 training images", "at most 0.5"]),
    ("rate that poisons nothing", _set(TEST_PARAMS, f"{ONE}.rate", 0.0001),
     [f"{ONE}.rate = 0.0001 poisons ⌊500·0.0001⌋ = 0", "at least 0.002"]),
    ("cohen chunks beyond the test points", _set(_set(TEST_PARAMS, f"{COHEN}.cohen.chunks", 8), f"{COHEN}.cohen.skip",
     100), [f"{COHEN}.cohen.chunks = 8 exceeds the 5 test points", "use at most 5 chunks"]),
    ("cohen chunks 5000", _set(TEST_PARAMS, f"{COHEN}.cohen.chunks", 5000),
     [f"{COHEN}.cohen.chunks = 5000 exceeds the 50 test points", "every 10-th of the 500 test images"]),
    ("seed beyond 2^63", _set(TEST_PARAMS, f"{D}.seed", 99999999999999999999999),
     [f"{D}.seed = 99999999999999999999999", "must be <= 9223372036854775807"]),
    ("a suite named like a rule", {**TEST_PARAMS, "suites": {**TEST_PARAMS["suites"], "poison":
     TEST_PARAMS["suites"]["tiny"]}}, ["suites.poison: 'poison' is the name of a rule", "rename it"]),
    ("a suite named metrics", {**TEST_PARAMS, "suites": {**TEST_PARAMS["suites"], "metrics":
     TEST_PARAMS["suites"]["tiny"]}}, ["suites.metrics: 'metrics' is the name of a rule", "rename it"]),
    ("a target named all", _set(TEST_PARAMS, "targets", {"all": ["demo"]}),
     ["targets.all: 'all' is the name of a rule", "rename it"]),
]  # fmt: skip
TEXT_CASES = [
    ("YAML syntax error", "suites:\n  demo: [oops\n", ["invalid YAML at line 3, column 1", "fix the syntax"]),
    ("duplicate key", "raw_dir: a\nraw_dir: b\nsuites: {}\n",
     ["line 2, column 1: duplicate key 'raw_dir' (also at line 1)", "fix the syntax"]),
    ("not a mapping", "- a\n- b\n", ["expected a mapping at the top level"]),
]  # fmt: skip


def _one_line(err: str, expected: list[str]) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, err
    for part in expected:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@pytest.mark.parametrize("case,cfg,expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_setting(case, cfg, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert main(["validate", "params.yaml"]) == 2
    line = _one_line(capsys.readouterr().err, expected)
    assert line.startswith("certsmooth: error: params.yaml: ")
    assert _files(tmp_path) == set()


@pytest.mark.parametrize("case,text,expected", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_bad_params_file(case, text, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(text)
    assert main(["validate", "params.yaml"]) == 2
    _one_line(capsys.readouterr().err, expected)
    assert _files(tmp_path) == set()


def test_a_user_dataset_of_one_class(tmp_path, capsys, monkeypatch):
    """A user .npz whose labels hold one class: one line naming the file (it used to end in a
    traceback from the confidence bounds, 'num_classes = 1')."""
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "one.npz", x_train=np.zeros((20, 1, 28, 28), np.uint8), y_train=np.zeros(20, np.int64))
    cfg = {**TEST_PARAMS, "datasets": {"one": {"format": "npz", "path": "one.npz"}}}
    cfg = _set(cfg, "suites.tiny.dataset", {"name": "one", "classes": None, "split": {"test_fraction": 0.5, "seed": 0}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert main(["validate", "params.yaml"]) == 2
    _one_line(capsys.readouterr().err, ["datasets.one.path = 'one.npz'", "1 class", "at least two"])


@pytest.mark.parametrize(
    "case,included,expected",
    [("an included file that is missing", None, ["more.yaml: file not found"]),
     ("a suite in two files", {"suites": {"tiny": TEST_PARAMS["suites"]["tiny"]}},
      ["more.yaml: suites.tiny is also a suite of params.yaml", "give each suite one name"]),
     ("a setting that is not a suite", {"suites": {}, "torch_threads": 2},
      ["more.yaml: 'torch_threads': an included file holds suites", "move it to params.yaml"]),
     ("a bad value in an included suite",
      {"suites": {"extra": _set(TEST_PARAMS, "suites.tiny.seed", -1)["suites"]["tiny"]}},
      ["more.yaml: suites.extra.seed = -1 is not allowed"])],
)  # fmt: skip
def test_included_suite_files(case, included, expected, tmp_path, capsys, monkeypatch):
    """`include:` merges the suites of more files; its errors name the file they are in."""
    monkeypatch.chdir(tmp_path)
    if included is not None:
        (tmp_path / "more.yaml").write_text(yaml.safe_dump(included, sort_keys=False))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**TEST_PARAMS, "include": ["more.yaml"]}, sort_keys=False))
    assert main(["validate", "params.yaml"]) == 2
    _one_line(capsys.readouterr().err, expected)


def test_missing_params_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "nope.yaml"]) == 2
    _one_line(capsys.readouterr().err, ["nope.yaml: file not found", "pass an existing params file"])


@pytest.mark.workflow
@pytest.mark.parametrize(
    "case,text,expected",
    [("YAML syntax error", "suites:\n  demo: [oops\n", "params.yaml: invalid YAML at line 3, column 1"),
     ("duplicate key", "raw_dir: a\nraw_dir: b\nsuites: {}\n", "duplicate key 'raw_dir' (also at line 1)"),
     ("sigma NaN", None, f"params.yaml: {RAB}.sigma = nan is not allowed: numbers must be finite")],
)  # fmt: skip
def test_every_workflow_run_refuses_bad_params_first(tmp_path, case, text, expected):
    project = copy_project(tmp_path / "p")
    if text is None:
        text = yaml.safe_dump(_set(TEST_PARAMS, f"{RAB}.sigma", NAN), sort_keys=False)
    (project / "params.yaml").write_text(text)
    proc = snakemake(project, "--cores", "1", check=False)
    assert proc.returncode != 0 and expected in proc.stderr, proc.stderr[-2000:]
    assert _files(project) == set()


def _refused_before_any_job(project: Path, args: list[str], expected: list[str]) -> str:
    """A real run (not a dry run) that must stop with the expected line before any job ran."""
    before = _files(project)
    proc = snakemake(project, "--cores", "1", *args, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    line = next((x for x in text.splitlines() if expected[0] in x), None)
    assert line is not None, text[-3000:]
    for part in expected[1:]:
        assert part in line, (part, line)
    assert "Traceback" not in text and "Finished jobid" not in text, text[-3000:]
    assert _files(project) == before, "no job ran: no new file under data/ or results/"
    return line


@pytest.mark.workflow
def test_another_params_file_is_checked_by_its_own_name(tmp_path):
    """`--configfile other.yaml --replace-workflow-config`: the checks read other.yaml, not
    params.yaml: a duplicate key in it is refused with its line, a schema error names it."""
    project = copy_project(tmp_path / "p")
    text = (project / "params.yaml").read_text()
    (project / "other.yaml").write_text(text + "torch_threads: 2\n")  # a second torch_threads
    args = ["--configfile", "other.yaml", "--replace-workflow-config", "-n"]

    def refused(*extra: str) -> str:
        proc = snakemake(project, "--cores", "1", *extra, check=False)
        assert proc.returncode != 0, proc.stdout[-2000:]
        return proc.stdout + proc.stderr

    text = refused(*args)
    assert "other.yaml: invalid YAML at line" in text and "duplicate key 'torch_threads' (also at line" in text, text
    (project / "other.yaml").write_text(yaml.safe_dump(_set(TEST_PARAMS, f"{RAB}.sigma", -1.0), sort_keys=False))
    assert f"\nother.yaml: {RAB}.sigma = -1.0 is not allowed" in refused(*args)
    assert f"params.yaml + other.yaml: {RAB}.sigma = -1.0" in refused("--configfile", "other.yaml", "-n")  # merged


@pytest.mark.workflow
def test_read_only_results_folder_is_named_before_any_job(tmp_path):
    project = copy_project(tmp_path / "p")
    results = project / "results"
    mounted = _mount_tmpfs(results, "ro,size=64k")
    if not mounted:
        results.chmod(0o555)  # a user who cannot mount: a folder without write permission
    try:
        assert _refused_before_any_job(project, ["tiny"], ["results/ is not writable (", "make it writable"])
    finally:
        subprocess.run(["umount", str(results)], check=False) if mounted else results.chmod(0o755)


@pytest.mark.workflow
def test_cuda_without_a_gpu_is_named_before_any_job(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: device cuda is valid here")
    project = copy_project(tmp_path / "p")
    cfg = _set(TEST_PARAMS, "suites.tiny.certifiers.rab.ensemble.device", "cuda")
    (project / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    expected = ["params.yaml: suites.tiny.certifiers.rab.ensemble.device = 'cuda'", "no CUDA device",
                "use device: auto"]
    assert _refused_before_any_job(project, ["tiny"], expected)


@pytest.mark.workflow
def test_corrupt_raw_files_placed_by_hand_are_named_before_any_job(tmp_path):
    """`download: false` and MNIST's files placed by hand, one of them with a wrong header:
    one line naming the folder and the fix (it used to be torchvision's bare AssertionError)."""
    from test_torchvision_sources import write_idx

    project = copy_project(tmp_path / "p")
    write_idx(project / "data/raw", "MNIST", n=(40, 20))
    images = project / "data/raw/MNIST/raw/train-images-idx3-ubyte"
    images.write_bytes(b"\x00\x00\x08\x09" + images.read_bytes()[4:])  # not an idx3 file
    cfg = _set(TEST_PARAMS, "suites.tiny.dataset", {"name": "mnist", "classes": [1, 0], "split": "official"})
    (project / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    expected = ["dataset 'mnist': the raw files under data/raw are not torchvision's MNIST files",
                "certsmooth download mnist"]
    assert _refused_before_any_job(project, ["tiny"], expected)


@pytest.mark.workflow
def test_an_image_that_does_not_decode_is_named_before_any_job(tmp_path):
    from PIL import Image

    project = copy_project(tmp_path / "p")
    for label in ("a", "b"):
        for i in range(6):
            folder = project / "images" / label
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("L", (28, 28), 40 * i).save(folder / f"{i}.png")
    broken = project / "images/b/3.png"
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated PNG
    cfg = {**TEST_PARAMS, "datasets": {"mine": {"format": "imagefolder", "path": "images", "channels": 1}}}
    cfg = _set(cfg, "suites.tiny.dataset", {"name": "mine", "classes": None, "split": {"test_fraction": 0.5,
                                                                                       "seed": 0}})  # fmt: skip
    (project / "params.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert _refused_before_any_job(project, ["tiny"], ["images/b/3.png: not a readable image", "fix or remove it"])


def test_unknown_target_cell_names_the_suites_cells(tmp_path):
    project = copy_project(tmp_path / "p")
    proc = snakemake(project, "-n", "--cores", "1", "results/demo/nosuch/rab/metrics.json", check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    text = proc.stdout + proc.stderr  # Snakemake prints a DAG error on stdout
    line = next(ln for ln in text.splitlines() if "results/demo/nosuch/rab:" in ln)
    assert "suite demo has no cell 'nosuch/rab'" in line and "its attacks: " in line and "onepixel" in line, line
    assert "its certifiers: " in line and "rab" in line.split("its certifiers: ")[1], line
    assert "KeyError" not in text, text[-2000:]
    proc = snakemake(project, "-n", "--cores", "1", "results/nosuite/a/b/metrics.json", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "params.yaml has no suite 'nosuite'; suites: " in text, text[-2000:]
    assert _files(project) == set()


# -- files ------------------------------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "certsmooth", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """Real prepared and poisoned data and a trained Cohen model (mnist5k 1-vs-0, 1 epoch)."""
    root = tmp_path_factory.mktemp("artifacts")
    prep = "data/prepared/mnist5k/1-0/test0.5-seed3"
    steps = [
        ["prepare", "--dataset", "mnist5k", "--classes", "1-0", "--split", "test0.5-seed3", "--out-dir", prep],
        ["poison", "--train", f"{prep}/train.npz", "--test", f"{prep}/test.npz", "--seed", "1", "--experiment",
         "t/e", "--out-dir", "data/poisoned/t", "--attack",
         json.dumps({"kind": "backdoor", "trigger": {"name": "onepixel", "delta": 0.5}, "rate": 0.01, "target": 0})],
        ["train-cohen", "--train", "data/poisoned/t/train.npz", "--sigma", "0.5", "--seed", "1", "--experiment", "t/e",
         "--device", "cpu", "--out", "results/m/model.safetensors", "--manifest", "results/m/model.json", "--cohen",
         json.dumps({"arch": "mnist_cnn", "epochs": 1, "batch_size": 100, "lr": 0.001, "train_method": "ga"})],
    ]  # fmt: skip
    for step in steps:
        proc = _cli(*step, cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


COHEN = json.dumps({"arch": "mnist_cnn", "n0": 10, "n": 20, "alpha": 0.01, "batch": 20, "skip": 50, "classes": None})


def _certify_cohen(root: Path, weights: str, manifest: str) -> list[str]:
    return ["certify-cohen", "--weights", weights, "--manifest", manifest, "--clean-test",
            "data/prepared/mnist5k/1-0/test0.5-seed3/test.npz", "--triggered-test", "data/poisoned/t/test.npz",
            "--cohen", COHEN, "--sigma", "0.5", "--seed", "1", "--chunk", "0", "--chunks", "1", "--device", "cpu",
            "--out", "results/out/chunk.csv"]  # fmt: skip


def _copy_model(root: Path, tmp: Path) -> tuple[Path, Path]:
    import shutil

    w, m = tmp / "results/m2/model.safetensors", tmp / "results/m2/model.json"
    w.parent.mkdir(parents=True)
    shutil.copy2(root / "results/m/model.safetensors", w)
    shutil.copy2(root / "results/m/model.json", m)
    return w, m


def _damage_truncated_npz(root, tmp):
    p = tmp / "data/bad/train.npz"
    p.parent.mkdir(parents=True)
    p.write_bytes((root / "data/poisoned/t/train.npz").read_bytes()[:5000])
    return ["poison", "--train", str(p), "--test", str(root / "data/poisoned/t/test.npz"), "--seed", "1",
            "--experiment", "t/e", "--out-dir", str(tmp / "data/out"), "--attack",
            json.dumps({"kind": "none"})], [str(p), "unreadable .npz", "delete"]  # fmt: skip


def _damage_garbage_weights(root, tmp):
    w, m = _copy_model(root, tmp)
    w.write_bytes(np.random.default_rng(0).bytes(w.stat().st_size))
    return _certify_cohen(root, str(w), str(m)), [f"{w}: not a readable safetensors file", f"delete {w} and {m}"]


def _damage_pickled_weights(root, tmp):
    w, m = _copy_model(root, tmp)
    w.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    return _certify_cohen(root, str(w), str(m)), [f"{w}: not a readable safetensors file", "rerun the workflow"]


def _damage_edited_manifest(root, tmp):
    w, m = _copy_model(root, tmp)
    man = json.loads(m.read_text())
    man["seed"] = 7
    m.write_text(json.dumps(man))
    return _certify_cohen(root, str(w), str(m)), [f"{m} (manifest of {w}): trained with seed = 7", "delete"]


def _damage_swapped_weights(root, tmp):
    w, m = _copy_model(root, tmp)  # a valid safetensors file that is not the one the manifest describes
    from safetensors.torch import load_file, save_file

    t = load_file(str(w))
    t[next(iter(t))] = t[next(iter(t))] * 2
    save_file(t, str(w))
    return _certify_cohen(root, str(w), str(m)), [f"{w} does not match its manifest {m}", "delete"]


def _damage_invalid_manifest(root, tmp):
    w, m = _copy_model(root, tmp)
    m.write_text("{not json")
    return _certify_cohen(root, str(w), str(m)), [f"{m}: invalid JSON", "delete it and rerun"]


def _damage_missing_input(root, tmp):
    return ["poison", "--train", str(tmp / "data/none/train.npz"), "--test", str(tmp / "data/none/test.npz"),
            "--seed", "1", "--experiment", "t/e", "--out-dir", str(tmp / "data/out"), "--attack",
            json.dumps({"kind": "none"})], ["train.npz: file not found", "rerun the workflow step"]  # fmt: skip


def _damage_bad_attack_json(root, tmp):
    return ["poison", "--train", str(root / "data/poisoned/t/train.npz"), "--test",
            str(root / "data/poisoned/t/test.npz"), "--seed", "1", "--experiment", "t/e", "--out-dir",
            str(tmp / "data/out"), "--attack", "{kind: none"], ["--attack '{kind: none'", "not valid JSON"]  # fmt: skip


def _damage_offline_download(root, tmp):
    return ["download", "mnist", "--raw-dir", str(tmp / "data/raw"), "--offline"], [
        "dataset 'mnist': raw files missing", f"certsmooth download mnist --raw-dir {tmp / 'data/raw'}"]  # fmt: skip


def _damage_changed_raw_file(root, tmp):
    from test_torchvision_sources import write_idx

    raw = tmp / "data/raw"
    write_idx(raw, "MNIST")
    proc = _cli("download", "mnist", "--raw-dir", str(raw), "--offline", "--manifest", str(raw / "m.json"), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    images = raw / "MNIST/raw/train-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[100] ^= 0xFF  # one pixel changed after the manifest was written
    images.write_bytes(bytes(data))
    return ["prepare", "--dataset", "mnist", "--classes", "1-0", "--split", "official", "--raw-dir", str(raw),
            "--manifest", str(raw / "m.json"), "--out-dir", str(tmp / "data/prepared/x")], [
        f"{raw}: the raw files of mnist differ from those recorded in {raw / 'm.json'}",
        "certsmooth download mnist"]  # fmt: skip


FILE_CASES = {
    "truncated npz": _damage_truncated_npz,
    "garbage safetensors": _damage_garbage_weights,
    "pickle instead of safetensors": _damage_pickled_weights,
    "edited manifest": _damage_edited_manifest,
    "weights swapped under the manifest": _damage_swapped_weights,
    "manifest not JSON": _damage_invalid_manifest,
    "missing input": _damage_missing_input,
    "attack not JSON": _damage_bad_attack_json,
    "raw data missing offline": _damage_offline_download,
    "raw file changed after its manifest": _damage_changed_raw_file,
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_bad_file(case, artifacts, tmp_path):
    args, expected = FILE_CASES[case](artifacts, tmp_path)
    before = _files(tmp_path)
    proc = _cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _one_line(proc.stderr, expected)
    assert line.startswith("certsmooth: error: ")
    assert _files(tmp_path) == before, "no new file under data/ or results/"


# -- full and read-only file systems ---------------------------------------------------------------------------


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_full_or_read_only_output_folder(kind, artifacts, tmp_path, capsys, monkeypatch):
    """`certsmooth prepare` into a 64 KiB tmpfs (the prepared set is ~1 MB) or a read-only
    one; where this user cannot mount, the OSError is injected where the write happens."""
    out = tmp_path / "data/prepared/x"
    mounted = _mount_tmpfs(out, "size=64k" if kind == "full" else "ro,size=64k")
    args = ["prepare", "--dataset", "mnist5k", "--classes", "1-0", "--split", "test0.5-seed3", "--out-dir", str(out)]
    code = errno.ENOSPC if kind == "full" else errno.EROFS
    try:
        if mounted:
            proc = _cli(*args, cwd=tmp_path)
            rc, err = proc.returncode, proc.stderr
        else:
            import certsmooth.artifacts as art

            real = art.tempfile.mkstemp

            def refuse(*a, **k):
                fd, name = real(*a, **k)
                os.close(fd)
                os.unlink(name)
                raise OSError(code, os.strerror(code), name)

            monkeypatch.setattr(art.tempfile, "mkstemp", refuse)
            rc, err = main(args), capsys.readouterr().err
        assert rc == 2, err
        why = "No space left on device" if kind == "full" else "Read-only file system"
        line = _one_line(err, [f"cannot write {out}/", why])
        assert ("free space" in line) if kind == "full" else ("writable" in line)
        assert not [p for p in out.rglob("*") if p.is_file()], "no partial file is left"
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=False)


def test_full_disk_while_writing_weights(artifacts, tmp_path, capsys, monkeypatch):
    """A model's weights onto a 64 KiB tmpfs (a full disk): one line naming the weights file
    and the fix, not safetensors' 'No space left on device (os error 28)' traceback; neither
    the weights nor the manifest is left behind."""
    out = tmp_path / "results/m3"
    mounted = _mount_tmpfs(out, "size=64k")
    cohen = json.dumps({"arch": "mnist_cnn", "epochs": 1, "batch_size": 100, "lr": 0.001, "train_method": "ga"})
    args = ["train-cohen", "--train", str(artifacts / "data/poisoned/t/train.npz"), "--sigma", "0.5", "--seed", "1",
            "--experiment", "t/e", "--device", "cpu", "--out", str(out / "model.safetensors"), "--manifest",
            str(out / "model.json"), "--log", str(tmp_path / "train.log"), "--cohen", cohen]  # fmt: skip
    try:
        if mounted:
            proc = _cli(*args, cwd=tmp_path)
            rc, err = proc.returncode, proc.stderr
        else:  # the OSError where the file system would raise it: the weights' write
            import certsmooth.artifacts as art

            real_open = open

            def full(path, mode="r", *a, **k):
                if "w" in mode and str(path).endswith(".tmp") and "model.safetensors" in str(path):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_open(path, mode, *a, **k)

            monkeypatch.setattr(art, "open", full, raising=False)
            rc, err = main(args), capsys.readouterr().err
        assert rc == 2, err
        line = _one_line(err, [f"cannot write {out}/model.safetensors", "No space left on device", "free space"])
        assert "os error" not in line and "Traceback" not in err
        assert not [p for p in out.rglob("*") if p.is_file()], "no partial file is left"
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=False)


@pytest.mark.parametrize("value", [NAN, INF, -1.0, 0.0])
def test_library_entry_points_refuse_non_finite_or_non_positive_values(value):
    from certsmooth.certificates.cohen import CohenConfig
    from certsmooth.errors import ConfigError
    from certsmooth.smoothing.ga import GAConfig
    from certsmooth.smoothing.train import TrainConfig

    for make in (lambda: TrainConfig("mnist_cnn", value, 1, 10, 1e-3, 2), lambda: TrainConfig("mnist_cnn", 1, 1, 10,
                 value, 2), lambda: GAConfig("mnist_cnn", value, 1, 10, 1e-3)):  # fmt: skip
        with pytest.raises(ConfigError, match="must be a finite number > 0"):
            make()
    with pytest.raises(ValueError):
        CohenConfig(sigma=value)
