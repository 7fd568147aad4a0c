"""params.yaml: loading, schema validation with one-line errors, and derived names.

The schema lives in ``workflow/schemas/params.schema.yaml`` (JSON Schema 2020-12). The
validator fills in defaults (on a copy) and reports the single most relevant error as
one line: the dotted key, the value, and what is allowed. Semantic checks that a schema
cannot express (class names of a dataset, target label in range, trigger geometry)
follow, so a bad value fails before any job starts.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match

from certsmooth import schema
from certsmooth.errors import ConfigError

DEFAULT_SCHEMA = schema.PATH


# ---------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps
    the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` (merged below, may repeat keys)
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (also at line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; pass an existing params file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}); pass a readable YAML file") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}; fix the syntax") from None


def load_schema(path: str | Path = DEFAULT_SCHEMA) -> dict:
    return load_yaml(path)


# ---------------------------------------------------------------- validation


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _dotted(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _described(error: ValidationError) -> str:
    desc = error.schema.get("description") if isinstance(error.schema, dict) else None
    return f" ({desc})" if desc else ""


def format_error(error: ValidationError, source: str = "params.yaml") -> str:
    """One line: where, which value, what is allowed."""
    key = _dotted(error.absolute_path)
    v, sch, inst = error.validator, error.validator_value, error.instance
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        unknown = [k for k in inst if k not in allowed and not any(re.search(p, k) for p in patterns)]
        return (
            f"{source}: {key} has unknown key {', '.join(map(repr, unknown))}; "
            f"allowed keys: {', '.join(allowed) or 'none'}"
        )
    if v == "required":
        missing = [k for k in sch if isinstance(inst, dict) and k not in inst]
        return f"{source}: {key} is missing the key {', '.join(map(repr, missing))}; add it"
    if "propertyNames" in error.absolute_schema_path:
        return (
            f"{source}: {key} has an invalid name {inst!r}: must match {error.schema.get('pattern')}{_described(error)}"
        )
    what = {
        "enum": lambda: f"must be one of {', '.join(map(str, sch))}",
        "const": lambda: f"must be {sch!r}",
        "type": lambda: f"must be of type {' or '.join(sch) if isinstance(sch, list) else sch}",
        "minimum": lambda: f"must be >= {sch}",
        "maximum": lambda: f"must be <= {sch}",
        "exclusiveMinimum": lambda: f"must be > {sch}",
        "exclusiveMaximum": lambda: f"must be < {sch}",
        "minItems": lambda: f"must have at least {sch} items",
        "maxItems": lambda: f"must have at most {sch} items",
        "minProperties": lambda: f"must have at least {sch} entries",
        "minLength": lambda: f"must have at least {sch} characters",
        "pattern": lambda: f"must match {sch}",
    }.get(v, lambda: error.message)()
    return f"{source}: {key} = {_short(inst)} is not allowed: {what}{_described(error)}"


def validate_params(config: Any, schema: dict | None = None, source: str = "params.yaml") -> dict:
    """Validated deep copy of ``config``, with the suites of its ``include`` files and the
    defaults filled in; raises ConfigError naming the file a suite is written in."""
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, found {type(config).__name__}")
    config = copy.deepcopy(config)
    origin = include_suites(config, source)
    try:
        return _validated(config, schema, source)
    except ConfigError as exc:  # a suite of an included file: name that file
        msg = str(exc)
        m = re.match(rf"{re.escape(source)}: suites\.(\w+)", msg)
        if m and m.group(1) in origin:
            msg = origin[m.group(1)] + msg[len(source) :]
        raise ConfigError(msg) from None


def include_suites(config: dict, source: str = "params.yaml") -> dict[str, str]:
    """Merge the suites of the files ``config["include"]`` lists (paths from the folder of the
    file ``source``, or the working folder; each holds ``suites:`` and ``_`` anchor keys only)
    into ``config["suites"]``, in place; the included suite names, each with its file."""
    files = config.get("include", [])
    base = Path(source).parent if Path(source).is_file() else Path()
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(f"{source}: include = {files!r}: give a list of YAML files of suites")
    if files and not isinstance(config.get("suites"), dict):
        config["suites"] = {}
    where = dict.fromkeys(config.get("suites") or {}, source)
    origin = {}
    for f in (str(base / f) for f in files):
        data = load_yaml(f)  # a missing file, its syntax, duplicate keys: one line naming it
        if not isinstance(data, dict) or not isinstance(data.get("suites"), dict):
            raise ConfigError(f"{f} (in {source}'s include): expected a mapping with a 'suites' mapping; add it")
        for key in data:
            if key != "suites" and not str(key).startswith("_"):
                raise ConfigError(
                    f"{f}: {key!r}: an included file holds suites (and '_' anchors) only; move it to {source}"
                )
        for name, spec in data["suites"].items():
            if name in where:
                raise ConfigError(f"{f}: suites.{name} is also a suite of {where[name]}; give each suite one name")
            config["suites"][name] = spec
            where[name] = origin[name] = f
    return origin


def _validated(config: dict, schema: dict | None, source: str) -> dict:
    schema = load_schema() if schema is None else schema
    _check_finite(config, source)
    expand_grids(config, source)
    validator = _Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        raise ConfigError(format_error(_first_suite_match(errors, config), source))
    expand_suites(config, source)
    cells = _Validator(_cells_schema(schema))  # the cells of every suite, with their blocks' defaults
    errors = list(cells.iter_errors({"suites": config["suites"]}))
    if errors:
        raise ConfigError(format_error(_first_suite_match(errors, config), source))
    _check_semantics(config, source)
    return config


def _first_suite_match(errors: list, config: dict):
    """The most relevant error of the first suite (in file order) that has one. Suites that
    share an entry through a YAML anchor (``attacks: *demo_attacks``) share its errors too;
    this names the first of them, where the entry is written, not whichever jsonschema ranks first."""
    order = {name: i for i, name in enumerate(config.get("suites") or {})}

    def rank(err) -> int:
        path = list(err.absolute_path)
        return order.get(path[1], len(order)) if len(path) > 1 and path[0] == "suites" else -1

    first = min(rank(e) for e in errors)
    return best_match([e for e in errors if rank(e) == first])


# ---------------------------------------------------------------- suites: grids and cells


def _grid_suffix(leaf: str, value: Any, index: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{leaf}{index}"
    return f"{leaf}{value:g}".replace(".", "p").replace("-", "m")


def expand_grids(config: dict, source: str = "params.yaml") -> None:
    """Each suite's ``grid``: ``{"<attacks|certifiers>.<name>.<key>[.<key>...]": [values]}``
    replaces the entry ``<name>`` by one copy per value, named ``<name>_<value>`` (numbers
    as ``<key><value>``, e.g. ``rab_sigma0p25``); several keys of one entry give every
    combination. In place, before validation."""
    for suite, spec in (config.get("suites") or {}).items():
        if not isinstance(spec, dict) or "grid" not in spec:
            continue
        grid = spec.pop("grid")
        if not isinstance(grid, dict):
            raise ConfigError(f"{source}: suites.{suite}.grid must map dotted keys to lists of values")
        origin: dict[str, str] = {}  # expanded name -> the entry's name in params.yaml
        for path, values in grid.items():
            where = f"{source}: suites.{suite}.grid.{path}"
            parts = str(path).split(".")
            if len(parts) < 3 or parts[0] not in ("attacks", "certifiers"):
                raise ConfigError(f"{where}: a grid key is attacks.<name>.<key> or certifiers.<name>.<key>")
            group, name, keys = parts[0], parts[1], parts[2:]
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where} = {values!r}: give a non-empty list of values")
            entries = spec.get(group)
            targets = [n for n in (entries or {}) if origin.get(n, n) == name]
            if not targets:
                raise ConfigError(f"{where}: suite {suite!r} has no {group[:-1]} named {name!r}")
            expanded = {}
            for n, entry in entries.items():
                if n not in targets:
                    expanded[n] = entry
                    continue
                for i, v in enumerate(values):
                    new = copy.deepcopy(entry)
                    node = new
                    for k in keys[:-1]:
                        node = node.setdefault(k, {})
                        if not isinstance(node, dict):
                            raise ConfigError(f"{where}: {k!r} of {group}.{n} is not a mapping")
                    node[keys[-1]] = copy.deepcopy(v)
                    name_v = f"{n}_{_grid_suffix(keys[-1], v, i)}"
                    origin[name_v] = origin.get(n, n)
                    expanded[name_v] = new
            spec[group] = expanded


def expand_suites(config: dict, source: str = "params.yaml") -> None:
    """Cross every suite's attacks with its certifiers: ``config["suites"][suite]`` becomes
    ``{"<attack>/<certifier>": cell}`` (one certification of one poisoned set; the cells of
    an attack share its poisoned set, the runs of a certifier its settings), and
    ``config["layout"][suite]`` records the rows, columns, baseline and excluded pairs."""
    from certsmooth.certifiers import CERTIFIERS

    layout, all_cells = {}, {}
    for suite, spec in config["suites"].items():
        where = f"{source}: suites.{suite}"
        attacks, certs = spec["attacks"], spec["certifiers"]
        plain = [a for a, cfg in attacks.items() if cfg["kind"] == "none"]
        base = spec.get("baseline", plain[0] if len(plain) == 1 else None)
        if base is not None and (base not in attacks or attacks[base]["kind"] != "none"):
            raise ConfigError(
                f"{where}.baseline = {base!r}: must name an attack of kind none ({', '.join(plain) or 'none'})"
            )
        excluded = {}
        for e in spec.get("exclude", []):
            if e["attack"] not in attacks or e["certifier"] not in certs:
                raise ConfigError(
                    f"{where}.exclude: ({e['attack']!r}, {e['certifier']!r}) is not an (attack, certifier) of the suite"
                )
            excluded[f"{e['attack']}/{e['certifier']}"] = e["why"]
        for what, names in (("attacks", attacks), ("certifiers", certs)):
            if "figures" in names:  # results/<suite>/figures and results/<suite>/<attack>/figures
                raise ConfigError(
                    f"{where}.{what}.figures: the name 'figures' is reserved for the figure folders; rename it"
                )
        blocks = {b for k in CERTIFIERS.values() for b in k.blocks}
        for c, cfg in certs.items():
            kind = CERTIFIERS[cfg["kind"]]
            for block in sorted(blocks):
                if block in cfg and block not in kind.blocks:
                    raise ConfigError(f"{where}.certifiers.{c}.{block} is not used by kind {cfg['kind']!r}; remove it")
        for a, cfg in attacks.items():
            if cfg["kind"] in ("bilevel", "avail_bilevel") and cfg.get("bilevel", {}).get("sigma") is None:
                raise ConfigError(
                    f"{where}.attacks.{a}.bilevel.sigma is not set: the poisons are built once for every certifier, "
                    "so give the σ of their surrogate (e.g. the Cohen certifier's)"
                )
            if cfg["kind"] == "bilevel" and cfg.get("bilevel", {}).get("keep_trigger"):
                raise ConfigError(
                    f"{where}.attacks.{a}.bilevel.keep_trigger = true: kind bilevel has no trigger to keep "
                    "(it is for avail_bilevel); remove it"
                )
        cells = {}
        for a, acfg in attacks.items():
            for c, ccfg in certs.items():
                if f"{a}/{c}" in excluded:
                    continue
                kind = ccfg["kind"]
                cell = {"seed": spec["seed"], "dataset": copy.deepcopy(spec["dataset"]), "attack": copy.deepcopy(acfg),
                        "smoothing": {"sigma": ccfg["sigma"]}, "certifier": kind}  # fmt: skip
                for block in CERTIFIERS[kind].blocks:
                    cell[block] = copy.deepcopy(ccfg.get(block, {}))
                if base is not None and a != base and f"{base}/{c}" not in excluded:
                    cell["baseline"] = f"{base}/{c}"
                cells[f"{a}/{c}"] = cell
        if not cells:
            raise ConfigError(f"{where}.exclude leaves no (attack, certifier) pair to run; exclude fewer")
        layout[suite] = {"attacks": list(attacks), "certifiers": {c: cfg["kind"] for c, cfg in certs.items()},
                         "baseline": base, "excluded": excluded}  # fmt: skip
        all_cells[suite] = cells
    config["suites"] = all_cells
    config["layout"] = layout


def _cells_schema(schema: dict) -> dict:
    """The schema of the expanded suites (``$defs.cell``), for a second pass with defaults."""
    return {
        "$schema": schema.get("$schema"),
        "$defs": schema["$defs"],
        "type": "object",
        "properties": {"suites": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": {"$ref": "#/$defs/cell"}}}},
    }  # fmt: skip


def _check_finite(node: Any, source: str, path: tuple = ()) -> None:
    """No NaN or infinity anywhere (YAML's .nan and .inf pass every JSON-schema bound)."""
    if isinstance(node, dict):
        for k, v in node.items():
            _check_finite(v, source, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, source, (*path, i))
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"{source}: {_dotted(path)} = {node} is not allowed: numbers must be finite; give a number")


