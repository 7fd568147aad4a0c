"""params.yaml validation: defaults are valid, suites expand into attack × certifier
cells (grids, exclusions, the baseline), and every bad value fails with one line."""

import copy

import pytest

from certsmooth.certifiers import count
from certsmooth.config import DEFAULT_SCHEMA, experiments, load_schema, load_yaml, validate_params
from certsmooth.errors import ConfigError
from conftest import REPO, copy_project, snakemake


@pytest.fixture(scope="module")
def default():
    return load_yaml(REPO / "params.yaml")


DEMO_ATTACKS = ("none", "fourpixel", "onepixel_paper", "badnets", "avail_split")


def test_default_and_test_params_are_valid(default):
    cfg = validate_params(default)
    demo = [e.name for e in experiments(cfg, ["demo"])]
    kinds = ("undefended", "rab", "certssb", "cohen", "dpa", "fa", "bagging")
    assert demo == [f"{a}/{c}" for a in DEMO_ATTACKS for c in kinds]  # the full matrix
    assert cfg["layout"]["demo"] == {"attacks": list(DEMO_ATTACKS), "baseline": "none", "excluded": {},
                                     "certifiers": {c: c for c in kinds}}  # fmt: skip
    paper = list(experiments(cfg, ["paper_rab_mnist", "paper_rab_cifar"]))
    assert len(paper) == 24 and all(e.cfg["ensemble"]["models"] == 1000 for e in paper)
    assert {e.name for e in experiments(cfg, ["paper_rab_mnist"])} == {
        f"backdoor_{t}/rab_sigma{s}"
        for t in ("onepixel", "fourpixel", "blending")
        for s in ("0p12", "0p25", "0p5", "1")
    }
    assert cfg["default_suites"] == ["demo", "mehra"]
    assert cfg["targets"]["paper_rab"] == ["paper_rab_mnist", "paper_rab_cifar"]
    tiny = validate_params(load_yaml(REPO / ".test/params.yaml"))
    assert len(list(experiments(tiny))) == 19  # demo 6 (6 pairs excluded), bilevel 4, tiny 1, count 8
    assert len(tiny["layout"]["demo"]["excluded"]) == 6
    cells = {e.name: e for e in experiments(cfg, ["demo", "mehra"])}
    bl = cells["bilevel/cohen"]  # the demo's ten-digit task
    assert bl.poisoned_dir().startswith("data/poisoned/mehra/bilevel/bilevel-ga-eps0.1-t8-")
    assert bl.cfg["attack"]["bilevel"]["lr_u"] == 0.1 and bl.cfg["baseline"] == "none/cohen"  # defaults filled
    assert cells["none/rab"].poisoned_dir().endswith("/badnets-k4-v1-solid-none-s0")
    assert cells["fourpixel/rab"].cfg["baseline"] == "none/rab" and "baseline" not in cells["none/rab"].cfg
    ssb = list(experiments(cfg, ["paper_certssb_mnist", "paper_certssb_cifar"]))
    assert len(ssb) == 24 and all(e.cfg["certifier"] == "certssb" and e.cfg["ensemble"]["models"] == 1000 for e in ssb)
    mehra = {e.name for e in experiments(cfg, ["paper_mehra_mnist"])}
    assert len(mehra) == 12 and "ga/smoothadv" in mehra  # GA poisons on a SmoothAdv victim: transfer
    lorenz = {e.name for e in experiments(cfg, ["paper_lorenz"])}
    assert "uniform_rate0p005/rab" in lorenz and len(lorenz) == 14
    # the count certificates' paper targets: the papers' k (and d) on the clean sets, NiN
    dpa = list(experiments(cfg, cfg["targets"]["paper_dpa"]))
    assert sorted(e.cfg["count"]["k"] for e in dpa) == [50, 50, 100, 200, 250, 400, 1000, 1200, 3000]
    assert all(e.cfg["count"]["arch"] == "nin" and e.cfg["count"]["epochs"] == 200 for e in dpa)
    fa = list(experiments(cfg, cfg["targets"]["paper_fa"]))
    assert sorted((e.cfg["dataset"]["name"], e.cfg["count"]["k"], e.cfg["count"]["d"]) for e in fa)[:4] == [
        ("cifar10", 50, 16),
        ("cifar10", 50, 32),
        ("cifar10", 250, 16),
        ("cifar10", 250, 32),
    ]
    assert max(count.num_models(e) for e in fa) == 38_400  # MNIST k = 1200, d = 32
    bag = {e.name: e.cfg["count"] for e in experiments(cfg, ["paper_bagging"])}
    assert sorted(bag) == ["none/bagging_k100", "none/bagging_k30", "none/bagging_k50"]
    assert all(c["models"] == 1000 and c["alpha"] == 0.001 and c["alpha_over_points"] for c in bag.values())


