"""The report's texts (workflow/report/): every caption and the landing page render through Jinja
and docutils, as `snakemake --report` renders them, without a docutils warning."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from docutils.core import publish_parts
from jinja2 import Environment, StrictUndefined

REPORT = Path(__file__).resolve().parent.parent / "workflow" / "report"
SNAKEMAKE = SimpleNamespace(
    wildcards=SimpleNamespace(suite="demo", attack="badnets", exp="badnets/certssb"),
    params=SimpleNamespace(settings="badnets/rab: rab-mnist_cnn-sigma1-M20/train-votes-a0.001", sigma=1.0),
    config={"default_suites": ["demo"], "_report_suites": ["demo"]},
)
# the link targets snakemake adds to every text (categories and panels)
LINKS = "\n\n" + "\n".join(f".. _{name}: javascript:void(0)" for name in (
    "Workflow", "Statistics", "1. Attack x certifier matrix", "2. Certified accuracy", "Poisoning"))  # fmt: skip


def render(path: Path) -> tuple[str, str]:
    """(html, docutils' warnings) of one report text."""
    text = Environment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined).from_string(
        path.read_text() + LINKS).render(snakemake=SNAKEMAKE)  # fmt: skip
    warnings = io.StringIO()
    html = publish_parts(text, writer="html", settings_overrides={"warning_stream": warnings, "report_level": 2})
    return html["html_body"], warnings.getvalue()


@pytest.mark.parametrize("caption", sorted(p.name for p in REPORT.glob("*.rst") if p.name != "workflow.rst"))
def test_every_caption_renders_without_a_warning(caption):
    html, warnings = render(REPORT / caption)
    assert warnings == "" and "System Message" not in html
    assert "demo" in html or "σ" in html  # the template's values are filled in


def test_the_landing_page_shows_the_matrix_and_the_leaderboard_as_tables(tmp_path, monkeypatch):
    results = tmp_path / "results" / "demo"
    results.mkdir(parents=True)
    cell = "ASR 0 [0,4]; cert. 0 [0,4]; lost 99 [95,100]"
    (results / "matrix.csv").write_text(f'attack,rab (train)\nbadnets,"{cell}"\n')
    board = 'attack,certifier,clean accuracy (%)\nbadnets,rab (train),"96 [92, 98]"\n'
    (results / "leaderboard.csv").write_text(board)
    monkeypatch.chdir(tmp_path)  # snakemake --report runs in the project's folder: the tables' paths are relative
    html, warnings = render(REPORT / "workflow.rst")
    assert warnings == "" and "System Message" not in html
    assert html.count("<table") == 2 and "lost 99 [95,100]" in html and "96 [92, 98]" in html
    assert html.index("the matrix") < html.index("the leaderboard")


def test_a_missing_table_fails_and_an_unbuilt_suite_is_left_out(tmp_path, monkeypatch):
    """The check can fail: a table whose file is missing stops docutils (the workflow lists only
    the suites whose tables exist, config["_report_suites"]); with none built the page says so."""
    from docutils.utils import SystemMessage

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemMessage, match="matrix.csv"):
        render(REPORT / "workflow.rst")
    monkeypatch.setattr(SNAKEMAKE, "config", {"default_suites": ["demo"], "_report_suites": []})
    html, warnings = render(REPORT / "workflow.rst")
    assert warnings == "" and "No default suite is built yet" in html and "<table" not in html