def _check_semantics(config: dict, source: str) -> None:
    from certsmooth.attacks.triggers import make_trigger
    from certsmooth.data.prepared import resolve_classes
    from certsmooth.data.sources import SOURCES, USER, class_counts, get_source, register_user_datasets

    try:
        register_user_datasets(config["datasets"])
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    rules = rule_names()
    for group in ("suites", "targets"):
        for name in config[group]:
            if name in rules:
                raise ConfigError(
                    f"{source}: {group}.{name}: {name!r} is the name of a rule of the workflow (a suite or target "
                    f"becomes a rule of its name); rename it (the rules: {', '.join(sorted(rules))})"
                )
    for target, suites in config["targets"].items():
        missing = [s for s in suites if s not in config["suites"]]
        if missing or target in config["suites"]:
            raise ConfigError(
                f"{source}: targets.{target}: "
                + (f"names no suite {missing[0]!r}" if missing else "is also the name of a suite; rename one")
            )
    for suite in config["default_suites"]:
        if suite not in config["suites"]:
            raise ConfigError(
                f"{source}: default_suites lists {suite!r}, which is not a suite; "
                f"defined suites: {', '.join(config['suites'])}"
            )
    for exp in experiments(config):
        try:
            ds = exp.cfg["dataset"]
            if ds["name"] not in SOURCES and ds["name"] not in USER:
                raise ConfigError(
                    f"dataset.name = {ds['name']!r}: no such dataset; allowed: {', '.join([*SOURCES, *USER])}, "
                    "or declare your own under datasets: (docs/workflow.md)"
                )
            classes = resolve_classes(ds["name"], ds["classes"])
            source_info = get_source(ds["name"])
            split = ds.get("split", "official" if source_info.has_official_split else None)
            if split == "official" and not source_info.has_official_split:
                raise ConfigError(
                    f"dataset.split = 'official': {ds['name']} has no official split; "
                    "use split: {test_fraction: 0.2, seed: 0}"
                )
            if split not in (None, "official") and source_info.has_official_split:
                raise ConfigError(f"dataset.split = {split!r}: {ds['name']} has an official split; use 'official'")
            counts = class_counts(ds["name"], classes, split)  # (train, test) per label, where known now
            attack = exp.cfg["attack"]
            _check_attack_keys(attack)
            if attack["kind"] == "avail_split":
                a, b = attack.get("split_classes", [0, 1])
                if a == b or max(a, b) >= len(classes):
                    raise ConfigError(
                        f"attack.split_classes = {[a, b]}: need two different labels in 0..{len(classes) - 1}"
                    )
            if attack["kind"] in ("backdoor", "bilevel") and attack["target"] >= len(classes):
                raise ConfigError(
                    f"attack.target = {attack['target']}: the task has {len(classes)} classes, "
                    f"so the target must be in 0..{len(classes) - 1}"
                )
            trigger = None
            if "trigger" in attack:
                trigger = make_trigger(attack["trigger"])
                trigger.pattern(source_info.shape)  # checks positions / patch geometry
                if attack["kind"] == "avail_boundary":
                    from certsmooth.attacks.boundary import check_settings

                    check_settings(trigger, attack["offset"], attack.get("boundary_classes"), len(classes))
            if counts is not None:
                _check_rate(attack, counts[0], trigger)
            if exp.has_cohen:
                from certsmooth.models.inputs import check_fits

                try:
                    check_fits(exp.cfg["cohen"]["arch"], source_info.shape)
                except ConfigError as exc:
                    raise ConfigError(f"cohen.{exc}") from None
            if exp.has_cohen and exp.cfg["cohen"]["classes"] is not None:
                bad = [c for c in exp.cfg["cohen"]["classes"] if c >= len(classes)]
                if bad:
                    raise ConfigError(
                        f"cohen.classes = {exp.cfg['cohen']['classes']}: labels {bad} are not in 0..{len(classes) - 1}"
                    )
            if exp.has_cohen and counts is not None and counts[1] is not None:
                _check_cohen_points(exp.cfg["cohen"], counts[1])
            _check_sigma_opt(exp)
            if "ensemble" in exp.cfg:
                from certsmooth.lanes import partition_lanes
                from certsmooth.models.inputs import check_fits

                ens = exp.cfg["ensemble"]
                try:
                    partition_lanes(ens["models"], ens["lane_width"], ens["partitions"])
                    check_fits(ens["arch"], source_info.shape)
                except ConfigError as exc:
                    raise ConfigError(f"ensemble.{exc}") from None
                _check_can_certify(exp)
            if "count" in exp.certifier.blocks:
                from certsmooth.certifiers import count as count_certifiers
                from certsmooth.data.sources import train_size
                from certsmooth.lanes import partition_lanes
                from certsmooth.models.inputs import check_fits, model_numbers

                c = exp.cfg["count"]
                try:
                    check_fits(c["arch"], source_info.shape)
                    partition_lanes(exp.count_models, c["lane_width"], c["partitions"])
                except ConfigError as exc:
                    raise ConfigError(f"count.{exc}") from None
                n_train = train_size(ds["name"], classes, split)
                numbers = model_numbers(c["arch"], len(classes))
                count_certifiers.check(exp.cfg["certifier"], c, exp.count_models, n_train, numbers)
        except ConfigError as exc:  # name the entry of params.yaml the setting is in
            msg = str(exc)
            if msg.startswith("attack."):
                at = f"suites.{exp.suite}.attacks.{exp.attack_name}.{msg.removeprefix('attack.')}"
            elif msg.startswith("dataset."):
                at = f"suites.{exp.suite}.{msg}"
            else:
                at = f"suites.{exp.suite}.certifiers.{exp.certifier_name}.{msg}"
            raise ConfigError(f"{source}: {at}") from None