def test_certssb_gets_default_sigma_opt_and_its_own_folders(default):
    from certsmooth.smoothing.certssb import DEFAULTS

    cfg = copy.deepcopy(default)
    del cfg["suites"]["demo"]["certifiers"]["certssb"]["sigma_opt"]
    out = validate_params(cfg)
    assert out["suites"]["demo"]["fourpixel/certssb"]["sigma_opt"] == DEFAULTS
    assert "sigma_opt" not in out["suites"]["demo"]["fourpixel/rab"]
    exps = {e.name: e for e in experiments(validate_params(default), ["demo"])}
    rab, ssb = exps["fourpixel/rab"], exps["fourpixel/certssb"]
    assert "/models/rab-" in rab.paths["weights"][0] and "/models/certssb-" in ssb.paths["weights"][0]
    assert ssb.paths["runs"]["joint"].startswith(ssb.paths["test_sigma"] + "/")
    assert rab.results_dir() == "results/demo/fourpixel/rab"
    # the test-point settings do not touch the trained models; the training-sample ones do
    edited = copy.deepcopy(default)
    opt = edited["suites"]["demo"]["certifiers"]["certssb"]["sigma_opt"]
    opt["test_steps"] = 7
    other = {e.name: e for e in experiments(validate_params(edited), ["demo"])}["fourpixel/certssb"]
    assert other.paths["weights"] == ssb.paths["weights"] and other.paths["test_sigma"] != ssb.paths["test_sigma"]
    opt["steps"] = 7
    other = {e.name: e for e in experiments(validate_params(edited), ["demo"])}["fourpixel/certssb"]
    assert other.paths["weights"] != ssb.paths["weights"] and other.paths["sigma"] != ssb.paths["sigma"]
    opt["batch_size"] = 7  # no effect on results
    again = {e.name: e for e in experiments(validate_params(edited), ["demo"])}["fourpixel/certssb"]
    assert again.paths["sigma"] == other.paths["sigma"]


def test_defaults_are_filled_without_sharing(default):
    cfg = copy.deepcopy(default)
    rab = cfg["suites"]["demo"]["certifiers"]["rab"]
    del rab["sigma"], cfg["suites"]["demo"]["seed"], cfg["figures"]
    out = validate_params(cfg)
    assert out["suites"]["demo"]["fourpixel/rab"]["smoothing"] == {"sigma": 1.0}
    assert out["suites"]["demo"]["fourpixel/rab"]["seed"] == 0
    assert out["figures"] == {"dpi": 150, "n_examples": 6, "context": "paper"}
    assert "sigma" not in cfg["suites"]["demo"]["certifiers"]["rab"]  # input not modified
    a, b = out["suites"]["demo"]["fourpixel/rab"], out["suites"]["demo"]["avail_split/rab"]
    assert a["ensemble"] == b["ensemble"] and a["ensemble"] is not b["ensemble"]


def test_attack_kinds_name_their_folders(default):
    cfg = copy.deepcopy(default)
    attacks = cfg["suites"]["demo"]["attacks"]
    attacks["a"] = {"kind": "avail_split", "trigger": {"name": "onepixel"}, "rate": 0.01}
    attacks["b"] = {"kind": "backdoor", "trigger": {"name": "onepixel"}, "rate": 0.02, "target": 0}
    exps = {e.name: e for e in experiments(validate_params(cfg), ["demo"])}
    assert exps["a/rab"].poisoned_dir() == "data/poisoned/demo/a/onepixel-d1-r0.01-split0_1-s0"
    assert exps["b/cohen"].poisoned_dir() == "data/poisoned/demo/b/onepixel-d1-r0.02-t0-s0"


