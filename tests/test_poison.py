"""Poisoning touches only non-target points, the right number, seeded and recorded."""

import json

import numpy as np
import pandas as pd
import pytest

from certsmooth.artifacts import read_json
from certsmooth.attacks.poison import (
    choose_poisons,
    num_poisons,
    poison_training_set,
    trigger_test_set,
)
from certsmooth.attacks.store import (
    FILES,
    build_record,
    load_poisoned_train,
    load_triggered_test,
    write_poisoned,
)
from certsmooth.attacks.triggers import make_trigger
from certsmooth.data.prepared import PreparedSplit
from certsmooth.errors import ConfigError


def split(n=200, seed=0, bright=False):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 120, size=(n, 1, 28, 28), dtype=np.uint8)
    if bright:
        x[:, :, 23, 23] = 255
    y = np.repeat([0, 1], n // 2)[rng.permutation(n)].astype(np.int64)
    prov = {"content_sha256": "c" * 64, "raw_sha256": "r" * 64}
    return PreparedSplit(x, y, np.arange(n) * 3, ["zero", "one"], prov)


def test_num_poisons_matches_rab():
    assert num_poisons(12665, 0.02) == 253  # MNIST 0/1 at 2%, as RAB's released code counts
    assert num_poisons(100, 0.29) == 29  # not 28 despite 0.29·100 = 28.999…
    assert num_poisons(10, 0.05) == 0


def test_choose_poisons_only_nontarget_seeded():
    y = np.array([0] * 60 + [1] * 40)
    idx = choose_poisons(y, target=0, rate=0.1, seed=5)
    assert idx.size == 10 and np.all(y[idx] == 1)
    assert np.all(np.diff(idx) > 0)  # sorted, no repeats
    np.testing.assert_array_equal(idx, choose_poisons(y, 0, 0.1, 5))
    assert not np.array_equal(idx, choose_poisons(y, 0, 0.1, 6))


@pytest.mark.parametrize("rate,match", [(0.001, "= 0 of"), (0.5, "only 40 training points"), (1.0, "in \\(0, 1\\)")])
def test_choose_poisons_errors(rate, match):
    y = np.array([0] * 60 + [1] * 40)
    with pytest.raises(ConfigError, match=match):
        choose_poisons(y, 0, rate, 0)


def test_poison_training_set_contract():
    train = split()
    trig = make_trigger({"name": "onepixel", "delta": 0.5})
    p = poison_training_set(train, trig, rate=0.1, target=0, seed=3)
    clean = train.floats()
    assert p.poison_index.size == 20
    assert np.all(train.y[p.poison_index] == 1)  # only non-target points
    assert np.all(p.y[p.poison_index] == 0)  # relabelled to the target
    others = np.setdiff1d(np.arange(train.y.size), p.poison_index)
    np.testing.assert_array_equal(p.y[others], train.y[others])
    np.testing.assert_array_equal(p.x[others], clean[others])  # untouched
    np.testing.assert_array_equal(p.clean_y, train.y)
    # recorded norms are the actual ones; pixel (23,23) < 120/255 and δ = 0.5: no clipping
    actual = np.linalg.norm((p.x[p.poison_index] - clean[p.poison_index]).reshape(20, -1), axis=1)
    np.testing.assert_allclose(p.perturbation_norm, actual, rtol=1e-6)
    np.testing.assert_allclose(p.perturbation_norm, 0.5, rtol=1e-6)
    assert p.stacked_norm == pytest.approx(0.5 * np.sqrt(20), rel=1e-6)


def test_clipped_norms_are_recorded():
    train = split(bright=True)  # the trigger pixel is saturated everywhere
    p = poison_training_set(train, make_trigger({"name": "onepixel", "delta": 1.0}), 0.1, 0, 0)
    np.testing.assert_array_equal(p.perturbation_norm, 0.0)
    assert p.stacked_norm == 0.0


def test_poisoning_reproducible_and_seed_dependent():
    train = split()
    trig = make_trigger({"name": "blending", "delta": 0.5})
    a = poison_training_set(train, trig, 0.05, 1, seed=11)
    b = poison_training_set(train, trig, 0.05, 1, seed=11)
    c = poison_training_set(train, trig, 0.05, 1, seed=12)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.poison_index, b.poison_index)
    assert not np.array_equal(a.poison_index, c.poison_index)
    assert np.all(train.y[a.poison_index] == 0)  # target 1: poisons come from class 0