@functools.cache
def rule_names() -> frozenset[str]:
    """The names of the workflow's rules, read from its Snakefile and rule files (a suite or
    target of that name would be a second rule of the name)."""
    root = DEFAULT_SCHEMA.parents[2]
    files = [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]
    return frozenset(
        m.group(1) for f in files if f.is_file() for m in re.finditer(r"^rule (\w+):", f.read_text(), re.MULTILINE)
    )


def _check_rate(attack: dict, train_counts: list[int], trigger) -> None:
    """The poison count of ``rate`` on a training set of these per-label sizes is one the
    attack can build (the same rule as :mod:`certsmooth.attacks.poison`, known before the data
    is read)."""
    from certsmooth.attacks.poison import num_poisons

    rate = attack.get("rate")
    if rate is None:
        return
    n = sum(train_counts)
    m = num_poisons(n, rate)
    if m < 1:
        raise ConfigError(
            f"attack.rate = {rate} poisons ⌊{n}·{rate}⌋ = 0 of the {n} training images; use a rate of at least "
            f"{1 / n:.2g}"
        )
    if attack["kind"] == "backdoor":
        free = n - train_counts[attack["target"]]
        if m > free:
            raise ConfigError(
                f"attack.rate = {rate} asks for {m} poisons, but only {free} of the {n} training images are outside "
                f"the target class {attack['target']}; use a rate of at most {free / n:.3g}"
            )
    if attack["kind"] == "avail_boundary" and m < trigger.count:
        raise ConfigError(
            f"attack.rate = {rate} poisons {m} of the {n} training images; avail_boundary needs at least one poison "
            f"per corner ({trigger.count}): use a rate of at least {trigger.count / n:.2g}"
        )