def test_grids_expand_into_named_entries_and_combine(default):
    cfg = copy.deepcopy(default)
    demo = cfg["suites"]["demo"]
    demo["grid"] = {"certifiers.rab.sigma": [0.25, 0.5], "certifiers.rab.ensemble.models": [20, 30],
                    "attacks.fourpixel.trigger.delta": [0.1, 0.2]}  # fmt: skip
    out = validate_params(cfg)
    certs = list(out["layout"]["demo"]["certifiers"])
    assert certs == ["undefended", "rab_sigma0p25_models20", "rab_sigma0p25_models30", "rab_sigma0p5_models20",
                     "rab_sigma0p5_models30", "certssb", "cohen", "dpa", "fa", "bagging"]  # fmt: skip
    assert out["layout"]["demo"]["attacks"][:3] == ["none", "fourpixel_delta0p1", "fourpixel_delta0p2"]
    cell = out["suites"]["demo"]["fourpixel_delta0p2/rab_sigma0p5_models30"]
    assert cell["smoothing"]["sigma"] == 0.5 and cell["ensemble"]["models"] == 30
    assert cell["attack"]["trigger"]["delta"] == 0.2


def test_exclusions_and_the_baseline(default):
    cfg = copy.deepcopy(default)
    demo = cfg["suites"]["demo"]
    demo["exclude"] = [{"attack": "badnets", "certifier": "certssb", "why": "slow"},
                       {"attack": "none", "certifier": "cohen", "why": "no baseline"}]  # fmt: skip
    out = validate_params(cfg)
    names = set(out["suites"]["demo"])
    assert "badnets/certssb" not in names and "none/cohen" not in names and len(names) == 33
    assert out["layout"]["demo"]["excluded"] == {"badnets/certssb": "slow", "none/cohen": "no baseline"}
    assert "baseline" not in out["suites"]["demo"]["fourpixel/cohen"]  # its baseline cell is excluded
    demo["exclude"] = [{"attack": a, "certifier": c, "why": "x"} for a in DEMO_ATTACKS for c in demo["certifiers"]]
    with pytest.raises(ConfigError, match="leaves no .attack, certifier. pair to run"):
        validate_params(cfg)


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