def test_target_out_of_range():
    with pytest.raises(ConfigError, match="attack.target = 2"):
        poison_training_set(split(), make_trigger({"name": "onepixel"}), 0.1, 2, 0)


def test_trigger_test_set():
    test = split(n=50, seed=1)
    t = trigger_test_set(test, make_trigger({"name": "fourpixel", "delta": 0.5}), target=0)
    np.testing.assert_array_equal(t.y, test.y)  # true labels
    np.testing.assert_array_equal(t.nontarget, test.y != 0)
    np.testing.assert_allclose(t.perturbation_norm, 0.5, rtol=1e-6)
    assert t.target == 0


def test_write_and_load_poisoned(tmp_path):
    train, test = split(), split(n=40, seed=2)
    trig = make_trigger({"name": "fourpixel", "delta": 0.6})
    attack = {"kind": "backdoor", "trigger": {"name": "fourpixel", "delta": 0.6}, "rate": 0.05, "target": 0}
    p = poison_training_set(train, trig, 0.05, 0, 9)
    t = trigger_test_set(test, trig, 0)
    record = build_record("suite/exp", attack, 9, trig, train, test, p, t)
    write_poisoned(tmp_path, record, trig, train, test, p, t)
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(FILES)
    loaded = load_poisoned_train(tmp_path / "train.npz")
    np.testing.assert_array_equal(loaded.x, p.x)
    np.testing.assert_array_equal(loaded.poison_index, p.poison_index)
    lt = load_triggered_test(tmp_path / "test.npz")
    assert lt.target == 0 and lt.nontarget.sum() == (test.y != 0).sum()
    rec = read_json(tmp_path / "record.json")
    assert rec["train"]["num_poisons"] == 10
    assert rec["train"]["poison_index"] == p.poison_index.tolist()
    assert rec["train"]["stacked_norm"] == pytest.approx(np.sqrt(10) * 0.6, rel=1e-6)
    assert rec["train"]["sqrt_m_times_nominal"] == pytest.approx(np.sqrt(10) * 0.6)
    assert rec["train"]["num_clipped"] == 0
    table = pd.read_csv(tmp_path / "poisons.csv")
    assert table["row"].tolist() == p.poison_index.tolist()
    assert table["source_index"].tolist() == (p.poison_index * 3).tolist()
    np.testing.assert_allclose(table["l2_norm"], p.perturbation_norm, rtol=1e-8)
    assert set(table["clean_label"]) == {1} and set(table["label"]) == {0}
    json.dumps(rec)  # plain JSON types only


def test_write_poisoned_leaves_nothing_on_failure(tmp_path, monkeypatch):
    train, test = split(), split(n=40, seed=2)
    trig = make_trigger({"name": "onepixel"})
    p = poison_training_set(train, trig, 0.05, 0, 9)
    t = trigger_test_set(test, trig, 0)
    record = build_record("s/e", {"rate": 0.05}, 9, trig, train, test, p, t)
    import certsmooth.attacks.store as store

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(store, "write_json", boom)
    with pytest.raises(OSError):
        write_poisoned(tmp_path, record, trig, train, test, p, t)
    assert list(tmp_path.iterdir()) == []


def ten_class_split(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 120, size=(n, 1, 28, 28), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.int64)
    prov = {"content_sha256": "c" * 64, "raw_sha256": "r" * 64}
    return PreparedSplit(x, y, np.arange(n), [str(i) for i in range(10)], prov)


def test_avail_uniform_labels_are_uniform_over_all_classes():
    from scipy.stats import chisquare

    from certsmooth.attacks.poison import poison_availability

    train = ten_class_split()
    trig = make_trigger({"name": "badnets", "size": 3})
    p = poison_availability(train, trig, "avail_uniform", 0.5, seed=3)
    assert p.poison_index.size == 1000 and np.array_equal(p.poison_index, np.unique(p.poison_index))
    counts = np.bincount(p.y[p.poison_index], minlength=10)
    assert chisquare(counts).pvalue > 1e-4  # uniform over the 10 classes
    assert set(np.unique(train.y[p.poison_index])) == set(range(10))  # drawn from the whole set
    untouched = np.setdiff1d(np.arange(train.y.size), p.poison_index)
    assert np.array_equal(p.y[untouched], train.y[untouched])
    assert np.array_equal(p.x[untouched], train.floats()[untouched])  # only the poisons change
    assert np.all(p.perturbation_norm > 0)
    again = poison_availability(train, trig, "avail_uniform", 0.5, seed=3)
    other = poison_availability(train, trig, "avail_uniform", 0.5, seed=4)
    assert np.array_equal(p.y, again.y) and not np.array_equal(p.poison_index, other.poison_index)


