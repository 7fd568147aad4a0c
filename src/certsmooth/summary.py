"""The summary contract: what every certifier's ``summary.json`` holds.

One certification run (a matrix cell's column: RAB train / Wang joint scope, Cert-SSB,
Cohen, ...) writes per-point CSVs and one ``summary.json``. Metrics, tables and figures read
the summaries of every certifier alike, so the fields they read are fixed here, as a JSON
Schema (:data:`SCHEMA`): the common certification metrics of
:func:`certsmooth.metrics.summarize`, the run's identity and settings, and the deployed
attack's coverage. A certifier may add fields of its own (:data:`OPTIONAL` lists those the
tables know: Cohen's PREDICT and base accuracy, Cert-SSB's noise scales, the joint scope's
test-input radius, ...).

Writers call :func:`write_summary`, which refuses a summary that breaks the contract (a bug,
caught where it is made); readers call :func:`read_summary`, which gives one line naming the
file and the field for a damaged or foreign file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from certsmooth.artifacts import read_json, write_json
from certsmooth.errors import CorruptFileError

_NUM = {"type": "number"}  # NaN where a rate has no points (no triggered set, no target)
_RATES = {"type": "object", "additionalProperties": _NUM, "minProperties": 1}  # radius -> certified accuracy

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": [
        "experiment",
        "method",
        "scope",
        "aggregation",
        "alpha",
        "sigma",
        "num_models",
        "radius_cmp",
        "radius",
        "clean_accuracy",
        "attack_success_rate",
        "abstain_rate_clean",
        "abstain_rate_triggered",
        "acr_clean",
        "acr_triggered",
        "certified_accuracy_clean",
        "certified_accuracy_triggered",
        "unavailable_clean",
        "unavailable_triggered",
        "certified_vs_deployed_attack",
        "num_clean",
        "num_triggered",
        "per_class_clean",
        "deployed_attack",
    ],  # fmt: skip
    "properties": {
        "experiment": {"type": "string", "pattern": "^[^/]+/.+$", "description": "<suite>/<attack>/<certifier>"},
        "method": {"type": "string", "description": "the certifier kind's method: rab, certssb, cohen, ..."},
        "scope": {"type": "string", "description": "the matrix column within the certifier: train, joint, cohen"},
        "aggregation": {"type": "string"},
        "alpha": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "exclusiveMaximum": 1,
            "description": "null: a deterministic certificate (DPA, FA)",
        },
        "sigma": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "null: no smoothing noise"},
        "num_models": {"type": "integer", "minimum": 1},
        "radius_cmp": {"enum": ["gt", "ge"]},
        "radius": {"type": "string", "description": "what the certified radius bounds, in words"},
        "clean_accuracy": _NUM,
        "attack_success_rate": _NUM,
        "abstain_rate_clean": _NUM,
        "abstain_rate_triggered": _NUM,
        "acr_clean": _NUM,
        "acr_triggered": _NUM,
        "certified_accuracy_clean": _RATES,
        "certified_accuracy_triggered": _RATES,
        # per radius r: abstained, or no certificate of radius r for any label (availability)
        "unavailable_clean": _RATES,
        "unavailable_triggered": _RATES,
        "certified_vs_deployed_attack": _NUM,
        "num_clean": {"type": "integer", "minimum": 0},
        "num_triggered": {"type": "integer", "minimum": 0},
        "per_class_clean": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["num", "acr", "abstain_rate", "certified_accuracy"],
                "properties": {
                    "num": {"type": "integer"},
                    "acr": _NUM,
                    "abstain_rate": _NUM,
                    "certified_accuracy": _RATES,
                },  # fmt: skip
            },
        },
        "deployed_attack": {
            "type": "object",
            "required": ["num_poisons", "stacked_train_norm", "covered", "not_covered"],
            "properties": {
                "num_poisons": {"type": "integer", "minimum": 0},
                "stacked_train_norm": _NUM,
                "whitened_train_norm": _NUM,
                "covered": {"type": "string"},
                "not_covered": {"type": "string"},
            },
        },
        # optional, by certifier
        "predict": {
            "type": "object",
            "required": ["abstain_rate_clean", "abstain_rate_triggered", "accuracy_clean", "accuracy_triggered"],
            "additionalProperties": _NUM,
        },
        "noise_scales": {"type": "object", "required": ["train", "test_clean"]},
        "test_input": {"type": "object", "required": ["certified_accuracy_clean", "certified_accuracy_triggered"]},
        # the largest radius any point can be certified (an ensemble's R_max, Cohen's n-cap, a unanimous vote's count)
        "max_radius": {"type": "number", "minimum": 0},
        "per_poison": {"type": "integer", "minimum": 1, "description": "count certificates: what one poison costs"},
        # the clean copies of the triggered points scored (the same points): what an effect compares
        "clean_same_points": {
            "type": "object",
            "required": ["num", "accuracy", "abstain_rate", "acr", "certified_accuracy", "unavailable"],
            "properties": {"num": {"type": "integer", "minimum": 0}, "certified_accuracy": _RATES,
                           "unavailable": _RATES},  # fmt: skip
        },
    },
}
OPTIONAL = ("predict", "noise_scales", "test_input", "clean_same_points", "max_radius", "per_poison")

_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def problem(summary: Any) -> str | None:
    """The first way ``summary`` breaks the contract, in words; None if it keeps it."""
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(summary))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "the top level"
    return f"{where}: {error.message}"


def write_summary(path: str | Path, summary: dict) -> None:
    """Write ``summary`` (atomically) after checking it against :data:`SCHEMA`."""
    bad = problem(summary)
    if bad is not None:
        raise ValueError(f"summary for {path} breaks the summary contract (certsmooth.summary): {bad}")
    write_json(path, summary)


def read_summary(path: str | Path) -> dict:
    """A certification run's summary.json, checked against :data:`SCHEMA`."""
    summary = read_json(path)
    bad = problem(summary)
    if bad is not None:
        raise CorruptFileError(
            f"{path}: not a certsmooth summary ({bad}); delete it and rerun the workflow to rebuild it"
        )
    return summary
