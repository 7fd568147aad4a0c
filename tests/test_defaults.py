"""One source of defaults: the params schema.

The validator fills the schema's defaults into the config; the library's settings
dataclasses take theirs from :func:`certsmooth.schema.defaults`. These tests compare what
the library uses with the schema, and fail when a literal default creeps back into one of
the settings classes (a second copy that could drift, as SigmaConfig's steps 100 against
the schema's 20 once did).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

import pytest

from certsmooth import schema
from certsmooth.attacks import bilevel, triggers
from certsmooth.certificates import cohen
from certsmooth.config import validate_params
from certsmooth.smoothing import certssb, ga, sigma, train

# (settings class, schema block, {field: schema property} where the names differ)
CLASSES = [
    (sigma.SigmaConfig, ("sigma_opt",), {}),
    (bilevel.BilevelConfig, ("bilevel",), {}),
    (cohen.CohenConfig, ("cohen",), {}),
    (ga.GAConfig, ("cohen",), {"method": "train_method"}),
    (train.TrainConfig, ("ensemble",), {}),
    (triggers.OnePixel, ("pixel_trigger",), {}),
    (triggers.FourPixel, ("pixel_trigger",), {}),
    (triggers.Blending, ("blending_trigger",), {}),
    (triggers.BadNets, ("badnets_trigger",), {}),
    (triggers.Blend, ("blend_trigger",), {}),
]
NOT_SETTINGS = {"eps", "name"}  # SigmaConfig's p̄ clamp and a trigger's kind: constants, not params


def _schema_key(cls, field, renames):
    return renames.get(field, field)


@pytest.mark.parametrize(("cls", "path", "renames"), CLASSES, ids=lambda v: getattr(v, "__name__", None))
def test_settings_class_defaults_are_the_schema_defaults(cls, path, renames):
    want = schema.defaults(*path)
    checked = 0
    for f in dataclasses.fields(cls):
        key = _schema_key(cls, f.name, renames)
        if f.name in NOT_SETTINGS or key not in want:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue  # required: the caller passes it
        if key in {"macer", "smoothadv"}:
            want[key] = schema.defaults(*path, key)  # the schema fills the nested block's own defaults
        assert default == want[key], f"{cls.__name__}.{f.name} defaults to {default!r}, the schema to {want[key]!r}"
        checked += 1
    assert checked, f"{cls.__name__} shares no default with the schema block {path}"


def test_sigma_lr_null_means_the_variants_step_size():
    assert schema.defaults("sigma_opt")["lr"] is None
    assert sigma.SigmaConfig().lr == sigma.DEFAULT_LR["paper"]
    assert sigma.SigmaConfig(variant="released-code").lr == sigma.DEFAULT_LR["released-code"]
    assert certssb.sigma_config({}, "test").lr == sigma.DEFAULT_LR["paper"]


def test_library_tables_are_the_schema_defaults():
    assert certssb.DEFAULTS == schema.defaults("sigma_opt")
    assert ga.MACER_DEFAULTS == schema.defaults("cohen", "macer")
    assert ga.SMOOTHADV_DEFAULTS == schema.defaults("cohen", "smoothadv")


@pytest.mark.parametrize(("cls", "path", "renames"), CLASSES, ids=lambda v: getattr(v, "__name__", None))
def test_no_literal_default_in_a_settings_class(cls, path, renames):
    """A field that is a params setting may not spell its default out in the class body."""
    props = schema.block(*path).get("properties", {})
    for klass in cls.__mro__:
        if not dataclasses.is_dataclass(klass) or klass.__module__ != cls.__module__:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node in ast.walk(tree.body[0]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                name = node.target.id
                if name in NOT_SETTINGS or _schema_key(cls, name, renames) not in props:
                    continue
                literal = isinstance(node.value, ast.Constant | ast.List | ast.Dict | ast.Tuple)
                assert not literal, f"{klass.__name__}.{name} = {ast.unparse(node.value)}: take it from the schema"


def test_validator_fills_the_same_defaults():
    """What a user gets from params.yaml with a block left empty is what the library's
    classes default to."""
    cfg = {
        "default_suites": ["s"],
        "suites": {
            "s": {
                "dataset": {"name": "mnist5k", "classes": [0, 1]},
                "attacks": {"a": {"kind": "backdoor", "rate": 0.1, "target": 0, "trigger": {"name": "badnets"}}},
                "certifiers": {"c": {"kind": "cohen", "cohen": {}}},
            }
        }
    }
    out = validate_params(cfg)
    cell = out["suites"]["s"]["a/c"]
    assert cell["attack"]["trigger"] == {"name": "badnets", **schema.defaults("badnets_trigger")}
    assert dataclasses.asdict(triggers.BadNets()) == cell["attack"]["trigger"]
    filled = cell["cohen"]
    c = cohen.CohenConfig(sigma=1.0)
    assert (filled["n0"], filled["n"], filled["alpha"], filled["batch"]) == (c.n0, c.n, c.alpha, c.batch)
    assert filled["macer"] == ga.MACER_DEFAULTS and filled["smoothadv"] == ga.SMOOTHADV_DEFAULTS


def test_the_fast_yaml_loader_reads_the_same_schema():
    import yaml

    from certsmooth import schema

    text = schema.PATH.read_text()
    assert yaml.load(text, Loader=schema.LOADER) == yaml.safe_load(text)
