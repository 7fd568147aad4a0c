"""Step ``validate``: check a params file against the schema, as every workflow run does first."""

from __future__ import annotations


def run(params: str = "params.yaml", *, schema: str | None = None) -> None:
    """``params``: the file to check (its ``include`` files too); ``schema``: another schema
    than workflow/schemas/params.schema.yaml."""
    from certsmooth.config import DEFAULT_SCHEMA, experiments, load_schema, load_yaml, validate_params

    config = validate_params(load_yaml(params), load_schema(schema or DEFAULT_SCHEMA), source=str(params))
    n = sum(1 for _ in experiments(config))
    print(f"{params}: valid ({len(config['suites'])} suites, {n} attack × certifier cells)")