def _check_cohen_points(cohen: dict, test_counts: list[int]) -> None:
    """Every CERTIFY job gets at least one test point: chunks ≤ the points certified (every
    ``skip``-th test image of ``classes``, :func:`certsmooth.certify.cohen.chunk_rows`)."""
    keep = cohen["classes"] if cohen["classes"] is not None else range(len(test_counts))
    images = sum(test_counts[c] for c in keep)
    points = -(-images // cohen["skip"])
    if cohen["chunks"] > points:
        which = f"labels {list(keep)}" if cohen["classes"] is not None else "all labels"
        raise ConfigError(
            f"cohen.chunks = {cohen['chunks']} exceeds the {points} test points it certifies (every "
            f"{cohen['skip']}-th of the {images} test images of {which}); use at most {points} chunks or a "
            "smaller skip"
        )


def _check_attack_keys(attack: dict) -> None:
    from certsmooth.attacks.kinds import ATTACKS

    kind = attack["kind"]
    for key in sorted(set(attack) - {"kind"} - ATTACKS[kind].keys):
        raise ConfigError(f"attack.{key} is not used by kind {kind!r}; remove it")


def _check_can_certify(exp: Experiment) -> None:
    """An ensemble too small for its bound abstains on every point: refuse it."""
    from certsmooth.certify.bounds import min_models_to_certify

    m, agg, alpha = exp.cfg["ensemble"]["models"], exp.cfg["certify"]["aggregation"], exp.cfg["certify"]["alpha"]
    classes = len(_classes_of(exp))
    need, why = min_models_to_certify(agg, alpha, classes, m)
    if m < need:
        raise ConfigError(
            f"ensemble.models = {m} cannot certify any point with certify.aggregation {agg} at alpha {alpha:g} "
            f"({why}); use at least {need} models or a larger alpha"
        )


def _classes_of(exp: Experiment) -> list:
    from certsmooth.data.prepared import resolve_classes

    ds = exp.cfg["dataset"]
    return resolve_classes(ds["name"], ds["classes"])


def _check_sigma_opt(exp: Experiment) -> None:
    if not exp.certssb:  # (a sigma_opt block elsewhere is refused by the expansion)
        return
    opt, sigma = exp.cfg["sigma_opt"], exp.sigma
    if opt["sigma_min"] > opt["sigma_max"]:
        raise ConfigError(
            f"sigma_opt.sigma_min = {opt['sigma_min']} > sigma_max = {opt['sigma_max']}; the bounds must be ordered"
        )
    if opt["variant"] == "paper" and not opt["sigma_min"] <= sigma <= opt["sigma_max"]:
        raise ConfigError(
            f"sigma_opt: the base sigma {sigma} (smoothing.sigma, the ascent's start) is outside "
            f"[sigma_min, sigma_max] = [{opt['sigma_min']}, {opt['sigma_max']}]; widen the bounds"
        )
    if opt["test_models"] > exp.cfg["ensemble"]["models"]:
        raise ConfigError(
            f"sigma_opt.test_models = {opt['test_models']} exceeds ensemble.models = "
            f"{exp.cfg['ensemble']['models']}; use at most that many"
        )


# ---------------------------------------------------------------- what each step reads

# The keys of an experiment's blocks that each workflow step reads. A rule passes exactly
# these to its command (and Snakemake tracks them as the job's params), so a setting
# reruns the steps that read it and no other. ``device`` is never among them: where a job
# runs does not change its results (certsmooth.device), so it is a job resource.
STAGE_KEYS = {
    "train": ("ensemble", ("method", "models", "lane_width", "arch", "epochs", "batch_size", "lr", "bf16")),
    "sigma": ("ensemble", ("models", "lane_width", "arch", "epochs", "batch_size", "lr", "bf16")),
    "certify": ("ensemble", ("method", "models", "lane_width", "arch")),
    "train-cohen": ("cohen", ("arch", "epochs", "batch_size", "lr", "train_method")),
    "certify-cohen": ("cohen", ("arch", "n0", "n", "alpha", "batch", "skip", "classes")),
    "merge-cohen": ("cohen", ("radii", "alpha", "n0", "n", "train_method")),
    # count certificates: the subsets and their models, then the certificate from the votes
    "train-dpa": ("count", ("method", "k", "arch", "epochs", "batch_size", "lr", "lane_width")),
    "train-fa": ("count", ("method", "k", "d", "arch", "epochs", "batch_size", "lr", "lane_width")),
    "train-bagging": ("count", ("method", "k", "models", "arch", "epochs", "batch_size", "lr", "lane_width")),
    "certify-dpa": ("count", ("method", "k", "arch", "radii")),
    "certify-fa": ("count", ("method", "k", "d", "arch", "radii")),
    "certify-bagging": ("count", ("method", "k", "models", "arch", "radii", "alpha", "alpha_over_points", "r_max")),
}
# Cert-SSB's σ ascent settings that the other stage alone reads
SIGMA_STAGE_ONLY = {"train": ("steps", "pilot_models", "pilot_epochs"), "test": ("test_steps", "test_models")}


# ---------------------------------------------------------------- experiments and names


@dataclass(frozen=True)
class Experiment:
    suite: str
    name: str
    cfg: dict

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"

    @property
    def attack_name(self) -> str:
        """The row: the attack's name in the suite (its poisoned set is shared by the row)."""
        return self.name.split("/")[0]

    @property
    def certifier_name(self) -> str:
        """The column group: the certifier's name in the suite."""
        return self.name.split("/")[1]

    @property
    def certifier(self):
        """Its entry of the certifier registry (:mod:`certsmooth.certifiers`)."""
        from certsmooth.certifiers import CERTIFIERS

        return CERTIFIERS[self.cfg["certifier"]]

    def runs(self) -> list[tuple[str, str]]:
        """(matrix column, certification folder) of this cell."""
        return self.certifier.runs(self)

    def settings(self, stage: str) -> dict:
        """The settings ``stage`` (a key of :data:`STAGE_KEYS`) reads, and nothing else;
        Cohen training adds its method's block (``macer`` or ``smoothadv``)."""
        block, keys = STAGE_KEYS[stage]
        cfg = {**self.cfg[block], "method": self.cfg["certifier"]}  # an ensemble's method is its certifier
        out = {k: cfg[k] for k in keys}
        if stage == "train-cohen" and cfg["train_method"] != "ga":
            out[cfg["train_method"]] = cfg[cfg["train_method"]]
        return out

    def sigma_settings(self, stage: str) -> dict:
        """Cert-SSB's ``sigma_opt`` without the settings only the other stage reads."""
        other = SIGMA_STAGE_ONLY["test" if stage == "train" else "train"]
        return {k: v for k, v in self.cfg["sigma_opt"].items() if k not in other}

    def attack_settings(self) -> dict:
        """The attack block without the bilevel solver's device."""
        a = dict(self.cfg["attack"])
        if "bilevel" in a:
            a["bilevel"] = {k: v for k, v in a["bilevel"].items() if k != "device"}
        return a

    def device(self, block: str) -> str:
        """The ``device`` setting of ``ensemble``, ``cohen``, ``count`` or ``bilevel`` (a job resource)."""
        cfg = self.cfg["attack"]["bilevel"] if block == "bilevel" else self.cfg[block]
        return cfg["device"]

    def device_settings(self) -> dict[str, str]:
        """Every ``device`` setting of this cell, by its dotted key in params.yaml."""
        out = {}
        for block in ("ensemble", "cohen", "count"):
            if block in self.cfg:
                out[f"suites.{self.suite}.certifiers.{self.certifier_name}.{block}.device"] = self.cfg[block]["device"]
        bilevel = self.cfg["attack"].get("bilevel")
        if bilevel is not None:
            out[f"suites.{self.suite}.attacks.{self.attack_name}.bilevel.device"] = bilevel["device"]
        return out

    @property
    def seed(self) -> int:
        return int(self.cfg["seed"])

    def split(self) -> str | dict:
        from certsmooth.data.sources import get_source

        ds = self.cfg["dataset"]
        if "split" in ds:
            return ds["split"]
        if get_source(ds["name"]).has_official_split:
            return "official"
        return {"test_fraction": 0.2, "seed": 0}

    def prepared_dir(self) -> str:
        """``data/prepared/<dataset>/<classes>/<split>`` for this experiment's data."""
        from certsmooth.data.prepared import classes_token, resolve_classes, split_token
        from certsmooth.data.sources import get_source

        ds = self.cfg["dataset"]
        n = len(get_source(ds["name"]).class_names)
        classes = classes_token(resolve_classes(ds["name"], ds["classes"]), n)
        return f"data/prepared/{ds['name']}/{classes}/{split_token(self.split())}"

    def attack_tag(self) -> str:
        """Short folder name carrying the key attack settings, e.g. ``onepixel-d1-r0.02-t0-s0``."""
        a = self.cfg["attack"]
        if a["kind"] in ("bilevel", "avail_bilevel"):
            from certsmooth.artifacts import short_hash

            b = a["bilevel"]
            drop = {"device", "sigma"} | ({"objective"} if b["objective"] == "radius" else set())
            drop |= {"keep_trigger"} if not b.get("keep_trigger") else set()
            # (defaults added later stay out of the key: the folders of poisons made before they existed)
            settings = {**a, "bilevel": {k: v for k, v in b.items() if k not in drop}}
            key = {"attack": settings, "sigma": self.bilevel_sigma, "dataset": self.prepared_dir()}
            kind = b["victim"] if b["objective"] == "radius" else f"{b['victim']}-{b['objective']}"
            if a["kind"] == "avail_bilevel":  # the bilevel_poison rule builds the folders named bilevel-*
                name = a["trigger"]["name"]
                return f"bilevel-avail-{kind}-{name}-r{a['rate']:g}-eps{a['epsilon']:g}-{short_hash(key)}-s{self.seed}"
            return f"bilevel-{kind}-eps{a['epsilon']:g}-t{a['target']}-{short_hash(key)}-s{self.seed}"
        if "trigger" not in a:
            return f"clean-s{self.seed}"
        t = a["trigger"]
        key = {
            "onepixel": lambda: f"d{t['delta']:g}",
            "fourpixel": lambda: f"d{t['delta']:g}",
            "blending": lambda: f"d{t['delta']:g}-p{t['pattern_seed']}",
            "badnets": lambda: (
                f"k{t['size']}-v{t['value']:g}-{t['style']}"
                + ("" if t["position"] is None else f"-at{t['position'][0]}x{t['position'][1]}")
            ),
            "blend": lambda: f"a{t['alpha']:g}-p{t['pattern_seed']}",
            "corners": lambda: f"k{t['size']}-n{t['count']}-v{t['value']:g}",
        }[t["name"]]()
        custom = "-custom" if t.get("positions") is not None else ""
        how = {
            "backdoor": lambda: f"r{a['rate']:g}-t{a['target']}",
            "avail_uniform": lambda: f"r{a['rate']:g}-uniform",
            "avail_split": lambda: "r{:g}-split{}_{}".format(a["rate"], *a.get("split_classes", [0, 1])),
            "avail_boundary": lambda: (
                f"r{a['rate']:g}-boundary{a['offset']:g}"
                + ("" if "boundary_classes" not in a else "-c" + "_".join(str(c) for c in a["boundary_classes"]))
                + ("-shared" if a.get("shared_sources") else "")
            ),
            "none": lambda: "none",
        }[a["kind"]]()
        return f"{t['name']}-{key}{custom}-{how}-s{self.seed}"

    def poisoned_dir(self) -> str:
        """The attack's poisoned training set and triggered test set, shared by every cell of
        its row (every certifier certifies the same poisons)."""
        return f"data/poisoned/{self.suite}/{self.attack_name}/{self.attack_tag()}"

    @property
    def bilevel(self) -> bool:
        return self.cfg["attack"]["kind"] == "bilevel"

    @property
    def bilevel_sigma(self) -> float:
        s = self.cfg["attack"]["bilevel"]["sigma"]
        return self.sigma if s is None else float(s)

    def results_dir(self) -> str:
        """``results/<suite>/<attack>/<certifier>``: this cell's models, certificates, metrics."""
        return f"results/{self.suite}/{self.name}"

    def attack_dir(self) -> str:
        """``results/<suite>/<attack>``: what belongs to the row (its sample figure)."""
        return f"results/{self.suite}/{self.attack_name}"

    @property
    def trained(self) -> bool:
        """A trained smoothed ensemble (RAB, Cert-SSB)."""
        return "ensemble" in self.certifier.blocks

    @property
    def sigma(self) -> float:
        return float(self.cfg["smoothing"]["sigma"])

    @property
    def certssb(self) -> bool:
        return "sigma_opt" in self.certifier.blocks

    def _sigma_hash(self, stage: str) -> str:
        """Short hash of every setting the ``stage`` ('train' or 'test') σ vector depends on."""
        from certsmooth.artifacts import short_hash

        opt = dict(self.cfg["sigma_opt"])
        opt.pop("batch_size")  # results do not depend on it
        for k in SIGMA_STAGE_ONLY["test" if stage == "train" else "train"]:  # the other stage's settings
            opt.pop(k)
        ens = {k: self.cfg["ensemble"][k] for k in STAGE_KEYS["sigma"][1] if k != "models"}  # not M: σ comes first
        return short_hash({"stage": stage, "sigma_opt": opt, "ensemble": ens, "sigma": self.sigma, "seed": self.seed})

    def sigma_dir(self) -> str:
        """Cert-SSB: the training-sample σ and its pilot ensemble."""
        o = self.cfg["sigma_opt"]
        return (
            f"{self.results_dir()}/sigma/{o['variant']}-K{o['pilot_models']}-n{o['steps']}-{self._sigma_hash('train')}"
        )

    def train_tag(self) -> str:
        """Folder name with the key training settings, e.g. ``rab-mnist_cnn-sigma1-M50-W5-e20-b128-lr0.001-s0``
        (Cert-SSB adds the hash of its training-sample σ settings)."""
        e = self.cfg["ensemble"]
        return (
            f"{self.cfg['certifier']}-{e['arch']}-sigma{self.sigma:g}-M{e['models']}-W{e['lane_width']}"
            f"-e{e['epochs']}-b{e['batch_size']}-lr{e['lr']:g}{'-bf16' if e['bf16'] else ''}-s{self.seed}"
            + (f"-o{self._sigma_hash('train')}" if self.certssb else "")
        )

    @property
    def has_cohen(self) -> bool:
        return "cohen" in self.certifier.blocks

    def cohen_model_dir(self) -> str:
        """Cohen et al.'s base classifier (Gaussian augmentation) for this experiment."""
        c = self.cfg["cohen"]
        m = c["train_method"]
        tag = f"{m}-{c['arch']}-sigma{self.sigma:g}-e{c['epochs']}-b{c['batch_size']}-lr{c['lr']:g}-s{self.seed}"
        if m != "ga":
            from certsmooth.artifacts import short_hash

            tag += f"-{short_hash(c[m])}"
        return f"{self.results_dir()}/cohen/{tag}"

    def cohen_dir(self) -> str:
        """Its CERTIFY/PREDICT results (chunks, merged CSVs, summary)."""
        c = self.cfg["cohen"]
        classes = "" if c["classes"] is None else "-c" + "_".join(str(v) for v in c["classes"])
        return f"{self.cohen_model_dir()}/n0{c['n0']}-n{c['n']}-a{c['alpha']:g}-skip{c['skip']}{classes}"

    def cohen_chunks(self) -> list[str]:
        k = self.cfg["cohen"]["chunks"]
        return [f"{self.cohen_dir()}/chunk{i}of{k}.csv" for i in range(k)]

    def test_sigma_dir(self) -> str:
        """Cert-SSB: the test points' σ (depends on the trained ensemble)."""
        return f"{self.results_dir()}/certify/{self.train_tag()}/sigma-{self._sigma_hash('test')}"

    def models_dir(self) -> str:
        return f"{self.results_dir()}/models/{self.train_tag()}"

    def partition_files(self) -> tuple[list[str], list[str]]:
        p = self.cfg["ensemble"]["partitions"]
        stems = [f"{self.models_dir()}/part{i}of{p}" for i in range(p)]
        return [f"{s}.safetensors" for s in stems], [f"{s}.json" for s in stems]

    # ------------------------------------------------------------ count certificates

    @property
    def count_models(self) -> int:
        """Base models of a count certifier: k (DPA), k·d (FA), N (bagging)."""
        from certsmooth.data.partition import num_models

        return num_models(self.cfg["certifier"], self.cfg["count"])

    def count_model_dir(self) -> str:
        """e.g. ``results/<suite>/<attack>/<certifier>/count/dpa-k10-mnist_cnn-e20-b128-lr0.001-W10-s0``."""
        c, kind = self.cfg["count"], self.cfg["certifier"]
        size = {"dpa": f"k{c['k']}", "fa": f"k{c['k']}-d{c['d']}", "bagging": f"N{c['models']}-k{c['k']}"}[kind]
        return (
            f"{self.results_dir()}/count/{kind}-{size}-{c['arch']}-e{c['epochs']}-b{c['batch_size']}-lr{c['lr']:g}"
            f"-W{c['lane_width']}-s{self.seed}"
        )

    def count_model_files(self) -> tuple[list[str], list[str]]:
        p = self.cfg["count"]["partitions"]
        stems = [f"{self.count_model_dir()}/part{i}of{p}" for i in range(p)]
        return [f"{s}.safetensors" for s in stems], [f"{s}.json" for s in stems]

    def count_certify_dir(self) -> str:
        c = self.cfg["count"]
        if self.cfg["certifier"] != "bagging":
            return f"{self.count_model_dir()}/certify"
        pts = "-pts" if c["alpha_over_points"] else ""
        return f"{self.count_model_dir()}/certify-a{c['alpha']:g}{pts}-r{c['r_max']}"

    def certify_dir(self, scope: str) -> str:
        c = self.cfg["certify"]
        base = self.test_sigma_dir() if self.certssb else f"{self.results_dir()}/certify/{self.train_tag()}"
        return f"{base}/{scope}-{c['aggregation']}-a{c['alpha']:g}"


def experiments(config: dict, suites: list[str] | None = None) -> Iterator[Experiment]:
    for suite, exps in config["suites"].items():
        if suites is not None and suite not in suites:
            continue
        for name, cfg in exps.items():
            yield Experiment(suite, name, cfg)
