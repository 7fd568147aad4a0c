"""params.yaml: loaded, validated and expanded into cells; names no kind of certifier or attack.

The schema lives in ``workflow/schemas/params.schema.yaml`` (JSON Schema 2020-12), completed by
the records (:func:`load_schema`). The validator fills in defaults (on a copy) and reports the
single most relevant error as one line (:mod:`certsmooth.params_file`). Each suite's attacks ×
certifiers become cells (:func:`expand_suites`); what a schema cannot say (labels in range,
trigger geometry, sizes that fit the data) the records of the cell's attack and certifier check
(:func:`_check_semantics`), so a bad value fails before any job starts.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match

from certsmooth import schema
from certsmooth.attacks.kinds import ATTACKS
from certsmooth.certifiers import CERTIFIERS
from certsmooth.certifiers.base import Data
from certsmooth.errors import ConfigError
from certsmooth.experiment import Experiment, experiments
from certsmooth.params_file import Validator, dotted, format_error, load_yaml

__all__ = ["experiments", "load_schema", "load_yaml", "validate_params"]

DEFAULT_SCHEMA = schema.PATH


def load_schema(path: str | Path = DEFAULT_SCHEMA) -> dict:
    """The schema, with what the records own filled in: the certifier kinds and the blocks each
    reads (``$defs.certifier``, ``$defs.cell``), the attack kinds and the keys each requires."""
    sch = load_yaml(path)
    defs = sch["$defs"]
    blocks = {b: {"$ref": f"#/$defs/{b}"} for c in CERTIFIERS.values() for b in c.blocks}
    defs["certifier"]["properties"]["kind"]["enum"] = list(CERTIFIERS)  # (its description stays)
    defs["certifier"]["properties"].update(blocks)
    defs["cell"]["properties"].update(certifier={"enum": list(CERTIFIERS)}, **blocks)
    defs["attack"]["properties"]["kind"]["enum"] = list(ATTACKS)
    defs["attack"]["allOf"] = [k.schema() for k in ATTACKS.values() if k.required]
    return sch


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
    validator = Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        raise ConfigError(format_error(_first_suite_match(errors, config), source))
    expand_suites(config, source)
    cells = Validator(_cells_schema(schema))  # the cells of every suite, with their blocks' defaults
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
        raise ConfigError(f"{source}: {dotted(path)} = {node} is not allowed: numbers must be finite; give a number")


def _check_semantics(config: dict, source: str) -> None:
    """What a schema cannot say: names that would collide with rules, suites and targets that
    exist, then every cell's data, attack and certifier, by their records (the message names
    the entry of the params file the setting is in)."""
    from certsmooth.attacks import kinds as attack_kinds
    from certsmooth.data.sources import register_user_datasets

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
            data = _data(exp)
            attack_kinds.check(exp.cfg["attack"], data)
            exp.certifier.check(exp, data)
        except ConfigError as exc:  # name the entry of params.yaml the setting is in
            msg = str(exc)
            if msg.startswith("attack."):
                at = f"suites.{exp.suite}.attacks.{exp.attack_name}.{msg.removeprefix('attack.')}"
            elif msg.startswith("dataset."):
                at = f"suites.{exp.suite}.{msg}"
            else:
                at = f"suites.{exp.suite}.certifiers.{exp.certifier_name}.{msg}"
            raise ConfigError(f"{source}: {at}") from None


def _data(exp: Experiment) -> Data:
    """What the checks may know of the cell's data before it is read; ConfigError ``dataset.<key> ...``."""
    from certsmooth.data.prepared import resolve_classes
    from certsmooth.data.sources import SOURCES, USER, class_counts, get_source

    ds = exp.cfg["dataset"]
    if ds["name"] not in SOURCES and ds["name"] not in USER:
        raise ConfigError(
            f"dataset.name = {ds['name']!r}: no such dataset; allowed: {', '.join([*SOURCES, *USER])}, "
            "or declare your own under datasets: (docs/workflow.md)"
        )
    classes = resolve_classes(ds["name"], ds["classes"])
    info = get_source(ds["name"])
    split = ds.get("split", "official" if info.has_official_split else None)
    if split == "official" and not info.has_official_split:
        raise ConfigError(
            f"dataset.split = 'official': {ds['name']} has no official split; "
            "use split: {test_fraction: 0.2, seed: 0}"
        )
    if split not in (None, "official") and info.has_official_split:
        raise ConfigError(f"dataset.split = {split!r}: {ds['name']} has an official split; use 'official'")
    return Data(ds["name"], classes, info.shape, split, class_counts(ds["name"], classes, split))


@functools.cache
def rule_names() -> frozenset[str]:
    """The names of the workflow's rules, read from its Snakefile and rule files (a suite or
    target of that name would be a second rule of the name)."""
    root = DEFAULT_SCHEMA.parents[2]
    files = [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]
    return frozenset(
        m.group(1) for f in files if f.is_file() for m in re.finditer(r"^rule (\w+):", f.read_text(), re.MULTILINE)
    )
