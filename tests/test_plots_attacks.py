"""Attack-effect table and figures (certsmooth.plots.attacks) over a suite's layout."""

import json
import math

import pandas as pd
import pytest

from certsmooth.plots.attacks import effect_rows, plot_attacks

PATCH = {"name": "badnets", "size": 3}


def _summary(cell, scope="cohen", ca=(0.9, 0.5), abstain=(0.05, 0.4), acr=(1.0, 0.5), per_class=None):
    """A summary that keeps the contract (certsmooth.summary); the fields the matrix reads vary."""
    return {"experiment": f"s/{cell}", "scope": scope, "sigma": 0.5, "method": cell.split("/")[1],
            "aggregation": "votes", "alpha": 0.001, "num_models": 1, "radius_cmp": "ge", "radius": "ℓ2",
            "clean_accuracy": ca[0], "attack_success_rate": 0.0, "certified_vs_deployed_attack": 0.0,
            "num_clean": 10, "num_triggered": 10,
            "deployed_attack": {"num_poisons": 1, "stacked_train_norm": 1.0, "covered": "-", "not_covered": "-"},
            "certified_accuracy_clean": {"0": ca[0], "0.5": 0.1},
            "certified_accuracy_triggered": {"0": ca[1], "0.5": 0.0},
            "unavailable_clean": {"0": abstain[0], "0.5": 0.5}, "unavailable_triggered": {"0": abstain[1], "0.5": 0.9},
            "abstain_rate_clean": abstain[0], "abstain_rate_triggered": abstain[1], "acr_clean": acr[0],
            "acr_triggered": acr[1], "per_class_clean": per_class or {}}  # fmt: skip


def _layout(attacks, certifiers, baseline, excluded=None):
    return {"attacks": [[a, cfg] for a, cfg in attacks.items()], "certifiers": [[c, v] for c, v in certifiers.items()],
            "baseline": baseline, "excluded": excluded or {}}  # fmt: skip


CERTS = {"rab": {"kind": "rab", "columns": ["rab (train)"]}, "cohen": {"kind": "cohen", "columns": ["cohen"]}}


def test_trigger_attacks_against_the_baseline_with_the_same_trigger():
    layout = _layout({
        "control": {"kind": "none", "trigger": PATCH},
        "avail": {"kind": "avail_uniform", "rate": 0.01, "trigger": PATCH},
        "backdoor": {"kind": "backdoor", "rate": 0.02, "target": 0, "trigger": {"name": "onepixel"}},
    }, CERTS, "control", {"backdoor/cohen": "too slow here"})  # fmt: skip
    summaries = {
        "control/rab": [_summary("control/rab", "train", ca=(0.9, 0.88), abstain=(0.05, 0.06), acr=(1.0, 0.98))],
        "control/cohen": [_summary("control/cohen", ca=(0.9, 0.88), abstain=(0.05, 0.06), acr=(1.0, 0.98))],
        "avail/rab": [_summary("avail/rab", "train")],
        "avail/cohen": [_summary("avail/cohen")],
        "backdoor/rab": [_summary("backdoor/rab", "train")],
    }
    eff, bars = effect_rows(layout, summaries)
    assert list(eff["experiment"]) == ["control/rab", "control/cohen", "avail/rab", "avail/cohen", "backdoor/rab",
                                       "backdoor/cohen"]  # params.yaml order, every cell  # fmt: skip
    a = eff[(eff["experiment"] == "avail/cohen")].iloc[0]
    assert a["certifier"] == "cohen" and a["attack"] == "avail (availability (uniform) 1%)"
    assert a["ca0_drop_pp"] == pytest.approx(40) and a["abstain_rise_pp"] == pytest.approx(35)
    assert a["acr_drop_pct"] == pytest.approx(50)
    assert a["baseline_abstain_rise_pp"] == pytest.approx(1) and a["net_abstain_rise_pp"] == pytest.approx(34)
    c = eff[eff["experiment"] == "control/rab"].iloc[0]  # the baseline's own row: the trigger alone
    assert c["abstain_rise_pp"] == pytest.approx(1) and c["certifier"] == "rab (train)"
    b = eff[eff["experiment"] == "backdoor/rab"].iloc[0]  # another trigger than the baseline's: no net effect
    assert b["baseline"] == "control/rab" and math.isnan(b["net_acr_drop_pct"])
    x = eff[eff["experiment"] == "backdoor/cohen"].iloc[0]
    assert x["excluded"] == "too slow here" and math.isnan(x["acr_drop_pct"])
    assert set(bars["condition"]) >= {"no poison, triggered input", "poisoned model, clean input"}


def test_bilevel_compares_the_target_class_with_the_baseline_model():
    pc = lambda acr, ca, ab: {"3": {"num": 10, "acr": acr, "abstain_rate": ab, "certified_accuracy": {"0": ca}}}  # noqa: E731
    layout = _layout({"clean": {"kind": "none"}, "bl": {"kind": "bilevel", "target": 3, "epsilon": 0.1,
                      "bilevel": {"victim": "ga"}}}, {"cohen": CERTS["cohen"]}, "clean")  # fmt: skip
    summaries = {"bl/cohen": [_summary("bl/cohen", per_class=pc(0.6, 0.8, 0.1))],
                 "clean/cohen": [_summary("clean/cohen", ca=(0.9, 0.9), abstain=(0.0, 0.0), acr=(1.0, 1.0),
                                          per_class=pc(1.0, 0.9, 0.05))]}  # fmt: skip
    eff, bars = effect_rows(layout, summaries)
    b = eff[eff["experiment"] == "bl/cohen"].iloc[0]
    assert b["acr_drop_pct"] == pytest.approx(40) and b["ca0_drop_pp"] == pytest.approx(10)
    assert b["abstain_rise_pp"] == pytest.approx(5) and b["reference"] == "baseline model, target class"
    clean = eff[eff["experiment"] == "clean/cohen"].iloc[0]  # no trigger: clean against clean
    assert clean["acr_drop_pct"] == 0 and clean["attack"] == "clean"
    assert set(bars["condition"]) >= {"clean model", "poisoned model"}