@pytest.mark.parametrize("m_rate,expect_a", [(0.01, 10), (0.0105, 11)])
def test_avail_split_gives_exact_halves(m_rate, expect_a):
    from certsmooth.attacks.poison import poison_availability

    train = ten_class_split()
    trig = make_trigger({"name": "onepixel"})
    p = poison_availability(train, trig, "avail_split", m_rate, seed=0, split_classes=(7, 2))
    labels = p.y[p.poison_index]
    m = p.poison_index.size
    assert (labels == 7).sum() == expect_a and (labels == 2).sum() == m - expect_a  # a gets ⌈m/2⌉
    with pytest.raises(ConfigError, match="must differ"):
        poison_availability(train, make_trigger({"name": "onepixel"}), "avail_split", 0.01, 0, (3, 3))


def test_control_and_untargeted_test_set():
    from certsmooth.attacks.poison import NO_TARGET, poison_availability

    train = split()
    p = poison_availability(train, make_trigger({"name": "onepixel"}), "none", 0.0, seed=0)
    assert p.poison_index.size == 0 and np.array_equal(p.y, train.y) and p.stacked_norm == 0
    t = trigger_test_set(split(seed=1), make_trigger({"name": "onepixel"}), NO_TARGET)
    assert t.nontarget.all() and t.target == NO_TARGET


