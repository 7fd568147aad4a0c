"""The attack × certifier matrix, leaderboard, long table and DVC metrics of a suite
(certsmooth.plots.attacks) from hand-built certification folders."""

import json
import struct

import numpy as np
import pandas as pd
import pytest

from certsmooth.metrics import summarize
from certsmooth.plots.attacks import BOARD, cell_rows, load_run, plot_attacks, plot_matrix

PATCH = {"name": "badnets", "size": 3}
CERTS = {"rab": {"kind": "rab", "columns": ["rab (train)"]}, "cohen": {"kind": "cohen", "columns": ["cohen"]}}


def _layout(attacks, certifiers, baseline, excluded=None):
    return {"attacks": [[a, cfg] for a, cfg in attacks.items()], "certifiers": [[c, v] for c, v in certifiers.items()],
            "baseline": baseline, "excluded": excluded or {}}  # fmt: skip


def _write_run(root, cell, scope, clean, triggered, target=-1, cmp="ge"):
    """A certification folder that keeps the summary contract, from per-point frames."""
    d = root / cell / scope
    d.mkdir(parents=True)
    s = summarize(clean, triggered[triggered["nontarget"]], [0, 0.5], cmp, target)
    s.update({"experiment": f"s/{cell}", "method": cell.split("/")[1], "scope": scope, "aggregation": "votes",
              "alpha": 0.001, "sigma": 0.5, "num_models": 1, "radius_cmp": cmp, "radius": "ℓ2", "max_radius": 1.0,
              "per_class_clean": {},
              "deployed_attack": {"num_poisons": 1, "stacked_train_norm": 1.0, "covered": "-", "not_covered": "-"}})
    (d / "summary.json").write_text(json.dumps(s))
    clean.to_csv(d / "clean.csv", index=False)
    triggered.to_csv(d / "triggered.csv", index=False)
    return str(d)


def _points(n, label, top, radius=0.5, abstain=False, covered=True, target=-1):
    f = pd.DataFrame({"idx": np.arange(n), "label": label, "top": top, "abstain": abstain,
                      "radius": np.full(n, radius, dtype=float)})  # fmt: skip
    f["correct"] = (f["top"] == f["label"]) & ~f["abstain"]
    return f.assign(nontarget=f["label"] != target, certified_vs_attack=covered)


def _suite(tmp_path):
    """A control (patch), an availability attack with the same trigger, a backdoor; RAB and Cohen."""
    labels = np.repeat([0, 1], 10)
    clean = _points(20, labels, labels)
    runs = [
        _write_run(tmp_path, "control/rab", "train", clean, _points(20, labels, labels)),
        _write_run(tmp_path, "control/cohen", "cohen", clean, _points(20, labels, labels, covered=np.nan)),
        _write_run(tmp_path, "avail/rab", "train", clean, _points(20, labels, labels, abstain=np.arange(20) < 12)),
        _write_run(tmp_path, "avail/cohen", "cohen", clean, _points(20, labels, labels, covered=np.nan)),
        _write_run(tmp_path, "backdoor/rab", "train", clean, _points(20, labels, np.zeros(20, int), covered=False,
                                                                   target=0), target=0),
    ]
    layout = _layout({
        "control": {"kind": "none", "trigger": PATCH},
        "avail": {"kind": "avail_uniform", "rate": 0.01, "trigger": PATCH},
        "backdoor": {"kind": "backdoor", "rate": 0.02, "target": 0, "trigger": {"name": "onepixel"}},
    }, CERTS, "control", {"backdoor/cohen": "too slow here"})  # fmt: skip
    return layout, runs


def test_cells_follow_params_order_and_measure_each_family_on_its_points(tmp_path):
    layout, run_dirs = _suite(tmp_path)
    runs = {}
    for d in run_dirs:
        s, r = load_run(d)
        runs.setdefault(s["experiment"].split("/", 1)[1], []).append((s, r))
    rows = cell_rows(layout, runs)
    assert [(r["attack_name"], r["certifier"]) for r in rows] == [
        ("control", "rab (train)"), ("control", "cohen"), ("avail", "rab (train)"), ("avail", "cohen"),
        ("backdoor", "rab (train)"), ("backdoor", "cohen")]  # fmt: skip
    avail = rows[2]["cell"]
    assert avail.family == "availability" and avail.unavailable.k == 12 and avail.unavailable_control.k == 0
    assert avail.unavailable_rise.value == pytest.approx(0.6) and avail.unavailable_rise.clear
    back = rows[4]["cell"]
    assert back.attack_success.k == 10 and back.attack_success.n == 10  # the non-target points only
    assert back.certified_vs_attack.k == 0 and back.lost.k == 10
    assert rows[5]["cell"] is None and rows[5]["excluded"] == "too slow here"
    assert rows[0]["cell"].family == "control" and rows[0]["cell"].lost.k == 0


