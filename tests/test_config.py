"""params.yaml validation: defaults are valid; every bad value fails with one line."""

import copy

import pytest

from certsmooth.config import experiments, load_yaml, validate_params
from certsmooth.errors import ConfigError
from conftest import REPO, copy_project, snakemake


@pytest.fixture(scope="module")
def default():
    return load_yaml(REPO / "params.yaml")


def test_default_and_test_params_are_valid(default):
    cfg = validate_params(default)
    assert [e.id for e in experiments(cfg, ["demo"])] == [
        f"demo/{t}"
        for t in (
            "rab_fourpixel",
            "certssb_fourpixel",
            "avail_uniform",
            "avail_split",
            "control",
            "bilevel_ga",
            "bilevel_clean",
            "onepixel",
            "fourpixel",
            "blending",
            "badnets",
            "blend",
        )
    ]
    paper = [e for e in experiments(cfg, ["paper_rab"])]
    assert len(paper) == 24 and all(e.cfg["ensemble"]["models"] == 1000 for e in paper)
    assert cfg["default_suites"] == ["demo"]
    tiny = validate_params(load_yaml(REPO / ".test/params.yaml"))
    assert len(list(experiments(tiny))) == 9  # demo 5, bilevel 3, tiny 1
    bl = {e.name: e for e in experiments(cfg, ["demo"]) if e.name.startswith("bilevel")}
    assert bl["bilevel_ga"].poisoned_dir().startswith("data/poisoned/demo/_bilevel/bilevel-ga-eps0.1-t8-")
    assert bl["bilevel_ga"].cfg["attack"]["bilevel"]["lr_u"] == 0.1  # defaults filled
    assert bl["bilevel_clean"].attack_tag() == "clean-s0"
    ssb = [e for e in experiments(cfg, ["paper_certssb"])]
    assert len(ssb) == 24 and all(e.certssb and e.cfg["ensemble"]["models"] == 1000 for e in ssb)


def test_certssb_gets_default_sigma_opt_and_its_own_folders(default):
    from certsmooth.smoothing.certssb import DEFAULTS

    cfg = copy.deepcopy(default)
    del cfg["suites"]["demo"]["certssb_fourpixel"]["sigma_opt"]
    out = validate_params(cfg)
    assert out["suites"]["demo"]["certssb_fourpixel"]["sigma_opt"] == DEFAULTS
    assert "sigma_opt" not in out["suites"]["demo"]["rab_fourpixel"]
    exps = {e.name: e for e in experiments(validate_params(default), ["demo"])}
    rab, ssb = exps["rab_fourpixel"], exps["certssb_fourpixel"]
    assert rab.train_tag().startswith("rab-") and ssb.train_tag().startswith("certssb-")
    assert ssb.certify_dir("joint").startswith(ssb.test_sigma_dir() + "/")
    # the test-point settings do not touch the trained models; the training-sample ones do
    edited = copy.deepcopy(default)
    edited["suites"]["demo"]["certssb_fourpixel"]["sigma_opt"]["test_steps"] = 7
    other = {e.name: e for e in experiments(validate_params(edited), ["demo"])}["certssb_fourpixel"]
    assert other.train_tag() == ssb.train_tag() and other.test_sigma_dir() != ssb.test_sigma_dir()
    edited["suites"]["demo"]["certssb_fourpixel"]["sigma_opt"]["steps"] = 7
    other = {e.name: e for e in experiments(validate_params(edited), ["demo"])}["certssb_fourpixel"]
    assert other.train_tag() != ssb.train_tag() and other.sigma_dir() != ssb.sigma_dir()
    edited["suites"]["demo"]["certssb_fourpixel"]["sigma_opt"]["batch_size"] = 7  # no effect on results
    again = {e.name: e for e in experiments(validate_params(edited), ["demo"])}["certssb_fourpixel"]
    assert again.sigma_dir() == other.sigma_dir()


