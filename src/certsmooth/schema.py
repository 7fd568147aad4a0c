"""The params schema: where it lives and the defaults it declares.

``workflow/schemas/params.schema.yaml`` is the only place a default of a params.yaml setting
is written. The validator fills them into the config (:mod:`certsmooth.config`); the
library's settings dataclasses take their field defaults from :func:`defaults` (no second
copy; ``tests/test_defaults.py`` checks both). This module imports no torch, so config
parsing and Snakemake's parse stay light.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "params.schema.yaml"


# libyaml's safe loader when PyYAML has it (0.07 s → 0.01 s per job start; the same document:
# tests/test_defaults.py)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _schema() -> dict:
    return yaml.load(PATH.read_text(), Loader=LOADER)


def _resolve(node: dict) -> dict:
    """``node`` with a local ``$ref`` followed; keys next to the ``$ref`` (e.g. a
    ``default``) take precedence over the referenced definition's."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target = _schema()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target), **{k: v for k, v in node.items() if k != "$ref"}}


def block(*path: str) -> dict:
    """The schema of ``$defs/<path[0]>``, then of its property ``path[1]``, and so on."""
    node = _resolve(_schema()["$defs"][path[0]])
    for name in path[1:]:
        node = _resolve(node["properties"][name])
    return node


def defaults(*path: str) -> dict[str, Any]:
    """The defaults of the properties of :func:`block` ``(*path)``, by property name
    (properties without a default are left out). A fresh copy on every call."""
    props = block(*path).get("properties", {})
    out = {}
    for name, sub in props.items():
        sub = _resolve(sub) if isinstance(sub, dict) else {}
        if "default" in sub:
            out[name] = copy.deepcopy(sub["default"])
    return out