def test_plot_attacks_writes_files_with_an_excluded_cell(tmp_path):
    p = tmp_path / "summary.json"
    p.write_text(json.dumps(_summary("avail/cohen")))
    layout = _layout({"avail": {"kind": "avail_split", "rate": 0.01, "trigger": PATCH}}, CERTS, None,
                     {"avail/rab": "not needed"})  # fmt: skip
    outs = [tmp_path / f for f in ("m.png", "b.png", "e.csv", "e.md")]
    eff = plot_attacks("s", layout, [str(p)], *map(str, outs), dpi=50, context="paper")
    assert len(eff) == 2 and all(o.stat().st_size > 0 for o in outs)
    assert "not needed" in (tmp_path / "e.md").read_text()
    empty = [tmp_path / f"x{f}" for f in ("m.png", "b.png", "e.csv", "e.md")]
    assert len(plot_attacks("s", _layout({}, {}, None), [], *map(str, empty), dpi=50, context="paper")) == 0


def test_summary_markdown_has_one_table_per_certifier_family_with_its_columns():
    from certsmooth.plots.curves import family_tables

    table = pd.DataFrame(
        [
            {
                "experiment": "s/a/cohen",
                "method": "cohen/ga",
                "scope": "cohen",
                "attack_success": math.nan,
                "ACR_clean": 0.8,
            },
            {"experiment": "s/a/rab", "method": "rab", "scope": "train", "attack_success": 0.1, "ACR_clean": 0.5},
            {"experiment": "s/a/ssb", "method": "certssb", "scope": "joint", "attack_success": 0.2, "ACR_clean": 0.4},
        ]
    )
    md = family_tables(table)
    sections = md.split("## ")[1:]
    assert [s.split("\n")[0] for s in sections] == ["RAB", "Cert-SSB", "Cohen"]  # the registry's order
    assert "attack_success" in sections[0] and "attack_success" not in sections[2]
    assert "s/a/cohen" in sections[2] and "s/a/cohen" not in sections[0]


def test_an_effect_compares_the_same_points_with_and_without_the_trigger():
    """A backdoor whose trigger changes nothing: the old pairing (every clean point, both classes,
    against the triggered non-target points) showed an ACR effect of −67 %; the clean copies of
    the same non-target points show none."""
    import numpy as np

    from certsmooth.metrics import summarize

    labels = np.repeat([0, 1], 100)  # target 0: its points are not scored when triggered
    radius = np.where(labels == 0, 0.1, 0.5)  # the target class certifies smaller radii
    clean = pd.DataFrame({"idx": np.arange(200), "label": labels, "top": labels, "abstain": False, "correct": True,
                          "radius": radius})  # fmt: skip
    triggered = clean[clean["label"] == 1].assign(nontarget=True, certified_vs_attack=True)  # the trigger: no change
    s = summarize(clean, triggered, [0, 0.25], "ge", target=0)
    assert s["acr_clean"] == pytest.approx(0.3) and s["acr_triggered"] == pytest.approx(0.5)  # the old pairing
    assert s["clean_same_points"]["num"] == 100 and s["clean_same_points"]["acr"] == pytest.approx(0.5)
    full = {**_summary("backdoor/cohen"), **{k: v for k, v in s.items() if k != "per_class_clean"}}
    layout = _layout({"backdoor": {"kind": "backdoor", "rate": 0.02, "target": 0, "trigger": {"name": "onepixel"}}},
                     {"cohen": CERTS["cohen"]}, None)  # fmt: skip
    row = effect_rows(layout, {"backdoor/cohen": [full]})[0].iloc[0]
    assert row["acr_drop_pct"] == pytest.approx(0) and row["ca0_drop_pp"] == pytest.approx(0)
    assert row["reference"] == "the same points, clean"
    shuffled = triggered.sample(frac=1, random_state=0)  # paired by index, not by position
    assert summarize(clean, shuffled, [0], "ge", 0)["clean_same_points"]["acr"] == pytest.approx(0.5)


def test_the_matrix_of_nine_columns_fits_2400_pixels(tmp_path):
    """The demo's nine columns (the ensembles' two scopes each) at 150 dpi: at most 2,400 px wide."""
    import struct

    from certsmooth.plots.attacks import plot_matrix

    certs = [f"c{j}" for j in range(9)]
    eff = pd.DataFrame([{"attack": f"a{i}", "certifier": c, "excluded": "", "acr_drop_pct": 1.0, "ca0_drop_pp": 0.5,
                         "abstain_rise_pp": 0.0} for i in range(6) for c in certs])  # fmt: skip
    out = tmp_path / "m.png"
    plot_matrix(eff, out, "s", dpi=150, context="paper")
    width, _ = struct.unpack(">II", out.read_bytes()[16:24])
    assert width <= 2400