D = ["suites", "demo"]
ATT = D + ["attacks", "fourpixel"]
RAB = D + ["certifiers", "rab"]
SSB = D + ["certifiers", "certssb"]
BL = ["suites", "mehra", "attacks", "bilevel"]  # the demo's ten-digit task
CO = D + ["certifiers", "cohen"]
CASES = {
    "negative sigma": (RAB + ["sigma"], -0.5, "suites.demo.certifiers.rab.sigma = -0.5 is not allowed: must be > 0"),
    "zero sigma": (RAB + ["sigma"], 0, "rab.sigma = 0 is not allowed: must be > 0"),
    "rate above one": (ATT + ["rate"], 1.5, "attacks.fourpixel.rate = 1.5 is not allowed: must be < 1"),
    "rate zero": (ATT + ["rate"], 0.0, "fourpixel.rate = 0.0 is not allowed: must be > 0"),
    "rate is text": (ATT + ["rate"], "2%", "fourpixel.rate = '2%' is not allowed: must be of type number"),
    "unknown trigger": (
        ATT + ["trigger", "name"],
        "wanet",
        "fourpixel.trigger.name = 'wanet' is not allowed: must be one of onepixel, fourpixel, blending, badnets, blend",
    ),
    "unknown attack kind": (ATT + ["kind"], "clean_label", "fourpixel.kind = 'clean_label' is not allowed: must be"),
    "unknown dataset": (
        D + ["dataset", "name"],
        "cifar100",
        "suites.demo.dataset.name = 'cifar100': no such dataset; allowed: mnist5k, mnist, fashion_mnist, cifar10, "
        "gtsrb, or declare your own under datasets:",
    ),
    "unknown suite key": (
        D + ["sigma"],
        0.5,
        "suites.demo has unknown key 'sigma'; allowed keys: attacks, baseline, certifiers, dataset, exclude, grid, "
        "seed",
    ),
    "unknown certifier key": (
        RAB + ["attack"],
        {},
        "certifiers.rab has unknown key 'attack'; allowed keys: certify, cohen, count, ensemble, kind, sigma, "
        "sigma_opt",
    ),
    "key of another trigger": (
        ATT + ["trigger", "alpha"],
        0.2,
        "fourpixel.trigger has unknown key 'alpha'; allowed keys: delta, name, positions",
    ),
    "unknown top-level key": (["sigma"], 1.0, "<top level> has unknown key 'sigma'"),
    "missing rate": (ATT + ["rate"], KeyError, "suites.demo.attacks.fourpixel is missing the key 'rate'"),
    "missing kind": (RAB + ["kind"], KeyError, "suites.demo.certifiers.rab is missing the key 'kind'"),
    "negative delta": (ATT + ["trigger", "delta"], -1, "fourpixel.trigger.delta = -1 is not allowed: must be > 0"),
    "bad split fraction": (
        D + ["dataset", "split"],
        {"test_fraction": 1.0, "seed": 0},
        "dataset.split.test_fraction = 1.0 is not allowed: must be < 1",
    ),
    "bad split word": (D + ["dataset", "split"], "random", "dataset.split = 'random' is not allowed: must be"),
    "negative seed": (D + ["seed"], -3, "demo.seed = -3 is not allowed: must be >= 0"),
    # semantic checks (beyond the schema)
    "class not in dataset": (D + ["dataset", "classes"], [0, "airplane"], "dataset.classes: 'airplane' is not a class"),
    "target out of range": (ATT + ["target"], 2, "suites.demo.attacks.fourpixel.target = 2: the task has 2 classes"),
    "official split of mnist5k": (D + ["dataset", "split"], "official", "mnist5k has no official split"),
    "badnets patch too large": (
        ATT + ["trigger"],
        {"name": "badnets", "size": 40},
        "a 40×40 patch at (-12, -12) does not fit",
    ),
    "unknown default suite": (["default_suites"], ["paper"], "default_suites lists 'paper', which is not a suite"),
    "target named like a suite": (["targets"], {"demo": ["demo"]}, "targets.demo: is also the name of a suite"),
    "too many jobs": (
        RAB + ["ensemble", "jobs"],
        11,
        "suites.demo.certifiers.rab.ensemble.jobs = 11: must be between 1 and the number of lanes",
    ),
    "unknown architecture": (
        RAB + ["ensemble", "arch"],
        "vgg16",
        "ensemble.arch = 'vgg16' is not allowed: must be one of mnist_cnn, preact_resnet32, nin, resnet18",
    ),
    "architecture does not fit": (
        D + ["dataset"],
        {"name": "cifar10", "classes": ["bird", "airplane"]},
        "undefended.undefended.arch = 'mnist_cnn' does not fit 32×32 images",
    ),
    "unknown scope": (RAB + ["certify", "scopes"], ["test"], "certify.scopes.0 = 'test' is not allowed: must be"),
    "alpha too large": (RAB + ["certify", "alpha"], 0.5, "certify.alpha = 0.5 is not allowed: must be < 0.5"),
    "bad device": (RAB + ["ensemble", "device"], "gpu", "ensemble.device = 'gpu' is not allowed: must match"),
    "bad attack name": (D + ["attacks", "one-pixel"], {"kind": "none"}, "has an invalid name 'one-pixel'"),
    "method in the ensemble": (SSB + ["ensemble", "method"], "rab", "ensemble has unknown key 'method'"),
    "sigma_opt with rab": (RAB + ["sigma_opt"], {}, "suites.demo.certifiers.rab.sigma_opt is not used by kind 'rab'"),
    "unknown sigma variant": (
        SSB + ["sigma_opt", "variant"],
        "ddrs",
        "sigma_opt.variant = 'ddrs' is not allowed: must be one of paper, released-code",
    ),
    "unordered sigma bounds": (SSB + ["sigma_opt", "sigma_min"], 3.0, "sigma_opt.sigma_min = 3.0 > sigma_max = 2.0"),
    "base sigma outside the bounds": (
        SSB + ["sigma"],
        2.5,
        "the base sigma 2.5 (smoothing.sigma, the ascent's start) is outside [sigma_min, sigma_max] = [0.05, 2.0]",
    ),
    "too many test models": (SSB + ["sigma_opt", "test_models"], 51, "sigma_opt.test_models = 51 exceeds ensemble"),
    "target with an availability attack": (
        ATT,
        {"kind": "avail_uniform", "trigger": {"name": "onepixel"}, "rate": 0.01, "target": 0},
        "suites.demo.attacks.fourpixel.target is not used by kind 'avail_uniform'; remove it",
    ),
    "availability attack without rate": (
        ATT,
        {"kind": "avail_split", "trigger": {"name": "onepixel"}},
        "suites.demo.attacks.fourpixel is missing the key 'rate'",
    ),
    "split classes out of range": (
        ATT,
        {"kind": "avail_split", "trigger": {"name": "onepixel"}, "rate": 0.01, "split_classes": [0, 2]},
        "attacks.fourpixel.split_classes = [0, 2]: need two different labels in 0..1",
    ),
    "boundary attack on a patch trigger": (
        ATT,
        {"kind": "avail_boundary", "trigger": {"name": "badnets"}, "rate": 0.01, "offset": 0.25},
        "attacks.fourpixel.trigger.name = 'badnets' is not allowed: must be 'corners'",
    ),
    "boundary offset leaving [0, 1]": (
        ATT,
        {"kind": "avail_boundary", "trigger": {"name": "corners", "value": 0.9}, "rate": 0.01, "offset": 0.25},
        "attacks.fourpixel.offset = 0.25: the poisons' patches at 0.9 ± 0.25 leave [0, 1]; use an offset of at "
        "most 0.1",
    ),
    "boundary classes outside the task": (
        ATT,
        {"kind": "avail_boundary", "trigger": {"name": "corners"}, "rate": 0.01, "offset": 0.25,
         "boundary_classes": [0, 3]},
        "attacks.fourpixel.boundary_classes = [0, 3]: need 2 labels (one per corner patch, trigger.count = 2), "
        "at least two different, in 0..1",
    ),
    "boundary without offset": (
        ATT,
        {"kind": "avail_boundary", "trigger": {"name": "corners"}, "rate": 0.01},
        "suites.demo.attacks.fourpixel is missing the key 'offset'",
    ),
    "shared sources on another availability attack": (
        ATT,
        {"kind": "avail_split", "trigger": {"name": "onepixel"}, "rate": 0.01, "shared_sources": True},
        "attacks.fourpixel.shared_sources is not used by kind 'avail_split'; remove it",
    ),
    "shared sources not a boolean": (
        ATT,
        {"kind": "avail_boundary", "trigger": {"name": "corners"}, "rate": 0.01, "offset": 0.25,
         "shared_sources": "yes"},
        "attacks.fourpixel.shared_sources = 'yes' is not allowed: must be of type boolean",
    ),
    "rate on the control": (
        D + ["attacks", "none"],
        {"kind": "none", "trigger": {"name": "onepixel"}, "rate": 0.01},
        "attacks.none.rate is not used by kind 'none'; remove it",
    ),
    "zero mc samples": (SSB + ["sigma_opt", "mc_samples"], 0, "sigma_opt.mc_samples = 0 is not allowed: must be >= 1"),
    "ensemble too small for its bound": (
        RAB + ["ensemble", "models"],
        10,
        "ensemble.models = 10 cannot certify any point with certify.aggregation votes at alpha 0.001 (even unanimous "
        "votes give p_A,low = 0.468 ≤ 0.5 at α′ = 0.0005 per side); use at least 11 models or a larger alpha",
    ),
    "trigger on the bilevel attack": (
        BL + ["trigger"],
        {"name": "onepixel"},
        "suites.mehra.attacks.bilevel.trigger is not used by kind 'bilevel'; remove it",
    ),
    "bilevel without epsilon": (BL + ["epsilon"], KeyError,
                                "suites.mehra.attacks.bilevel is missing the key 'epsilon'"),  # fmt: skip
    "bilevel target out of range": (BL + ["target"], 10, "attacks.bilevel.target = 10: the task has 10 classes"),
    "unknown bilevel victim": (
        BL + ["bilevel", "victim"],
        "trades",
        "bilevel.bilevel.victim = 'trades' is not allowed: must be one of ga, macer, smoothadv",
    ),
    "epsilon above 1": (BL + ["epsilon"], 1.5, "bilevel.epsilon = 1.5 is not allowed"),
    "backdoor without trigger": (
        ATT,
        {"kind": "backdoor", "rate": 0.01, "target": 0},
        "suites.demo.attacks.fourpixel is missing the key 'trigger'",
    ),
    "unknown baseline": (D + ["baseline"], "nothing", "suites.demo.baseline = 'nothing': must name an attack of kind"),
    "poisoned baseline": (D + ["baseline"], "fourpixel", "baseline = 'fourpixel': must name an attack of kind none"),
    "cohen class out of range": (CO + ["cohen", "classes"], [1, 12], "cohen.classes = [1, 12]: labels [12] are not"),
    "unknown training method": (
        CO + ["cohen", "train_method"],
        "trades",
        "cohen.train_method = 'trades' is not allowed: must be one of ga, macer, smoothadv",
    ),
    "cohen architecture does not fit": (CO + ["cohen", "arch"], "resnet18", "cohen.arch = 'resnet18' does not fit"),
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
    assert "params.yaml: suites." in proc.stderr and ".rate = 1.5 is not allowed: must be < 1" in proc.stderr
    assert not (project / "data").exists() and not (project / "results").exists()


def test_the_schema_and_the_registries_name_the_same_kinds_and_blocks():
    """A certifier or attack kind is declared once, in its record: the schema's choices and
    blocks come from the records, and every block a certifier reads is a $def."""
    from certsmooth.attacks.kinds import ATTACKS
    from certsmooth.certifiers import CERTIFIERS

    defs = load_schema()["$defs"]
    assert defs["certifier"]["properties"]["kind"]["enum"] == list(CERTIFIERS)
    assert defs["cell"]["properties"]["certifier"]["enum"] == list(CERTIFIERS)
    assert set(defs["attack"]["properties"]["kind"]["enum"]) == set(ATTACKS)
    for kind in CERTIFIERS.values():
        for block in kind.blocks:
            assert block in defs, (kind.kind, block)
            assert block in defs["certifier"]["properties"] and block in defs["cell"]["properties"], block
    for kind in ATTACKS.values():  # the keys a kind takes are keys of the attack schema
        assert kind.keys <= set(defs["attack"]["properties"]), kind.kind
        assert set(kind.required) <= kind.keys, kind.kind
    raw = load_yaml(DEFAULT_SCHEMA)["$defs"]  # the file itself lists no kind
    assert "enum" not in raw["certifier"]["properties"]["kind"] and "allOf" not in raw["attack"]


@pytest.mark.parametrize("shared_first", [True, False])
def test_an_error_in_an_anchored_entry_names_the_suite_that_comes_first(default, shared_first):
    """Suites sharing entries through a YAML anchor share their errors: the message names the
    first of them in file order (where the entry is written), whatever jsonschema ranks first."""
    cfg = copy.deepcopy(default)
    demo = cfg["suites"]["demo"]
    alias = {**demo, "attacks": demo["attacks"]}  # the same attack objects, as `attacks: *demo_attacks`
    rest = {k: v for k, v in cfg["suites"].items() if k == "demo" or v.get("attacks") is not demo["attacks"]}
    cfg["suites"] = {"shared": alias, **rest} if shared_first else {**rest, "shared": alias}
    del demo["attacks"]["fourpixel"]["rate"]
    first = "shared" if shared_first else "demo"
    with pytest.raises(ConfigError, match=rf"suites\.{first}\.attacks\.fourpixel is missing the key 'rate'"):
        validate_params(cfg)