def test_defaults_are_filled_without_sharing(default):
    cfg = copy.deepcopy(default)
    exp = cfg["suites"]["demo"]["onepixel"]
    del exp["smoothing"], exp["seed"], cfg["figures"]
    out = validate_params(cfg)
    assert out["suites"]["demo"]["onepixel"]["smoothing"] == {"sigma": 1.0}
    assert out["suites"]["demo"]["onepixel"]["seed"] == 0
    assert out["figures"] == {"dpi": 150, "n_examples": 6, "context": "paper"}
    assert "smoothing" not in cfg["suites"]["demo"]["onepixel"]  # input not modified


def test_attack_kinds_name_their_folders(default):
    cfg = copy.deepcopy(default)
    demo = cfg["suites"]["demo"]
    demo["a"] = {**demo["onepixel"], "attack": {"kind": "avail_split", "trigger": {"name": "onepixel"}, "rate": 0.01}}
    demo["b"] = {**demo["onepixel"], "attack": {"kind": "none", "trigger": {"name": "onepixel"}}}
    exps = {e.name: e for e in experiments(validate_params(cfg), ["demo"])}
    assert exps["a"].attack_tag() == "onepixel-d1-r0.01-split0_1-s0"
    assert exps["b"].attack_tag() == "onepixel-d1-none-s0"
    assert exps["onepixel"].attack_tag() == "onepixel-d1-r0.02-t0-s0"


def edit(default, path, value):
    cfg = copy.deepcopy(default)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cfg


