"""The Snakemake workflow: dry runs, lint, a tiny end-to-end run, determinism, failures."""

import json
import re

import pytest
import yaml

from conftest import REPO, copy_project, run, snakemake, tool, tree_hashes

pytestmark = pytest.mark.workflow


def job_counts(stdout: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table."""
    table = stdout.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def test_dry_run_default_params(tmp_path):
    project = copy_project(tmp_path / "p", params="params.yaml")
    proc = snakemake(project, "-n", "--cores", "1", "--forceall")
    # demo: 5 attacks × (undefended, RAB, Cert-SSB, Cohen, DPA, FA, bagging); mehra: ten digits, clean and
    # bilevel × Cohen
    assert job_counts(proc.stdout) == {
        "prepare_dataset": 2, "poison": 6, "bilevel_poison": 1, "plot_samples": 7, "undefended": 5,
        "train_partition": 10, "certify": 20, "metrics": 37, "optimize_train_sigma": 5, "optimize_test_sigma": 5,
        "plot_sigma": 5, "train_cohen": 7, "certify_cohen_chunk": 7, "merge_cohen": 7, "train_count": 15,
        "certify_count": 15, "plot_curves": 2, "plot_attacks": 2, "all": 1,
    }  # fmt: skip


def test_dry_run_tiny_params_and_suite_target(project):
    proc = snakemake(project, "-n", "--cores", "1", "demo")
    assert job_counts(proc.stdout) == {  # 4 attacks × 3 certifiers, 6 pairs excluded
        "prepare_dataset": 1, "poison": 4, "plot_samples": 4, "train_partition": 8, "certify": 8, "metrics": 6,
        "optimize_train_sigma": 1, "optimize_test_sigma": 1, "plot_sigma": 1, "train_cohen": 2,
        "certify_cohen_chunk": 4, "merge_cohen": 2, "plot_curves": 1, "plot_attacks": 1, "demo": 1,
    }  # fmt: skip


def test_dry_run_torchvision_dataset_plans_download(project):
    params = (project / "params.yaml").read_text()
    params = params.replace(
        "{name: mnist5k, classes: [1, 0], split: {test_fraction: 0.5, seed: 3}}",
        "{name: cifar10, classes: [bird, airplane]}",
    )
    for block in ("ensemble: {", "cohen: {", "&tiny_cohen {", "&tiny_count {", "undefended: {"):  # 32×32 images
        params = params.replace(block, f"{block}arch: preact_resnet32, ")
    (project / "params.yaml").write_text(params)
    proc = snakemake(project, "-n", "--cores", "1")
    assert job_counts(proc.stdout) == {
        "fetch_dataset": 1, "prepare_dataset": 1, "poison": 4, "plot_samples": 4, "train_partition": 8,
        "certify": 8, "metrics": 6, "optimize_train_sigma": 1, "optimize_test_sigma": 1, "plot_sigma": 1,
        "train_cohen": 2, "certify_cohen_chunk": 4, "merge_cohen": 2, "plot_curves": 1, "plot_attacks": 1, "all": 1,
    }  # fmt: skip
    assert "data/prepared/cifar10/2-0/official/train.npz" in proc.stdout


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_tiny_end_to_end(built_project):
    import numpy as np

    project = built_project
    # every training job (ensemble parts, Cert-SSB pilot, Cohen model) removed its epoch checkpoints
    assert not [p for p in (project / "checkpoints").rglob("*") if p.is_file()]
    (pilot_log,) = (project / "logs/optimize_train_sigma/demo/onepixel/ssb").glob("*.log")
    assert "removed the training checkpoints in checkpoints/demo/onepixel/ssb/sigma/" in pilot_log.read_text()
    for attack in ("control", "onepixel", "blending", "avail"):  # one poisoned set per attack, for every certifier
        png = project / f"results/demo/{attack}/figures/samples.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (project / f"logs/plot_samples/demo/{attack}.log").exists()
    records = sorted((project / "data/poisoned/demo").rglob("record.json"))
    assert len(records) == 4
    avail = json.loads(next((project / "data/poisoned/demo/avail").rglob("record.json")).read_text())
    assert avail["attack"]["kind"] == "avail_split" and avail["train"]["num_poisons"] == 10
    assert avail["test"]["num_nontarget"] == 500  # no target: every triggered test point counts
    control = json.loads((project / "results/demo/control/rab/metrics.json").read_text())["train"]
    assert control["deployed_attack"]["num_poisons"] == 0 and control["num_triggered"] == 500
    assert control["noise_scales"]["train_poisons"] == {"min": None, "mean": None, "max": None}
    cohen = json.loads((project / "results/demo/avail/cohen/metrics.json").read_text())["cohen"]
    assert cohen["method"] == "cohen" and cohen["num_clean"] == 50 and cohen["num_triggered"] == 50  # skip 10
    assert cohen["max_radius"] == pytest.approx(0.5 * 1.6953, rel=1e-3)  # σ·Φ⁻¹(0.01^(1/100))
    assert cohen["base_accuracy_clean"] > 0.9 and cohen["certified_accuracy_clean"]["0"] > 0.9
    assert np.isnan(cohen["attack_success_rate"]) and np.isnan(cohen["certified_vs_deployed_attack"])
    rec = json.loads((project / "data/poisoned/demo/onepixel/onepixel-d0.5-r0.01-t0-s1/record.json").read_text())
    # .test: 1000 mnist5k images of digits 1 and 0, half for training -> 500; 1% -> 5 poisons
    assert rec["train"]["num_examples"] == 500 and rec["train"]["num_poisons"] == 5
    assert rec["train"]["stacked_norm"] <= 0.5 * 5**0.5 + 1e-6
    metrics = json.loads((project / "results/demo/onepixel/rab/metrics.json").read_text())
    for scope in ("train", "joint"):
        m = metrics[scope]
        assert m["num_clean"] == 500 and m["num_triggered"] == 250  # non-target test points
        assert m["clean_accuracy"] > 0.9  # 16 MNIST CNNs, two epochs, digits 1 vs 0
        assert 0.5 < m["certified_accuracy_clean"]["0"] <= m["clean_accuracy"]
        assert m["deployed_attack"]["stacked_train_norm"] == rec["train"]["stacked_norm"]
    board = (project / "results/demo/leaderboard.md").read_text()
    assert "| rab (train) |" in board and (project / "results/demo/figures/certified_accuracy.png").exists()
    again = snakemake(project, "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_certssb_end_to_end(built_project):
    """The Cert-SSB run next to RAB: files, σ provenance, certificate arithmetic, memory."""
    import numpy as np
    import pandas as pd

    from certsmooth.artifacts import load_npz, sha256_array
    from certsmooth.data.prepared import load_prepared

    project = built_project
    base = project / "results/demo/onepixel/ssb"
    train_sigma = load_npz(next((base / "sigma").rglob("train_sigma.npz")))["train"]
    info = json.loads(next((base / "sigma").rglob("train_sigma.json")).read_text())
    assert info["pilot"]["train"]["sigma"] == 0.25 and len(info["pilot"]["per_model"]) == 2
    assert info["sigma_sha256"] == sha256_array(train_sigma) and 0.1 <= train_sigma.min() <= train_sigma.max() <= 0.5
    manifests = sorted((base / "models").rglob("part*of2.json"))
    assert [json.loads(m.read_text())["sample_sigma_sha256"] for m in manifests] == [info["sigma_sha256"]] * 2
    test_sigma = load_npz(next(base.rglob("test_sigma.npz")))
    clean_x = load_prepared(next((project / "data/prepared/mnist5k").rglob("test.npz"))).floats()
    metrics = json.loads((base / "metrics.json").read_text())
    for scope in ("train", "joint"):
        m = metrics[scope]
        assert m["method"] == "certssb" and m["num_clean"] == 500
        assert m["noise_scales"]["train"]["min"] == pytest.approx(float(train_sigma.min()))
        run_dir = next(base.rglob(f"{scope}-votes-a0.1"))
        clean = pd.read_csv(run_dir / "clean.csv")
        np.testing.assert_allclose(clean["sigma_x"], test_sigma["clean"], rtol=1e-6)
        scale = train_sigma.min() if scope == "train" else np.minimum(train_sigma.min(), test_sigma["clean"])
        np.testing.assert_allclose(clean["radius_pre_memory"], scale * clean["r_tilde"], rtol=1e-6)
        trig = pd.read_csv(run_dir / "triggered.csv")
        assert (trig["deployed_whitened"] > 0).all()
        if scope == "train":
            assert (clean["memory"] == "none").all() and (clean["radius"] == clean["radius_pre_memory"]).all()
            assert m["storage_update"]["clean"] is None
            # the released code's radius: beside the certificate, labelled, never counted
            rel = m["released_code_unsound"]
            assert rel["hoeffding_n"] == 1000 and "UNSOUND" in rel["what"]
            hit = clean["released_code_top"] == clean["label"]
            for q, v in rel["certified_accuracy_clean"].items():
                assert v == pytest.approx(float((hit & (clean["released_code_radius_unsound"] > float(q))).mean()))
            assert "released_code_radius_unsound" in trig.columns
            continue
        assert "released_code_radius_unsound" not in clean.columns and "released_code_unsound" not in m
        mem = m["storage_update"]["clean"]
        assert sum(mem[k] for k in ("kept", "trimmed", "aligned", "abstained")) == 500
        assert (clean["radius"] <= clean["radius_pre_memory"] + 1e-12).all()  # radii never grow
        np.testing.assert_allclose(clean["radius_test_input"], clean["sigma_x"] * clean["r_tilde_post"], rtol=1e-6)
        assert m["test_input"]["acr_clean"] >= m["acr_clean"] - 1e-12  # σ_x ≥ min(min σ_i, σ_x)
        # differently-labelled stored test-input regions do not overlap
        stored = clean[(clean["predict"] >= 0) & (clean["radius_test_input"] > 0)]
        pts = clean_x[stored["idx"].to_numpy()].reshape(len(stored), -1).astype(np.float64)
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
        r, lab = stored["radius_test_input"].to_numpy(), stored["predict"].to_numpy()
        clash = (lab[:, None] != lab[None]) & (d < r[:, None] + r[None] - 1e-9)
        assert not clash.any()
    rab = pd.read_csv(next((project / "results/demo/onepixel/rab").rglob("joint-votes-a0.1/triggered.csv")))
    np.testing.assert_allclose(rab["radius"], 0.25 * rab["r_tilde"], rtol=1e-6)
    np.testing.assert_allclose(rab["deployed_whitened"], rab["deployed_norm"] / 0.25, rtol=1e-6)
    assert (project / "results/demo/onepixel/ssb/figures/sigma.png").read_bytes()[:4] == b"\x89PNG"
    assert "| ssb (joint) |" in (project / "results/demo/leaderboard.md").read_text()


def test_certssb_sigma_mismatch_fails_with_one_line(built_project, tmp_path):
    """Models trained with one σ vector cannot be certified with another; σ_x scored by the
    certified models themselves is refused."""
    import numpy as np

    from certsmooth.artifacts import load_npz, read_json, save_npz, write_json

    project = built_project
    base = project / "results/demo/onepixel/ssb"
    sigma = load_npz(next((base / "sigma").rglob("train_sigma.npz")))["train"]
    other = tmp_path / "train_sigma.npz"
    save_npz(other, train=(sigma * np.float32(1.01)).astype(np.float32))
    weights = sorted(str(p) for p in (base / "models").rglob("*.safetensors"))
    manifests = [w.replace(".safetensors", ".json") for w in weights]
    poisoned = next((project / "data/poisoned/demo/onepixel").iterdir())
    test = next((project / "data/prepared/mnist5k").rglob("test.npz"))
    test_sigma = next(base.rglob("test_sigma.npz"))
    man = read_json(manifests[0])
    ens = json.dumps({"method": "certssb", "models": man["num_models"], "arch": "mnist_cnn",
                      "lane_width": man["train"]["lane_width"], "device": "cpu"})  # fmt: skip
    cert = json.dumps({"scopes": ["joint"], "aggregation": "votes", "alpha": 0.1, "radii": [0], "radius_cmp": "gt"})
    out = tmp_path / "out"

    def certify(train_sigma, sigma_x):
        return run(
            [tool("python"), "-m", "certsmooth", "certify", "--weights", *weights, "--manifests", *manifests,
             "--train", str(poisoned / "train.npz"), "--record", str(poisoned / "record.json"),
             "--clean-test", str(test), "--triggered-test", str(poisoned / "test.npz"), "--ensemble", ens,
             "--certify", cert, "--scope", "joint", "--sigma", "0.25", "--seed", "1", "--experiment", "demo/x",
             "--train-sigma", str(train_sigma), "--test-sigma", str(sigma_x), "--out-clean", str(out / "c.csv"),
             "--out-triggered", str(out / "t.csv"), "--out-summary", str(out / "s.json")],
            cwd=project, check=False,
        )  # fmt: skip

    proc = certify(other, test_sigma)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "trained with sample_sigma_sha256 = " in proc.stderr and "and rerun the workflow to retrain" in proc.stderr
    assert not out.exists() or not any(out.iterdir())
    # σ_x whose scorer is models 0 and 1 of the certified ensemble
    bad = tmp_path / "bad" / "test_sigma.npz"
    bad.parent.mkdir()
    bad.write_bytes(test_sigma.read_bytes())
    info = read_json(test_sigma.with_suffix(".json"))
    info["scorer"]["per_model"] = man["per_model"][:2]
    write_json(bad.with_suffix(".json"), info)
    proc = certify(next((base / "sigma").rglob("train_sigma.npz")), bad)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "shares seeds with the certified models" in proc.stderr
    assert not out.exists() or not any(out.iterdir())
    proc = run(
        [tool("python"), "-m", "certsmooth", "optimize-sigma", "--stage", "test", "--train",
         str(poisoned / "train.npz"), "--ensemble", ens, "--sigma-opt", "{}", "--sigma", "0.25", "--seed", "1",
         "--experiment", "demo/x", "--out", str(tmp_path / "s.npz"), "--out-info", str(tmp_path / "info.json")],
        cwd=project, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "needs --train-sigma, --clean-test, --triggered-test" in proc.stderr


def test_same_outputs_for_any_number_of_jobs_chunks_and_cores(built_project, tmp_path):
    """The session's project ran with ``--cores 2`` (two jobs at once), two training
    training jobs per ensemble and two Cohen chunks; this copy runs one job at a time with four
    training jobs and three chunks. The poisoned sets, every certificate and every summary are
    the same bytes (one run checks the three: a scheduling effect and a partitioning effect
    would have to cancel bit for bit to hide each other)."""
    b = copy_project(tmp_path / "b")
    params = yaml.safe_load((b / "params.yaml").read_text())
    for cert in params["suites"]["demo"]["certifiers"].values():  # only the demo suite: tiny has two lanes
        if cert.get("ensemble", {}).get("jobs") == 2:
            cert["ensemble"]["jobs"] = 4
        if cert.get("cohen", {}).get("chunks") == 2:
            cert["cohen"]["chunks"] = 3
    (b / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    targets = ("results/demo/avail/cohen/metrics.json", "results/demo/onepixel/rab/metrics.json",
               "results/demo/onepixel/ssb/metrics.json")  # fmt: skip
    snakemake(b, "--cores", "1", *targets)
    for f in ("clean.csv", "triggered.csv", "summary.json"):  # Cohen: the same for 2 and 3 chunks
        pa = next((built_project / "results/demo/avail/cohen/cohen").rglob(f))
        assert pa.read_bytes() == (b / pa.relative_to(built_project)).read_bytes()
    for exp, files in (("onepixel/rab", 6), ("onepixel/ssb", 8)):  # Cert-SSB: + test_sigma.npz/.json
        ca = tree_hashes(built_project, f"results/demo/{exp}/certify")
        cb = tree_hashes(b, f"results/demo/{exp}/certify")
        assert len(ca) == files and list(ca.values()) == list(cb.values())
        assert len(list((b / f"results/demo/{exp}/models").rglob("*.safetensors"))) == 4
    for exp in ("onepixel/rab", "onepixel/ssb", "avail/cohen"):
        assert (b / f"results/demo/{exp}/metrics.json").read_bytes() == \
            (built_project / f"results/demo/{exp}/metrics.json").read_bytes()  # fmt: skip
    poisoned = tree_hashes(b, "data/prepared", "data/poisoned/demo")
    assert len(poisoned) >= 10 and poisoned == {k: v for k, v in tree_hashes(
        built_project, "data/prepared", "data/poisoned/demo").items() if k in poisoned}  # fmt: skip
    assert any("/avail/" in k for k in poisoned) and any("/onepixel/" in k for k in poisoned)


def test_sigma_change_reruns_only_that_certifier(built_project):
    """RAB's σ: its three cells retrain and recertify (and the sample figures that show
    its noise); not Cert-SSB, not Cohen, not the poisoned sets."""
    project = built_project
    old = "sigma: 0.25\n        ensemble: {models: 16"
    text = (project / "params.yaml").read_text()
    assert text.count(old) == 1
    (project / "params.yaml").write_text(text.replace(old, old.replace("0.25", "0.3")))
    proc = snakemake(project, "-n", "--cores", "1")
    assert job_counts(proc.stdout) == {
        "train_partition": 6, "certify": 6, "metrics": 3, "plot_samples": 3, "plot_curves": 1, "plot_attacks": 1,
        "all": 1,
    }  # fmt: skip


def test_corrupt_checkpoint_fails_certification_clearly(built_project):
    project = built_project
    weights = sorted((project / "results/demo/onepixel/rab/models").rglob("part0of2.safetensors"))[0]
    weights.write_bytes(weights.read_bytes()[:1000])
    proc = snakemake(project, "--cores", "1", "--forcerun", "certify", check=False)
    assert proc.returncode != 0
    assert f"{weights.relative_to(project)}: not a readable safetensors file" in proc.stderr


def test_figure_param_change_reruns_only_figures(built_project):
    project = built_project
    text = (project / "params.yaml").read_text().replace("dpi: 60", "dpi: 70")
    (project / "params.yaml").write_text(text)
    proc = snakemake(project, "-n", "--cores", "1")
    assert job_counts(proc.stdout) == {
        "plot_samples": 4, "plot_sigma": 1, "plot_curves": 1, "plot_attacks": 1, "all": 1,
    }  # fmt: skip


def test_failing_job_leaves_no_output(project):
    # 90% of the training set cannot be drawn from the non-target half: the poison job fails.
    # On your own dataset, whose class sizes the parse does not know, that is found by the job
    # (on a built-in one the parse refuses the rate: tests/test_bad_inputs.py)
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(project / "mine.npz", x_train=rng.integers(0, 256, (200, 1, 28, 28), dtype=np.uint8),
             y_train=np.arange(200) % 2)  # fmt: skip
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"] = {"mine": {"format": "npz", "path": "mine.npz"}}
    params["suites"]["demo"]["dataset"] = {"name": "mine", "classes": None, "split": {"test_fraction": 0.5, "seed": 3}}
    params["suites"]["demo"]["attacks"]["onepixel"]["rate"] = 0.9
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    targets = ("results/demo/onepixel/figures/samples.png", "results/demo/blending/figures/samples.png")
    proc = snakemake(project, "--cores", "1", "--keep-going", *targets, check=False)
    assert proc.returncode != 0
    log = (project / "logs/poison/demo/onepixel/onepixel-d0.5-r0.9-t0-s1.log").read_text()
    assert "attack.rate = 0.9 asks for 90 poisons but only 50 training points" in log
    assert not (project / "data/poisoned/demo/onepixel").exists() or not any(
        (project / "data/poisoned/demo/onepixel").rglob("*.*")
    )
    assert (project / "results/demo/blending/figures/samples.png").exists()  # other jobs went on


def test_cli_poison_with_corrupt_input_writes_nothing(tmp_path):
    bad = tmp_path / "train.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "out"
    proc = run(
        [tool("python"), "-m", "certsmooth", "poison", "--train", str(bad), "--test", str(bad),
         "--attack", '{"kind": "backdoor", "trigger": {"name": "onepixel"}, "rate": 0.1, "target": 0}',
         "--seed", "0", "--experiment", "x/y", "--out-dir", str(out)],
        cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith(f"certsmooth: error: {bad}: unreadable .npz")
    assert not out.exists()


def test_report_contains_figures_and_table(built_project):
    """`make report`: the report opens on a landing page with the default suites' matrix and
    leaderboard as tables (the metadata makes it the first page), every figure with its caption."""
    snakemake(built_project, "--report", "report.html", "--report-metadata", "workflow/report/metadata.yaml",
              "--report-stylesheet", "workflow/report/style.css")  # fmt: skip
    html = (built_project / "report.html").read_text(errors="ignore")
    assert "System Message" not in html and "the leaderboard" in html and "No default suite" not in html
    figures = ("certified_accuracy.png", "samples.png", "sigma.png", "attack_matrix.png", "attack_effects.png")
    assert all(f in html for f in figures), [f for f in figures if f not in html]
    # the suite-level captions quote every certification run's settings (σ, M, α in the names)
    assert html.count("Runs shown") == 3  # the matrix, the effects, the curves
    assert "onepixel/rab: rab-mnist_cnn-sigma0.25-M16-W4-e2-b100-lr0.001-s1/joint-votes-a0.1" in html
    assert "onepixel/ssb: certssb-" in html and "avail/cohen: ga-" in html


def test_bilevel_end_to_end(built_project):
    """Tiny bilevel suite: one attack job whose poisons (optimised against the GA victim)
    both victims certify (the MACER column measures the transfer), clean-label poisons
    within ε and [0, 1], target-class metrics against the clean row, the attack matrix."""
    import numpy as np
    import pandas as pd

    project = built_project  # the session built the bilevel suite too
    dry = snakemake(project, "-n", "--cores", "1", "--forceall", "bilevel")
    counts = job_counts(dry.stdout)
    assert counts["bilevel_poison"] == 1 and counts["train_cohen"] == 4 and counts["poison"] == 1
    (d,) = (project / "data/poisoned/bilevel/poisoned").iterdir()
    train = np.load(d / "train.npz")
    from certsmooth.data.prepared import load_prepared

    clean = load_prepared(project / "data/prepared/mnist5k/1-0/test0.5-seed3/train.npz")
    x0 = clean.floats()
    assert np.array_equal(train["y"], clean.y) and np.array_equal(train["y"], train["clean_y"])  # clean-label
    idx = train["poison_index"]
    assert np.array_equal(idx, np.flatnonzero(clean.y == 1))
    delta = train["x"] - x0
    assert np.abs(delta).max() <= 0.1 + 1e-6 and np.abs(delta).max() > 0.01
    assert train["x"].min() >= 0 and train["x"].max() <= 1
    rest = np.setdiff1d(np.arange(len(x0)), idx)
    assert np.array_equal(train["x"][rest], x0[rest])
    record = json.loads((d / "record.json").read_text())
    assert record["bilevel"]["linf"]["max"] <= 0.1 + 1e-6 and record["train"]["num_poisons"] == len(idx)
    cls = {}
    for attack in ("clean", "poisoned"):
        for cert in ("ga", "macer"):
            m = json.loads((project / f"results/bilevel/{attack}/{cert}/metrics.json").read_text())["cohen"]
            assert m["train_method"] == cert and set(m["per_class_clean"]) == {"1"}  # cohen.classes: [1]
            assert m["num_clean"] == m["per_class_clean"]["1"]["num"] > 0
            cls[attack, cert] = m["per_class_clean"]["1"]
    cells = pd.read_csv(project / "results/bilevel/cells.csv")
    assert list(dict.fromkeys(cells["attack"] + "/" + cells["certifier"])) == ["clean/ga", "clean/macer", "poisoned/ga",
                                                                              "poisoned/macer"]  # fmt: skip
    drop = cells[cells["metric"] == "target_acr_drop"].set_index("certifier")["value"]
    for cert in ("ga", "macer"):
        base, pois = cls["clean", cert], cls["poisoned", cert]
        assert drop[cert] == pytest.approx((base["acr"] - pois["acr"]) / base["acr"], rel=1e-5)
    assert "bilevel" in (project / "results/bilevel/leaderboard.md").read_text()
    assert (project / "results/bilevel/figures/attack_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_nothing_changed_nothing_reruns(built_project):
    proc = snakemake(built_project, "-n", "--cores", "1")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_alpha_change_reruns_only_certification_and_downstream(built_project):
    project = built_project
    text = (project / "params.yaml").read_text()
    one = "certify: {scopes: [train, joint], aggregation: votes, alpha: 0.1, radii: [0, 0.1, 0.2]}"
    assert text.count(one) == 1  # RAB's
    (project / "params.yaml").write_text(text.replace(one, one.replace("alpha: 0.1", "alpha: 0.2")))
    proc = snakemake(project, "-n", "--cores", "1")  # RAB's three cells, both scopes
    assert job_counts(proc.stdout) == {"certify": 6, "metrics": 3, "plot_curves": 1, "plot_attacks": 1, "all": 1}


def test_library_edit_reruns_the_rules_that_use_it(built_project):
    project = built_project
    module = project / "src/certsmooth/plots/samples.py"  # imported by every figure command, by no other
    module.write_text(module.read_text() + "\n# an edit\n")
    proc = snakemake(project, "-n", "--cores", "1")
    assert job_counts(proc.stdout) == {
        "plot_samples": 4, "plot_sigma": 1, "plot_curves": 1, "plot_attacks": 1, "all": 1,
    }  # fmt: skip
