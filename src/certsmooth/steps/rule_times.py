"""Step ``rule-times``: a finished workflow run's job seconds per rule (from
``.snakemake/metadata``)."""

from __future__ import annotations

from certsmooth.runtimes import rule_times, write_rule_times


def run(*, dir: str = ".", json: str | None = None) -> None:  # noqa: A002 (the flags' names)
    """``dir``: the project folder the workflow ran in; ``json``: also write the table there."""
    write_rule_times(*rule_times(dir), json)