EXP = ["suites", "demo", "onepixel"]
SSB = ["suites", "demo", "certssb_fourpixel"]
BL = ["suites", "demo", "bilevel_ga"]
CASES = {
    "negative sigma": (
        EXP + ["smoothing", "sigma"],
        -0.5,
        "suites.demo.onepixel.smoothing.sigma = -0.5 is not allowed: must be > 0",
    ),
    "zero sigma": (EXP + ["smoothing", "sigma"], 0, "smoothing.sigma = 0 is not allowed: must be > 0"),
    "rate above one": (EXP + ["attack", "rate"], 1.5, "attack.rate = 1.5 is not allowed: must be < 1"),
    "rate zero": (EXP + ["attack", "rate"], 0.0, "attack.rate = 0.0 is not allowed: must be > 0"),
    "rate is text": (EXP + ["attack", "rate"], "2%", "attack.rate = '2%' is not allowed: must be of type number"),
    "unknown trigger": (
        EXP + ["attack", "trigger", "name"],
        "wanet",
        "attack.trigger.name = 'wanet' is not allowed: must be one of onepixel, fourpixel, blending, badnets, blend",
    ),
    "unknown attack kind": (
        EXP + ["attack", "kind"],
        "clean_label",
        "attack.kind = 'clean_label' is not allowed: must be one of backdoor",
    ),
    "unknown dataset": (
        EXP + ["dataset", "name"],
        "cifar100",
        "dataset.name = 'cifar100' is not allowed: must be one of mnist5k, mnist, fashion_mnist, cifar10",
    ),
    "unknown experiment key": (
        EXP + ["sigma"],
        0.5,
        "suites.demo.onepixel has unknown key 'sigma'; allowed keys: attack, baseline, certify, cohen, "
        "dataset, ensemble, seed, sigma_opt, smoothing",
    ),
    "key of another trigger": (
        EXP + ["attack", "trigger", "alpha"],
        0.2,
        "attack.trigger has unknown key 'alpha'; allowed keys: delta, name, positions",
    ),
    "unknown top-level key": (["sigma"], 1.0, "<top level> has unknown key 'sigma'"),
    "missing rate": (EXP + ["attack", "rate"], KeyError, "suites.demo.onepixel.attack is missing the key 'rate'"),
    "negative delta": (
        EXP + ["attack", "trigger", "delta"],
        -1,
        "attack.trigger.delta = -1 is not allowed: must be > 0",
    ),
    "bad split fraction": (
        EXP + ["dataset", "split"],
        {"test_fraction": 1.0, "seed": 0},
        "dataset.split.test_fraction = 1.0 is not allowed: must be < 1",
    ),
    "bad split word": (
        EXP + ["dataset", "split"],
        "random",
        "dataset.split = 'random' is not allowed: must be 'official'",
    ),
    "negative seed": (EXP + ["seed"], -3, "onepixel.seed = -3 is not allowed: must be >= 0"),
    # semantic checks (beyond the schema)
    "class not in dataset": (
        EXP + ["dataset", "classes"],
        [0, "airplane"],
        "dataset.classes: 'airplane' is not a class of mnist5k",
    ),
    "target out of range": (
        EXP + ["attack", "target"],
        2,
        "suites.demo.onepixel.attack.target = 2: the task has 2 classes",
    ),
    "official split of mnist5k": (EXP + ["dataset", "split"], "official", "mnist5k has no official split"),
    "badnets patch too large": (
        EXP + ["attack", "trigger"],
        {"name": "badnets", "size": 40},
        "a 40×40 patch at (-12, -12) does not fit",
    ),
    "unknown default suite": (["default_suites"], ["paper"], "default_suites lists 'paper', which is not a suite"),
    "too many partitions": (
        ["suites", "demo", "rab_fourpixel", "ensemble", "partitions"],
        11,
        "suites.demo.rab_fourpixel.ensemble.partitions = 11: must be between 1 and the number of lanes",
    ),
    "unknown architecture": (
        ["suites", "demo", "rab_fourpixel", "ensemble", "arch"],
        "vgg16",
        "ensemble.arch = 'vgg16' is not allowed: must be one of mnist_cnn, preact_resnet32, resnet18",
    ),
    "architecture does not fit": (
        ["suites", "demo", "rab_fourpixel", "dataset"],
        {"name": "cifar10", "classes": ["bird", "airplane"]},
        "ensemble.arch = 'mnist_cnn' does not fit 32×32 images",
    ),
    "unknown scope": (
        ["suites", "demo", "rab_fourpixel", "certify", "scopes"],
        ["test"],
        "certify.scopes.0 = 'test' is not allowed: must be one of train, joint",
    ),
    "alpha too large": (
        ["suites", "demo", "rab_fourpixel", "certify", "alpha"],
        0.5,
        "certify.alpha = 0.5 is not allowed: must be < 0.5",
    ),
    "bad device": (
        ["suites", "demo", "rab_fourpixel", "ensemble", "device"],
        "gpu",
        "ensemble.device = 'gpu' is not allowed: must match",
    ),
    "bad experiment name": (["suites", "demo", "one-pixel"], {}, "has an invalid name 'one-pixel'"),
    "unknown method": (SSB + ["ensemble", "method"], "ddrs", "ensemble.method = 'ddrs' is not allowed: must be one of"),
    "sigma_opt with rab": (
        ["suites", "demo", "rab_fourpixel", "sigma_opt"],
        {},
        "suites.demo.rab_fourpixel.sigma_opt is set but ensemble.method = 'rab'; set ensemble.method: certssb",
    ),
    "unknown sigma variant": (
        SSB + ["sigma_opt", "variant"],
        "ddrs",
        "sigma_opt.variant = 'ddrs' is not allowed: must be one of paper, released-code",
    ),
    "unordered sigma bounds": (SSB + ["sigma_opt", "sigma_min"], 3.0, "sigma_opt.sigma_min = 3.0 > sigma_max = 2.0"),
    "base sigma outside the bounds": (
        SSB + ["smoothing", "sigma"],
        2.5,
        "the base sigma 2.5 (smoothing.sigma, the ascent's start) is outside [sigma_min, sigma_max] = [0.05, 2.0]",
    ),
    "too many test models": (
        SSB + ["sigma_opt", "test_models"],
        51,
        "sigma_opt.test_models = 51 exceeds ensemble.models = 50",
    ),
    "target with an availability attack": (
        EXP + ["attack"],
        {"kind": "avail_uniform", "trigger": {"name": "onepixel"}, "rate": 0.01, "target": 0},
        "suites.demo.onepixel.attack.target is not used by kind 'avail_uniform'; remove it",
    ),
    "availability attack without rate": (
        EXP + ["attack"],
        {"kind": "avail_split", "trigger": {"name": "onepixel"}},
        "suites.demo.onepixel.attack is missing the key 'rate'",
    ),
    "split classes out of range": (
        EXP + ["attack"],
        {"kind": "avail_split", "trigger": {"name": "onepixel"}, "rate": 0.01, "split_classes": [0, 2]},
        "attack.split_classes = [0, 2]: need two different labels in 0..1",
    ),
    "rate on the control": (
        EXP + ["attack"],
        {"kind": "none", "trigger": {"name": "onepixel"}, "rate": 0.01},
        "attack.rate is not used by kind 'none'; remove it",
    ),
    "zero mc samples": (SSB + ["sigma_opt", "mc_samples"], 0, "sigma_opt.mc_samples = 0 is not allowed: must be >= 1"),
    "ensemble too small for its bound": (
        ["suites", "demo", "avail_split", "ensemble", "models"],
        10,
        "ensemble.models = 10 cannot certify any point with certify.aggregation soft at alpha 0.001 (its Hoeffding "
        "half-width at α′ = 0.0005 per side is 0.616 ≥ 0.5); use at least 16 models or a larger alpha",
    ),
    "trigger on the bilevel attack": (
        BL + ["attack", "trigger"],
        {"name": "onepixel"},
        "suites.demo.bilevel_ga.attack.trigger is not used by kind 'bilevel'; remove it",
    ),
    "bilevel without epsilon": (
        BL + ["attack"],
        {"kind": "bilevel", "target": 8},
        "suites.demo.bilevel_ga.attack is missing the key 'epsilon'",
    ),
    "bilevel target out of range": (BL + ["attack", "target"], 10, "attack.target = 10: the task has 10 classes"),
    "unknown bilevel victim": (
        BL + ["attack", "bilevel", "victim"],
        "trades",
        "attack.bilevel.victim = 'trades' is not allowed: must be one of ga, macer, smoothadv",
    ),
    "epsilon above 1": (BL + ["attack", "epsilon"], 1.5, "attack.epsilon = 1.5 is not allowed"),
    "backdoor without trigger": (
        EXP + ["attack"],
        {"kind": "backdoor", "rate": 0.01, "target": 0},
        "suites.demo.onepixel.attack is missing the key 'trigger'",
    ),
    "unknown baseline": (BL + ["baseline"], "nothing", "baseline = 'nothing': must name another experiment of suite"),
    "poisoned baseline": (
        BL + ["baseline"],
        "rab_fourpixel",
        "baseline = 'rab_fourpixel': the baseline must poison nothing (attack.kind: none)",
    ),
    "baseline with other certifiers": (
        ["suites", "demo", "avail_split", "baseline"],
        "bilevel_clean",
        "baseline = 'bilevel_clean': it must have the same certifiers (ensemble differs)",
    ),
    "cohen class out of range": (BL + ["cohen", "classes"], [8, 12], "cohen.classes = [8, 12]: labels [12] are not"),
    "unknown training method": (
        BL + ["cohen", "train_method"],
        "trades",
        "cohen.train_method = 'trades' is not allowed: must be one of ga, macer, smoothadv",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_values_fail_with_one_line(default, case):
    path, value, expected = CASES[case]
    with pytest.raises(ConfigError) as info:
        validate_params(edit(default, path, value))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("params.yaml: ")
    assert expected in msg


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("suites:\n  demo: [unclosed\n")
    with pytest.raises(ConfigError, match=r"p.yaml: invalid YAML at line \d+"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        validate_params(["a"])


@pytest.mark.workflow
def test_snakemake_refuses_invalid_params_before_any_job(tmp_path):
    project = copy_project(tmp_path / "p", params="params.yaml")
    text = (project / "params.yaml").read_text().replace("rate: 0.02", "rate: 1.5", 1)
    (project / "params.yaml").write_text(text)
    proc = snakemake(project, "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "params.yaml: suites.demo.onepixel.attack.rate = 1.5 is not allowed: must be < 1" in proc.stderr
    assert not (project / "data").exists() and not (project / "results").exists()
