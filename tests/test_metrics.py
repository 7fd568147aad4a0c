"""Certified-accuracy metrics."""

import numpy as np
import pandas as pd
import pytest

from certsmooth.metrics import acr, certified_accuracy, curve


def frame():
    return pd.DataFrame({"radius": [0.0, 0.5, 0.5, 1.0, 2.0], "correct": [False, True, False, True, True]})


def test_certified_accuracy_gt_and_ge():
    f = frame()
    assert certified_accuracy(f, 0.5, "gt") == pytest.approx(2 / 5)  # R > 0.5: 1.0, 2.0
    assert certified_accuracy(f, 0.5, "ge") == pytest.approx(3 / 5)  # R ≥ 0.5 and correct
    assert acr(f) == pytest.approx((0.5 + 1.0 + 2.0) / 5)


@pytest.mark.parametrize("cmp", ["gt", "ge"])
def test_curve_matches_pointwise_definition(cmp):
    rng = np.random.default_rng(0)
    f = pd.DataFrame(
        {"radius": np.round(rng.uniform(0, 1, 300), 2) * (rng.random(300) > 0.2), "correct": rng.random(300) > 0.3}
    )
    c = curve(f, cmp)
    np.testing.assert_allclose(c["certified_accuracy"], [certified_accuracy(f, r, cmp) for r in c["radius"]])
    assert np.all(np.diff(c["certified_accuracy"]) <= 0)  # non-increasing in r


def test_unavailable_counts_abstentions_and_short_radii_for_any_label():
    import pandas as pd

    from certsmooth.metrics import summarize, unavailable

    f = pd.DataFrame({"abstain": [True, False, False, False], "radius": [0.0, 0.1, 0.3, 0.3],
                      "correct": [False, True, True, False], "top": [1, 0, 0, 1], "label": [0, 0, 0, 0],
                      "certified_vs_attack": [False] * 4})  # fmt: skip
    assert unavailable(f, 0.0, "ge") == 0.25  # only the abstention
    assert unavailable(f, 0.0, "gt") == 0.25
    assert unavailable(f, 0.2, "ge") == 0.5  # + the radius 0.1; the wrong label at 0.3 is available
    assert unavailable(f, 0.3, "gt") == 1.0 and unavailable(f, 0.3, "ge") == 0.5
    assert unavailable(f.iloc[:0], 0.0, "ge") != unavailable(f.iloc[:0], 0.0, "ge")  # NaN on no points
    s = summarize(f, f, [0, 0.2], "ge", -1)
    assert s["unavailable_triggered"] == {"0": 0.25, "0.2": 0.5}
    assert s["unavailable_clean"] == s["unavailable_triggered"]