def test_the_outputs_leaderboard_long_table_and_metrics(tmp_path):
    layout, run_dirs = _suite(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    names = ("m.png", "e.png", "board.csv", "board.md", "cells.csv", "matrix.csv")
    rows = plot_attacks("s", layout, run_dirs, *[str(out / n) for n in names], str(out / "metrics"), dpi=50,
                        context="paper")  # fmt: skip
    assert len(rows) == 6 and all((out / n).stat().st_size > 0 for n in names)
    board = pd.read_csv(out / "board.csv", dtype=str, keep_default_na=False)
    assert len(board.columns) <= 10 and list(board.columns[2:]) == [h for _, h in BOARD]
    assert all("(" in h for _, h in BOARD[:-1])  # units in the header
    text = (out / "board.md").read_text()
    assert "nan" not in text.lower() and "—" in text and "excluded: too slow here" in text
    avail = board[(board["attack"].str.startswith("avail")) & (board["certifier"] == "rab (train)")].iloc[0]
    assert avail["unavailable rise (pp)"].startswith("+60 [") and avail["attack success (%)"] == "—"
    cells = pd.read_csv(out / "cells.csv")
    assert cells["unit"].notna().all() and {"lost", "unavailable_rise", "acr_clean"} <= set(cells["metric"])
    matrix = pd.read_csv(out / "matrix.csv").set_index("attack")
    assert list(matrix.columns) == ["rab (train)", "cohen"] and matrix.loc["backdoor: onepixel 2%",
                                                                           "cohen"] == "excluded: too slow here"
    assert matrix.iloc[1, 0].startswith("unav. 60 [") and "lost 60 [" in matrix.iloc[1, 0]  # fmt: skip
    m = json.loads((out / "metrics" / "avail" / "rab-train.json").read_text())
    assert m["unavailable_rise"] == pytest.approx(0.6) and "attack_success" not in m
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plot_attacks("s", _layout({}, {}, None), [], *[str(empty / n) for n in names], str(empty / "metrics"),
                        dpi=50, context="paper") == []  # fmt: skip


def test_an_effect_compares_the_same_points_with_and_without_the_trigger(tmp_path):
    """A backdoor whose trigger changes nothing: the old pairing (every clean point, both classes,
    against the triggered non-target points) showed an ACR effect of −67 %; the clean copies of
    the same non-target points show none, and nothing is lost."""
    labels = np.repeat([0, 1], 100)  # target 0: its points are not scored when triggered
    radius = np.where(labels == 0, 0.1, 0.5)  # the target class certifies smaller radii
    clean = pd.DataFrame({"idx": np.arange(200), "label": labels, "top": labels, "abstain": False, "correct": True,
                          "radius": radius})  # fmt: skip
    triggered = clean.assign(nontarget=labels == 1, certified_vs_attack=True)  # the trigger: no change
    s = summarize(clean, triggered[triggered["nontarget"]], [0, 0.25], "ge", target=0)
    assert s["acr_clean"] == pytest.approx(0.3) and s["acr_triggered"] == pytest.approx(0.5)  # the old pairing
    assert s["clean_same_points"]["num"] == 100 and s["clean_same_points"]["acr"] == pytest.approx(0.5)
    shuffled = triggered[triggered["nontarget"]].sample(frac=1, random_state=0)  # paired by index, not position
    assert summarize(clean, shuffled, [0], "ge", 0)["clean_same_points"]["acr"] == pytest.approx(0.5)
    d = _write_run(tmp_path, "backdoor/cohen", "cohen", clean, triggered.sample(frac=1, random_state=1), target=0)
    layout = _layout({"backdoor": {"kind": "backdoor", "rate": 0.02, "target": 0, "trigger": {"name": "onepixel"}}},
                     {"cohen": CERTS["cohen"]}, None)  # fmt: skip
    s, run = load_run(d)
    cell = cell_rows(layout, {"backdoor/cohen": [(s, run)]})[0]["cell"]
    assert cell.lost.k == 0 and cell.attack_success.k == 0 and cell.points == 100


def test_the_matrix_of_nine_columns_fits_2400_pixels(tmp_path):
    """The demo's nine columns (the ensembles' two scopes each) at 150 dpi: at most 2,400 px wide."""
    from certsmooth import effects as fx

    c = fx.Cell("backdoor", 100, fx.Share(99, 100), lost=fx.Share(3, 100), attack_success=fx.Share(100, 100),
                certified_vs_attack=fx.Share(98, 100))  # fmt: skip
    rows = [{"attack": f"a{i}", "certifier": f"certifier {j}", "cell": c, "excluded": "", "at_cap": 0.5}
            for i in range(6) for j in range(9)]  # fmt: skip
    out = tmp_path / "m.png"
    plot_matrix(rows, out, "s", dpi=150, context="paper")
    width, _ = struct.unpack(">II", out.read_bytes()[16:24])
    assert width <= 2400
