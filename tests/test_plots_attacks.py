"""Attack-effect table and figures (certsmooth.plots.attacks)."""

import math

import pytest

from certsmooth.plots.attacks import effect_rows, plot_attacks


def _summary(exp, scope="cohen", ca=(0.9, 0.5), abstain=(0.05, 0.4), acr=(1.0, 0.5), per_class=None, method="cohen"):
    s = {"experiment": f"s/{exp}", "scope": scope, "method": method, "sigma": 0.5,
         "certified_accuracy_clean": {"0": ca[0], "0.5": 0.1}, "certified_accuracy_triggered": {"0": ca[1], "0.5": 0.0},
         "abstain_rate_clean": abstain[0], "abstain_rate_triggered": abstain[1], "acr_clean": acr[0],
         "acr_triggered": acr[1]}  # fmt: skip
    if method == "cohen":
        s["train_method"] = "ga"
    if per_class is not None:
        s["per_class_clean"] = per_class
    return s


def test_effect_signs_baseline_and_bilevel(tmp_path):
    exps = {
        "avail": {"attack": {"kind": "avail_uniform", "rate": 0.01, "trigger": {"name": "badnets"}},
                  "baseline": "control"},
        "control": {"attack": {"kind": "none", "trigger": {"name": "badnets"}}, "baseline": None},
        "bl": {"attack": {"kind": "bilevel", "target": 3, "epsilon": 0.1, "bilevel": {"victim": "ga"}},
               "baseline": "clean"},
        "clean": {"attack": {"kind": "none"}, "baseline": None},
    }  # fmt: skip
    pc = lambda acr, ca, ab: {"3": {"num": 10, "acr": acr, "abstain_rate": ab, "certified_accuracy": {"0": ca}}}  # noqa: E731
    summaries = {
        "avail": [_summary("avail"), _summary("avail", scope="train", method="rab")],
        "control": [_summary("control", ca=(0.9, 0.88), abstain=(0.05, 0.06), acr=(1.0, 0.98)),
                    _summary("control", scope="train", method="rab")],
        "bl": [_summary("bl", per_class=pc(0.6, 0.8, 0.1))],
        "clean": [_summary("clean", per_class=pc(1.0, 0.9, 0.05))],
    }  # fmt: skip
    eff, bars = effect_rows(exps, summaries)
    assert set(eff["experiment"]) == {"avail", "control", "bl"}  # a clean baseline is no attack
    a = eff[(eff["experiment"] == "avail") & (eff["certifier"] == "Cohen/ga")].iloc[0]
    assert a["ca0_drop_pp"] == pytest.approx(40) and a["abstain_rise_pp"] == pytest.approx(35)
    assert a["acr_drop_pct"] == pytest.approx(50)
    assert a["baseline_abstain_rise_pp"] == pytest.approx(1) and a["net_abstain_rise_pp"] == pytest.approx(34)
    b = eff[eff["experiment"] == "bl"].iloc[0]
    assert b["acr_drop_pct"] == pytest.approx(40) and b["ca0_drop_pp"] == pytest.approx(10)
    assert b["abstain_rise_pp"] == pytest.approx(5)
    assert math.isnan(eff[eff["experiment"] == "control"].iloc[0]["baseline_abstain_rise_pp"])
    assert set(bars["condition"]) >= {"clean model", "poisoned model", "no poison, triggered input"}


def test_plot_attacks_writes_files(tmp_path):
    import json

    p = tmp_path / "summary.json"
    p.write_text(json.dumps(_summary("avail")))
    exps = {
        "avail": {"attack": {"kind": "avail_split", "rate": 0.01, "trigger": {"name": "badnets"}}, "baseline": None}
    }
    outs = [tmp_path / f for f in ("m.png", "b.png", "e.csv", "e.md")]
    eff = plot_attacks("s", exps, [str(p)], *map(str, outs), dpi=50, context="paper")
    assert len(eff) == 1 and all(o.stat().st_size > 0 for o in outs)
    empty = [tmp_path / f"x{f}" for f in ("m.png", "b.png", "e.csv", "e.md")]
    assert len(plot_attacks("s", {}, [], *map(str, empty), dpi=50, context="paper")) == 0
