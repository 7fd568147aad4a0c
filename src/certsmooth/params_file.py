"""Reading a params file: YAML whose duplicate keys are errors, a JSON-schema validator that
fills in defaults, and a schema error as one line (the dotted key, the value, what is allowed)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError

from certsmooth.errors import ConfigError


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



def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


Validator = _with_defaults(jsonschema.Draft202012Validator)


def dotted(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _described(error: ValidationError) -> str:
    desc = error.schema.get("description") if isinstance(error.schema, dict) else None
    return f" ({desc})" if desc else ""


def format_error(error: ValidationError, source: str = "params.yaml") -> str:
    """One line: where, which value, what is allowed."""
    key = dotted(error.absolute_path)
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
