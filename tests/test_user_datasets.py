"""Datasets beyond the built-in ones: a user's .npz or ImageFolder tree (datasets: in
params.yaml) and GTSRB through torchvision, each with its checks and one-line errors."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from certsmooth.config import validate_params
from certsmooth.data.prepared import load_prepared, prepare
from certsmooth.data.sources import GTSRB, SOURCES, USER, fetch, get_source, load_raw, register_user_datasets
from certsmooth.errors import ConfigError, CorruptFileError, DatasetUnavailableError
from conftest import copy_project, snakemake


@pytest.fixture(autouse=True)
def _forget_user_datasets():
    yield
    USER.clear()


def _npz(path, n=30, shape=(1, 8, 8), classes=3, test=None, **extra):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), "y_train": np.arange(n) % classes}
    if test:
        arrays |= {
            "x_test": rng.integers(0, 256, size=(test, *shape), dtype=np.uint8),
            "y_test": np.arange(test) % classes,
        }
    np.savez(path, **{**arrays, **extra})
    return arrays


def test_npz_without_split_prepares_like_mnist5k(tmp_path):
    arrays = _npz(tmp_path / "mine.npz", class_names=np.array(["cat", "dog", "emu"]))
    register_user_datasets({"mine": {"format": "npz", "path": str(tmp_path / "mine.npz"), "channels": 3, "size": None}})
    src = get_source("mine")
    assert (src.class_names, src.shape, src.has_official_split) == (("cat", "dog", "emu"), (1, 8, 8), False)
    parts = prepare("mine", ["emu", "cat"], {"test_fraction": 0.2, "seed": 0}, tmp_path)
    tr = parts["train"]
    assert tr.class_names == ["emu", "cat"] and set(tr.y) == {0, 1}
    np.testing.assert_array_equal(tr.x, arrays["x_train"][tr.source_index])
    np.testing.assert_array_equal(arrays["y_train"][tr.source_index], np.where(tr.y == 0, 2, 0))
    assert len(parts["test"].y) == 4  # 20 % of the 10 images of each of two classes


def test_npz_with_official_split_and_hw_images(tmp_path):
    _npz(tmp_path / "m.npz", n=12, shape=(8, 8), classes=2, test=6)  # N×H×W: one channel
    register_user_datasets({"m": {"format": "npz", "path": str(tmp_path / "m.npz"), "channels": 3, "size": None}})
    assert get_source("m").shape == (1, 8, 8) and get_source("m").class_names == ("0", "1")
    parts = prepare("m", None, "official", tmp_path)
    assert parts["train"].x.shape == (12, 1, 8, 8) and parts["test"].x.shape == (6, 1, 8, 8)


BAD_NPZ = [
    ("missing", None, "file not found"),
    ("not a zip", "garbage", "not a .npz file"),
    ("no labels", {"x_train": np.zeros((4, 1, 2, 2), np.uint8)}, "no array 'y_train'"),
    ("float images", {"x_train": np.zeros((4, 1, 2, 2), np.float32), "y_train": np.zeros(4, int)}, "save uint8"),
    (
        "label range",
        {
            "x_train": np.zeros((4, 1, 2, 2), np.uint8),
            "y_train": np.array([0, 1, 2, 3]),
            "class_names": np.array(["a", "b"]),
        },
        "y_train must hold integers 0..1",
    ),  # fmt: skip
    ("label count", {"x_train": np.zeros((4, 1, 2, 2), np.uint8), "y_train": np.zeros(3, int)}, "one per image"),
    (
        "half a split",
        {
            "x_train": np.zeros((4, 1, 2, 2), np.uint8),
            "y_train": np.zeros(4, int),
            "x_test": np.zeros((2, 1, 2, 2), np.uint8),
        },
        "x_test and y_test go together",
    ),  # fmt: skip
    (
        "sizes",
        {
            "x_train": np.zeros((4, 1, 2, 2), np.uint8),
            "y_train": np.zeros(4, int),
            "x_test": np.zeros((2, 1, 3, 3), np.uint8),
            "y_test": np.zeros(2, int),
        },
        "save both at one size",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("case", "content", "message"), BAD_NPZ, ids=[c[0] for c in BAD_NPZ])
def test_bad_npz_one_line_naming_the_entry(tmp_path, case, content, message):
    path = tmp_path / "d.npz"
    if isinstance(content, dict):
        np.savez(path, **content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        register_user_datasets({"d": {"format": "npz", "path": str(path), "channels": 3, "size": None}})
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"datasets.d.path = {str(path)!r}") and message in msg


def _image(path, size, value, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size[::-1], value).save(path)


def test_imagefolder_with_split_resized_and_sorted(tmp_path):
    root = tmp_path / "signs"
    for part, n in (("train", 3), ("test", 2)):
        for c, colour in (("stop", (200, 0, 0)), ("go", (0, 200, 0))):
            for i in range(n):
                _image(root / part / c / f"{i:02d}.png", (10 + i, 12), colour)  # sizes differ
    spec = {"format": "imagefolder", "path": str(root), "channels": 3, "size": [8, 6]}
    register_user_datasets({"signs": spec})
    src = get_source("signs")
    assert (src.class_names, src.shape, src.has_official_split) == (("go", "stop"), (3, 8, 6), True)
    raw = load_raw("signs", tmp_path)
    assert raw.train.x.shape == (6, 3, 8, 6) and raw.test.x.shape == (4, 3, 8, 6)
    np.testing.assert_array_equal(raw.train.y, [0, 0, 0, 1, 1, 1])  # by class, then file name
    assert raw.train.x[0, 1].min() == 200 and raw.train.x[3, 0].min() == 200  # go is green, stop red
    manifest = fetch("signs", tmp_path)
    assert manifest["sha256"] == raw.raw_sha256 and len(manifest["files"]) == 10
    # moving one image to the other class changes the checksum (paths count, not only contents)
    shutil.move(root / "train" / "go" / "02.png", root / "train" / "stop" / "09.png")
    assert load_raw("signs", tmp_path).raw_sha256 != raw.raw_sha256


def test_imagefolder_grayscale_without_size_needs_one_size(tmp_path):
    root = tmp_path / "g"
    _image(root / "a" / "1.png", (5, 5), 10, "L")
    _image(root / "b" / "1.png", (5, 5), 250, "L")
    register_user_datasets({"g": {"format": "imagefolder", "path": str(root), "channels": 1, "size": None}})
    raw = load_raw("g", tmp_path)
    assert raw.train.x.shape == (2, 1, 5, 5) and raw.test is None
    _image(root / "b" / "2.png", (7, 5), 250, "L")
    with pytest.raises(CorruptFileError, match=r"2.png: 7×5 pixels.*set datasets.g.size: \[5, 5\]"):
        load_raw("g", tmp_path)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "folder not found"),
        ({"only/1.png": 1}, "found 1 class folder"),
        ({"a/x.txt": 1, "b/y.txt": 1}, "no image files"),
        ({"train/a/1.png": 1, "train/b/1.png": 1, "test/a/1.png": 1}, "give both the same class folders"),
    ],
)
def test_bad_imagefolder_one_line(tmp_path, layout, message):
    root = tmp_path / "tree"
    for rel in layout:
        if rel.endswith(".png"):
            _image(root / rel, (4, 4), 0)
        else:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("x")
    with pytest.raises(ConfigError) as info:
        register_user_datasets({"tree": {"format": "imagefolder", "path": str(root), "channels": 3, "size": None}})
    assert "\n" not in str(info.value) and message in str(info.value)


def test_params_datasets_block(tmp_path):
    _npz(tmp_path / "mine.npz", n=40, shape=(1, 28, 28), classes=2)
    suite = {
        "dataset": {"name": "mine"},
        "attacks": {"none": {"kind": "none"}},
        "certifiers": {"cohen": {"kind": "cohen", "cohen": {"epochs": 1}}},
    }
    cfg = {"default_suites": ["s"], "datasets": {"mine": {"format": "npz", "path": str(tmp_path / "mine.npz")}},
           "suites": {"s": suite}}  # fmt: skip
    out = validate_params(cfg)
    assert out["datasets"]["mine"] == {"format": "npz", "path": str(tmp_path / "mine.npz"), "channels": 3, "size": None}
    bad = json.loads(json.dumps(cfg))
    bad["suites"]["s"]["dataset"]["name"] = "yours"
    with pytest.raises(ConfigError, match=r"suites.s.dataset.name = 'yours': no such dataset; allowed: mnist5k.*mine"):
        validate_params(bad)
    clash = json.loads(json.dumps(cfg))
    clash["datasets"] = {"cifar10": clash["datasets"]["mine"]}
    with pytest.raises(ConfigError, match="datasets.cifar10: 'cifar10' is a built-in dataset"):
        validate_params(clash)


def _gtsrb_layout(raw, per_class=1, test=4):
    """A tiny GTSRB in torchvision's layout: every class folder with ``per_class`` .ppm images
    of varying size, and ``test`` test images listed in GT-final_test.csv."""
    base = raw / "gtsrb"
    for c in range(43):
        for i in range(per_class):
            _image(base / "GTSRB" / "Training" / f"{c:05d}" / f"00000_{i:05d}.ppm", (20 + c % 5, 25), (c * 5, 0, 0))
    images = base / "GTSRB" / "Final_Test" / "Images"
    rows = []
    for i in range(test):
        _image(images / f"{i:05d}.ppm", (40, 31 + i), (0, 0, 10 * i))
        rows.append({"Filename": f"{i:05d}.ppm", "ClassId": (7 * i) % 43})
    with open(base / "GT-final_test.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["Filename", "ClassId"], delimiter=";")
        w.writeheader()
        w.writerows(rows)


def test_gtsrb_files_present_resized_to_32(tmp_path):
    assert set(SOURCES) >= {"gtsrb"} and len(GTSRB) == 43 and SOURCES["gtsrb"].shape == (3, 32, 32)
    _gtsrb_layout(tmp_path)
    manifest = fetch("gtsrb", tmp_path)  # present: nothing to download
    raw = load_raw("gtsrb", tmp_path)
    assert raw.raw_sha256 == manifest["sha256"]
    assert raw.train.x.shape == (43, 3, 32, 32) and raw.test.x.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(raw.train.y, np.arange(43))
    np.testing.assert_array_equal(raw.test.y, [0, 7, 14, 21])
    assert raw.train.x[10, 0].min() == 50 and raw.test.x[3, 2].max() == 30
    parts = prepare("gtsrb", ["stop", "yield"], "official", tmp_path)
    np.testing.assert_array_equal(parts["train"].y, [1, 0])  # yield (13) before stop (14) in the data


def test_gtsrb_offline_one_line(tmp_path, monkeypatch):
    import socket

    def refuse(*a, **k):
        raise OSError(101, "Network is unreachable")

    for name in ("connect",):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(DatasetUnavailableError) as info:
        fetch("gtsrb", tmp_path / "raw")
    msg = str(info.value)
    assert "\n" not in msg and "certsmooth download gtsrb --raw-dir" in msg and "GT-final_test.csv" in msg
    with pytest.raises(DatasetUnavailableError, match="dataset 'gtsrb': raw files missing"):
        load_raw("gtsrb", tmp_path / "raw")


@pytest.mark.workflow
def test_workflow_prepares_a_user_npz_and_reruns_when_it_changes(tmp_path):
    root = copy_project(tmp_path / "p")
    (root / "data").mkdir(exist_ok=True)
    _npz(root / "data" / "mine.npz", n=40, shape=(1, 28, 28), classes=2)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = {"mine": {"format": "npz", "path": "data/mine.npz"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    target = "data/prepared/mine/all/test0.2-seed0/train.npz"
    snakemake(root, "--cores", "1", target)
    assert load_prepared(root / target).class_names == ["0", "1"]
    assert json.loads((root / "data/raw/mine.manifest.json").read_text())["files"] == ["data/mine.npz"]
    assert "Nothing to be done" in snakemake(root, "-n", target).stdout + snakemake(root, "-n", target).stderr
    _npz(root / "data" / "mine.npz", n=50, shape=(1, 28, 28), classes=2)
    snakemake(root, "--cores", "1", target)
    assert len(load_prepared(root / target).y) == 40  # 80 % of 50