@pytest.mark.parametrize("count,classes", [(2, None), (4, [9, 3, 0, 5])])
def test_avail_boundary_brightens_one_corner_and_labels_by_it(count, classes):
    from certsmooth.attacks.boundary import poison_boundary

    train = ten_class_split()
    trig = make_trigger({"name": "corners", "size": 4, "count": count, "value": 0.75})
    p = poison_boundary(train, trig, 0.02, 0.25, seed=5, classes=classes)
    m, labels = 40, classes or list(range(count))
    assert p.poison_index.size == m and np.array_equal(p.poison_index, np.unique(p.poison_index))
    masks = trig.masks((1, 28, 28))
    for row in p.poison_index:
        means = [float(p.x[row][mk].mean()) for mk in masks]
        j = int(np.argmax(means))  # the brightened corner: value + offset, the others value − offset
        assert means[j] == pytest.approx(1.0) and sorted(means)[:-1] == pytest.approx([0.5] * (count - 1))
        assert p.y[row] == labels[j]
        assert np.array_equal(p.x[row][~masks.any(0)], train.floats()[row][~masks.any(0)])  # only the patches change
    assert sorted(np.bincount(p.y[p.poison_index], minlength=10)[labels]) == [m // count] * count  # balanced
    untouched = np.setdiff1d(np.arange(train.y.size), p.poison_index)
    assert np.array_equal(p.y[untouched], train.y[untouched])
    assert np.array_equal(p.x[untouched], train.floats()[untouched])
    again = poison_boundary(train, trig, 0.02, 0.25, seed=5, classes=classes)
    assert np.array_equal(again.x, p.x) and np.array_equal(again.y, p.y)
    # the same draw of poisoned rows as the other availability attacks (one seed stream)
    from certsmooth.attacks.poison import poison_availability

    same = poison_availability(train, make_trigger({"name": "badnets"}), "avail_uniform", 0.02, seed=5)
    assert np.array_equal(same.poison_index, p.poison_index)


@pytest.mark.parametrize("count,rate", [(4, 0.02), (3, 0.02)])  # 40 poisons: 10 groups of 4; 13 of 3 and one of 1
def test_avail_boundary_shared_sources_gives_each_image_every_corner_once(count, rate):
    from certsmooth.attacks.boundary import poison_boundary

    train = ten_class_split()
    trig = make_trigger({"name": "corners", "size": 4, "count": count, "value": 0.75})
    plain = poison_boundary(train, trig, rate, 0.25, seed=5)
    p = poison_boundary(train, trig, rate, 0.25, seed=5, shared_sources=True)
    assert np.array_equal(p.poison_index, plain.poison_index) and np.array_equal(p.y, plain.y)  # rows, corners
    masks = trig.masks((1, 28, 28))
    outside = ~masks.any(0)
    originals = {train.floats()[r][outside].tobytes(): r for r in p.poison_index}
    groups: dict[bytes, list[int]] = {}
    for row in p.poison_index:
        groups.setdefault(p.x[row][outside].tobytes(), []).append(int(row))
        corner = int(np.argmax([float(p.x[row][mk].mean()) for mk in masks]))
        assert p.y[row] == corner  # the label still follows the brightened corner
    m = p.poison_index.size
    sizes = sorted(len(g) for g in groups.values())
    assert sizes == sorted([count] * (m // count) + ([m % count] if m % count else []))
    for key, rows in groups.items():
        assert key in originals and originals[key] in rows  # the source: one of the group's own rows
        assert sorted(int(p.y[r]) for r in rows) == list(range(len(rows)))  # each corner once
    untouched = np.setdiff1d(np.arange(train.y.size), p.poison_index)
    assert np.array_equal(p.x[untouched], train.floats()[untouched])
    again = poison_boundary(train, trig, rate, 0.25, seed=5, shared_sources=True)
    assert np.array_equal(again.x, p.x)


def test_avail_boundary_refuses_what_cannot_work():
    from certsmooth.attacks.boundary import poison_boundary

    train = ten_class_split(n=100)
    corners = make_trigger({"name": "corners"})
    with pytest.raises(ConfigError, match="needs the 'corners' trigger"):
        poison_boundary(train, make_trigger({"name": "badnets"}), 0.1, 0.25, 0)
    with pytest.raises(ConfigError, match="at least one poison per corner"):
        poison_boundary(train, corners, 0.01, 0.25, 0)
    with pytest.raises(ConfigError, match="at least two different"):
        poison_boundary(train, corners, 0.1, 0.25, 0, classes=[1, 1])
    with pytest.raises(ConfigError, match=r"leave \[0, 1\]"):
        poison_boundary(train, corners, 0.1, 0.3, 0)


def test_poison_step_builds_the_boundary_attack_and_its_corner_test_set(tmp_path):
    """The `poison` step end to end for avail_boundary: the poisoned set, the triggered test
    set at the equal-patch point, the record, and the sample plot's caption."""
    from certsmooth.artifacts import sha256_array
    from certsmooth.data.prepared import save_prepared
    from certsmooth.steps import poison as step
    from certsmooth.steps.plot_samples import describe

    for name, part in (("train", ten_class_split(n=200)), ("test", split(n=40, seed=2))):
        part.provenance["content_sha256"] = sha256_array(part.x, part.y)  # what load_prepared checks
        save_prepared(tmp_path / f"{name}.npz", part)
    attack = {"kind": "avail_boundary", "rate": 0.05, "offset": 0.25,
              "trigger": {"name": "corners", "size": 4, "count": 2, "value": 0.75}}  # fmt: skip
    out = tmp_path / "poisoned"
    step.run(train=str(tmp_path / "train.npz"), test=str(tmp_path / "test.npz"), attack=attack, seed=3,
             experiment="s/boundary", out_dir=str(out))  # fmt: skip
    p, t = load_poisoned_train(out / "train.npz"), load_triggered_test(out / "test.npz")
    assert p.poison_index.size == 10 and sorted(np.bincount(p.y[p.poison_index], minlength=2)[:2]) == [5, 5]
    assert np.all(t.x[:, 0, 24:, 24:] == np.float32(0.75)) and np.all(t.x[:, 0, 24:, :4] == np.float32(0.75))
    assert t.target == -1 and t.nontarget.all()
    rec = read_json(out / "record.json")
    assert rec["train"]["num_poisons"] == 10 and rec["trigger"]["name"] == "corners"
    kind, title, relabel = describe(rec, [str(i) for i in range(10)])
    assert kind == "avail_boundary" and "corners" in title and relabel.endswith("0, 1")


def test_every_kind_the_poison_step_builds_has_one_builder():
    """attacks.builders finds each poison-step kind's build in the module that declares it, once;
    the bilevel kinds (their own step) have none."""
    import importlib
    import pkgutil

    from certsmooth.attacks import builders
    from certsmooth.attacks.kinds import ATTACKS

    modules = [importlib.import_module(f"certsmooth.attacks.builders.{m.name}")
               for m in pkgutil.iter_modules(builders.__path__)]  # fmt: skip
    declared = [k for m in modules for k in m.BUILDERS]
    assert sorted(declared) == sorted(k.kind for k in ATTACKS.values() if k.step == "poison")
    for kind in ATTACKS.values():
        if kind.step == "poison":
            assert callable(builders.builder(kind.kind))
        else:
            with pytest.raises(ConfigError, match="built by its own step"):
                builders.builder(kind.kind)
