"""The GPU check (bench/gpu.sh, certsmooth.bench.gpucheck): its CPU mode end to end, so that it
works the day a GPU machine comes, and its parts (wheel list, tree comparison)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from certsmooth.bench import gpucheck

REPO = Path(__file__).resolve().parents[1]


def test_wheel_list_is_the_closure_minus_the_gpu_image():
    reqs = gpucheck.wheel_requirements()
    names = {r.split("==")[0].lower().replace("_", "-") for r in reqs}
    assert all("==" in r for r in reqs)
    assert f"snakemake=={version('snakemake')}" in reqs and f"mlxtend=={version('mlxtend')}" in reqs
    assert {"jsonschema", "referencing", "rpds-py", "snakemake-interface-common", "yte"} <= names
    # what the GPU image has, and mlxtend's own dependencies (only its CSV is read), stay out
    assert not names & {"torch", "numpy", "scipy", "pandas", "matplotlib", "pyyaml", "scikit-learn", "psutil"}


def test_install_takes_only_the_missing_wheels(tmp_path):
    for name in ("snakemake-9.0.0-py3-none-any.whl", "certsmooth_no_such_dist-1.0-py3-none-any.whl"):
        (tmp_path / name).write_bytes(b"")
    todo, have = gpucheck.missing_wheels(tmp_path)
    assert [w.name for w in todo] == ["certsmooth_no_such_dist-1.0-py3-none-any.whl"] and have == ["snakemake"]


def test_compare_trees_reports_how_much_files_differ(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, bump in ((a, 0.0), (b, 1e-6)):
        (root / "results").mkdir(parents=True)
        (root / "results/points.csv").write_text(f"idx,p_a,label\n0,{0.5 + bump},1\n1,0.25,0\n")
        (root / "results/summary.json").write_text(json.dumps({"acc": 0.9 + bump, "n": 2, "dev": str(bump)}))
        save_file({"w": torch.full((3,), 1.0 + bump)}, str(root / "results/m.safetensors"))
        (root / "results/same.txt").write_text("x")
    (a / "results/only_a.txt").write_text("a")
    out = gpucheck.compare_trees(a, b, ["results"])
    assert out["only_in_first"] == ["results/only_a.txt"] and out["identical"] == ["results/same.txt"]
    d = out["differing"]
    assert d["results/points.csv"]["columns_differing"]["p_a"]["cells_differing"] == 1
    assert d["results/points.csv"]["columns_differing"]["p_a"]["max_abs_diff"] == pytest.approx(1e-6)
    assert "label" not in d["results/points.csv"]["columns_differing"]
    assert d["results/summary.json"]["keys_differing"] == ["acc", "dev"]
    assert d["results/summary.json"]["max_numeric_diff"] == pytest.approx(1e-6)
    assert d["results/m.safetensors"]["tensors_differing"] == 1
    assert d["results/m.safetensors"]["max_abs_diff"] == pytest.approx(1e-6, rel=0.2)


def test_devices_set_everywhere_in_a_suite():
    tree = {"a": {"ensemble": {"device": "cpu", "models": 2}}, "b": [{"cohen": {"device": "auto"}}]}
    assert gpucheck._set_devices(tree, "cuda") == {"a": {"ensemble": {"device": "cuda", "models": 2}},
                                                  "b": [{"cohen": {"device": "cuda"}}]}  # fmt: skip


def test_gpu_sh_rejects_an_unknown_argument():
    proc = subprocess.run(["bash", "bench/gpu.sh", "--devcie", "cpu"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "bench/gpu.sh: unknown argument '--devcie' (see bench/gpu.sh --help)"


@pytest.mark.workflow
def test_gpu_check_runs_on_the_cpu(tmp_path):
    """bench/gpu.sh --device cpu: every step runs and the JSON holds what each measured (with
    a budget that a slow moment of the machine cannot exhaust: this checks what the steps do,
    not how fast; the default 240 s is what `bench/gpu.sh --device cpu` plans with)."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CERTSMOOTH_GPU_TEST_DEVICE")}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(["bash", "bench/gpu.sh", "--device", "cpu", "--out", str(out), "--wheels", str(tmp_path),
                           "--budget-s", "900"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu.json", "gpucheck.log"]
    res = json.loads((out / "gpu.json").read_text())
    assert res["format"] == gpucheck.FORMAT and res["status"] == "ok", res.get("failed_steps")
    steps = res["steps"]
    expected = {"environment", "correctness", "workflow", "lanes", "train_m5", "train_m10", "train_m10_bf16",
                "profile", "certify", "cohen", "count"}  # fmt: skip
    assert set(steps) == expected
    native_bf16 = torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    if not native_bf16:  # emulated bf16 (e.g. an AVX2-only CPU) is skipped with the reason
        bf16 = steps.pop("train_m10_bf16")
        assert bf16["status"] == "skipped" and "no native bf16" in bf16["reason"]
    assert all(s["status"] == "ok" for s in steps.values()), {k: s for k, s in steps.items() if s["status"] != "ok"}
    tests = steps["correctness"]["figures"]["tests"]
    assert tests["tests"] == 12 and tests["failed"] == 0 and tests["skipped"] == 0
    figs = steps["correctness"]["figures"]["figures"]
    assert figs["test_counter_noise_same_on_device"]["hashes_equal"] is True
    assert figs["test_training_is_deterministic_on_device"]["bitwise_equal"] == {"mnist_cnn": True,
                                                                                "preact_resnet32": True}
    wf = steps["workflow"]["figures"]
    assert wf["files"] >= 20 and any(k.endswith(".safetensors") for k in wf["hashes"])
    assert wf["comparison"]["of"] == ["cpu", "cpu-1-thread"] and not wf["comparison"]["only_in_first"]
    train = steps["train_m10"]["figures"]
    assert set(train["variants"]) == {"partition", "reference", "plain"}
    assert train["models"] == {"partition": 10, "reference": 2, "plain": 2}
    assert all(v["sample_steps_per_s"] > 0 and len(v["wall_s"]) == 5 for v in train["variants"].values())
    assert set(train["speedup_models_per_hour"]) == {"reference", "plain"}
    assert steps["lanes"]["figures"]["best"]["lane_width"] in (5, 10)
    if native_bf16:
        assert steps["train_m10_bf16"]["figures"]["bf16"] is True
    assert set(steps["profile"]["figures"]["phase_ms"]) == {"noise + gather", "forward + loss", "backward",
                                                            "adam step"}  # fmt: skip
    assert np.isfinite(list(steps["cohen"]["figures"]["noisy_passes_per_s"].values())).all()
    assert len(steps["certify"]["figures"]["model_evaluations_per_s"]) == 6
    assert set(steps["certify"]["figures"]["speedup_vs_plain_loop"]) == {"joint", "train", "Cert-SSB σ_x"}
    count = steps["count"]["figures"]
    assert count["models"] == 20 and len(count["models_per_hour"]) == 3 and count["speedup_vs_one_at_a_time"] > 0
